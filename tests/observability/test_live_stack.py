"""A real Prometheus, on the rendered config, scrapes a running gateway; every name the
alerts and dashboards use is one the gateway exports; request log lines carry their keys."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from demigod.config import Settings
from demigod.deploy.observability import RULES_FILE
from demigod.deploy.observability.alerts import alerts
from demigod.deploy.observability.promtail import LABEL_FIELDS, LOG_FIELDS
from demigod.observability.gpu import GpuCollector
from demigod.ops.drift_watch import DriftMetrics
from tests.conftest import Server, running_prometheus
from tests.observability.promql import exported_names, metric_names
from tests.observability.test_rendered_config import render

WAIT = 60.0  # seconds; a deadline for things that happen within a few scrapes
# `up` is written by Prometheus itself for every target, never by an exporter.
PROMETHEUS_SYNTHETIC = {"up"}


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    """Poll `probe` until it returns something truthy; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: still {last!r} after {WAIT}s")


def completion(server: Server, request_id: str, **extra: object) -> httpx.Response:
    body = {"model": "tiny", "prompt": "observe me", "max_tokens": 6, "ignore_eos": True}
    reply = httpx.post(
        f"{server.url}/v1/completions",
        json={**body, **extra},
        headers={"X-Request-ID": request_id},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return reply


@pytest.fixture(scope="module")
def prometheus(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus on the rendered config, scraping `server` every second."""
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "config"
    render(
        config,
        "--gateway",
        server.url.removeprefix("http://"),
        env={"DEMIGOD_OBSERVABILITY__SCRAPE_INTERVAL_SECONDS": "1"},
    )
    with running_prometheus(config / "prometheus.yml", workdir, timeout=WAIT) as url:
        yield url


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    body = reply.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_computes_p95_per_model_after_traffic(server: Server, prometheus: str) -> None:
    # A first request creates the series; more after Prometheus has stored it, so the
    # rate has a before and an after.
    completion(server, "p95-first")
    wait_for(
        "series scraped",
        lambda: query(prometheus, 'demigod_request_duration_seconds_count{model="tiny"}'),
    )
    for n in range(3):
        completion(server, f"p95-{n}")
    p95 = (
        "histogram_quantile(0.95, sum by (model, le) "
        "(rate(demigod_request_duration_seconds_bucket[1m])))"
    )

    def tiny_p95() -> float | None:
        for row in query(prometheus, p95):
            value = float(row["value"][1])
            if row["metric"].get("model") == "tiny" and value == value:  # not NaN
                return value
        return None

    assert wait_for("p95 of tiny", tiny_p95) > 0


def test_prometheus_loads_and_evaluates_every_alert_rule(prometheus: str) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = wait_for("rules evaluated", evaluated)
    assert len(rules) == len(alerts(Settings()))
    assert {rule["name"]: rule["health"] for rule in rules} == {
        rule["name"]: "ok" for rule in rules
    }, [rule.get("lastError") for rule in rules]


def expressions(rendered: Path) -> dict[str, str]:
    """Every PromQL expression in the rendered alerts and dashboards, by where it is."""
    found = {
        f"alert {rule['alert']}": rule["expr"]
        for group in yaml.safe_load((rendered / RULES_FILE).read_text())["groups"]
        for rule in group["rules"]
    }
    for path in (rendered / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                found[f"{path.stem} / {panel['title']} / {target['refId']}"] = target["expr"]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                query_text = variable["query"]["query"]
                found[f"{path.stem} / ${variable['name']}"] = query_text.removeprefix(
                    "label_values("
                ).split(",")[0]
    return found


def gpu_names() -> set[str]:
    """What the NVML collector exports where a GPU exists (this host may have none)."""
    device = SimpleNamespace(used=1, total=2)
    fake_nvml = SimpleNamespace(
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetMemoryInfo=lambda handle: device,
        nvmlDeviceGetUtilizationRates=lambda handle: SimpleNamespace(gpu=50),
    )
    collector = GpuCollector(fake_nvml)  # type: ignore[arg-type]
    return {sample.name for family in collector.collect() for sample in family.samples}


def drift_names() -> set[str]:
    """What `demigod ops drift --watch` exports on its own port (the DemigodDrift alert)."""
    registry = DriftMetrics().registry
    return {sample.name for family in registry.collect() for sample in family.samples}


def test_promql_name_extraction() -> None:
    assert metric_names(
        'sum by (model, le) (rate(a_bucket{model=~"$model",le="+Inf"}[$__rate_interval])) '
        "/ on (model) group_left b_total unless c offset 10m > 0.95"
    ) == {"a_bucket", "b_total", "c"}


def test_alerts_and_dashboards_use_only_exported_metric_names(
    server: Server, tmp_path: Path
) -> None:
    completion(server, "names-1")
    completion(server, "names-2", stream=True)
    assert httpx.get(f"{server.url}/healthz/deep", timeout=60).status_code == 200
    exported = exported_names(httpx.get(f"{server.url}/metrics").text)
    exported |= gpu_names() | drift_names() | PROMETHEUS_SYNTHETIC
    render(tmp_path / "rendered")
    found = expressions(tmp_path / "rendered")
    assert len(found) > 30
    unknown = {
        where: sorted(metric_names(expr) - exported)
        for where, expr in found.items()
        if metric_names(expr) - exported
    }
    assert unknown == {}
    used = set().union(*(metric_names(expr) for expr in found.values()))
    for name in ("demigod_energy_joules_total", "demigod_probe_success", "demigod_queue_depth"):
        assert name in used


# The documented keys of the per-request log line (docs/operations.md#logs).
REQUEST_LOG_KEYS = set(LOG_FIELDS)


def request_log_line(server: Server, request_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for line in server.log_text().splitlines():
            entry = json.loads(line)
            if entry.get("request_id") == request_id and entry["msg"] == "completion":
                return dict(entry)
        return None

    return dict(wait_for(f"log line of {request_id}", find))


def test_every_log_line_is_json_and_requests_have_the_documented_keys(server: Server) -> None:
    completion(server, "log-plain")
    completion(server, "log-stream", stream=True)
    for line in server.log_text().splitlines():
        json.loads(line)  # Promtail's json stage needs every line to be one object
    for request_id, streamed in (("log-plain", False), ("log-stream", True)):
        entry = request_log_line(server, request_id)
        assert set(entry) >= REQUEST_LOG_KEYS, REQUEST_LOG_KEYS - set(entry)
        assert entry["model"] == "tiny" and entry["version"] == "local"
        assert entry["tenant"] == "anonymous" and entry["stream"] is streamed
        assert entry["status"] == 200 and entry["error_type"] is None
        assert entry["completion_tokens"] == 6 and entry["prompt_tokens"] > 0
        assert 0 < entry["ttft_seconds"] <= entry["latency_seconds"]
        assert isinstance(entry["route_reason"], str) and entry["route_reason"]
        assert "prompt" not in entry and "completion" not in entry  # off unless enabled
    # Promtail labels only on keys the json stage extracts.
    assert set(LABEL_FIELDS) <= REQUEST_LOG_KEYS
