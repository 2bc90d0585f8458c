"""Prometheus alert rules for the mesh. Each one is unit-tested with `promtool test rules`
(tests/observability/alerts_test.yml), firing and not firing."""

from __future__ import annotations

import math
from dataclasses import dataclass

from demigod.config import Settings
from demigod.deploy.observability.prometheus import GATEWAY_JOB, WORKER_JOB

# Each alert has a section in the operator guide, anchored by its lower-cased name.
RUNBOOK = "docs/operations.md#"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    duration: str
    severity: str  # "page" wakes someone; "warning" goes to the team channel
    summary: str
    description: str

    def rule(self) -> dict[str, object]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": RUNBOOK + self.name.lower(),
            },
        }


def alerts(settings: Settings) -> list[Alert]:
    """The alerts, with the thresholds from `settings.observability`."""
    obs = settings.observability
    queue_limit = math.ceil(obs.alert_queue_fill_ratio * settings.engine.queue_size)
    return [
        Alert(
            "DemigodHighP95Latency",
            "histogram_quantile(0.95, sum by (model, le) "
            "(rate(demigod_request_duration_seconds_bucket[5m]))) "
            f"> {obs.alert_p95_latency_seconds:g}",
            "5m",
            "page",
            "p95 latency of {{ $labels.model }} is {{ $value | humanizeDuration }}",
            f"95th percentile request latency above {obs.alert_p95_latency_seconds:g}s "
            "for 5 minutes.",
        ),
        Alert(
            "DemigodHighErrorRate",
            'sum by (model) (rate(demigod_requests_total{status=~"5.."}[5m])) '
            "/ sum by (model) (rate(demigod_requests_total[5m])) "
            f"> {obs.alert_error_ratio:g}",
            "5m",
            "page",
            "{{ $labels.model }} answers {{ $value | humanizePercentage }} of requests with 5xx",
            f"More than {obs.alert_error_ratio:.0%} of requests failed (5xx, queue full "
            "included) for 5 minutes.",
        ),
        Alert(
            "DemigodInstanceDown",
            f'up{{job=~"{GATEWAY_JOB}|{WORKER_JOB}"}} == 0',
            "1m",
            "page",
            "{{ $labels.job }} {{ $labels.instance }} is down",
            "Prometheus cannot scrape this gateway or worker.",
        ),
        Alert(
            "DemigodUpstreamDown",
            "demigod_upstream_up == 0",
            "1m",
            "page",
            "replica {{ $labels.replica }} of {{ $labels.model }} is unreachable",
            "The gateway cannot reach this model replica.",
        ),
        Alert(
            "DemigodQueueDepthHigh",
            f"demigod_queue_depth > {queue_limit}",
            "2m",
            "warning",
            "{{ $labels.model }} on {{ $labels.replica }} has {{ $value }} requests queued",
            f"Queue above {obs.alert_queue_fill_ratio:.0%} of engine.queue_size "
            f"({queue_limit}) for 2 minutes; clients will soon get 503.",
        ),
        Alert(
            "DemigodCanaryRolledBack",
            # The series starts at 0 when the gateway does; `unless ... offset` also catches
            # a rollback counted in a series younger than the window.
            "changes(demigod_canary_rollbacks_total[10m]) > 0 or "
            "(demigod_canary_rollbacks_total > 0 unless demigod_canary_rollbacks_total offset 10m)",
            "0m",
            "warning",
            "canary {{ $labels.version }} of {{ $labels.model }} was rolled back",
            "The canary analysis rolled this version back in the last 10 minutes.",
        ),
        Alert(
            "DemigodWafBlockSpike",
            "sum by (rule) (rate(demigod_waf_blocked_total[5m])) "
            f"> {obs.alert_waf_blocks_per_second:g}",
            "5m",
            "warning",
            "WAF rule {{ $labels.rule }} blocks {{ $value | humanize }} requests/s",
            f"More than {obs.alert_waf_blocks_per_second:g} blocked requests per second for "
            "5 minutes: an attack, or a rule misfiring on real traffic.",
        ),
        Alert(
            "DemigodDeepProbeFailing",
            "demigod_probe_success == 0",
            "3m",
            "page",
            "deep probe of {{ $labels.model }} is failing",
            "The synthetic generation through this model has failed for 3 minutes.",
        ),
        Alert(
            "DemigodDrift",
            # Longer than a default canary rollout (4 windows of 5 min), which shows as
            # canary_weight drift until it ends and git follows.
            "max by (kind) (demigod_drift) > 0",
            "30m",
            "warning",
            "{{ $value }} {{ $labels.kind }} difference(s) between git and the running mesh",
            "`demigod ops drift --watch` has found the running mesh differing from the "
            "declared state (mesh.yaml, the models lock file) for 30 minutes.",
        ),
    ]


def alert_rules(settings: Settings) -> dict[str, object]:
    """The Prometheus rule file as a YAML-ready dict."""
    return {"groups": [{"name": "demigod", "rules": [a.rule() for a in alerts(settings)]}]}
