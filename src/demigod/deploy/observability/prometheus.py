"""`prometheus.yml`: scrape the gateway and every worker, load the alert rules, page through
Alertmanager."""

from __future__ import annotations

from demigod.config import Settings

GATEWAY_JOB = "demigod-gateway"
WORKER_JOB = "demigod-worker"
DRIFT_JOB = "demigod-drift"


def prometheus_config(settings: Settings, gateway: str, alertmanager: str) -> dict[str, object]:
    """The Prometheus config as a YAML-ready dict (rule file path relative to it)."""
    interval = f"{settings.observability.scrape_interval_seconds}s"
    scrape_configs: list[dict[str, object]] = [
        {
            "job_name": GATEWAY_JOB,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [gateway], "labels": {"role": "gateway"}}],
        }
    ]
    if settings.observability.worker_targets:
        scrape_configs.append(
            {
                "job_name": WORKER_JOB,
                "metrics_path": "/metrics",
                "static_configs": [
                    {
                        "targets": list(settings.observability.worker_targets),
                        "labels": {"role": "worker"},
                    }
                ],
            }
        )
    if settings.observability.drift_target:
        scrape_configs.append(
            {
                "job_name": DRIFT_JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [settings.observability.drift_target]}],
            }
        )
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": ["rules/demigod-alerts.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": scrape_configs,
    }
