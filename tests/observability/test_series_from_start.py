"""Every series the rendered alert rules and dashboards read exists on a default mesh as
soon as it serves (a first deep probe at startup included), so a panel shows 0 or "all on
stable" instead of "no data", and an alert can tell "fine" from "missing"."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from demigod.config import Settings
from demigod.deploy.observability.alerts import alert_rules
from demigod.deploy.observability.dashboards import dashboards
from tests.conftest import Server, start_server, stop_server

# Not on a default mesh: GPU series need a GPU; upstream replicas need `upstreams:`;
# demigod_drift comes from `demigod ops drift --watch`, another process.
ELSEWHERE = {
    "demigod_gpu_memory_total_bytes",
    "demigod_gpu_memory_used_bytes",
    "demigod_gpu_utilization_ratio",
    "demigod_upstream_up",
    "demigod_drift",
}
# Labelled by the tenant (and status) of requests: they begin with the first request.
PER_REQUEST = {
    "demigod_requests_total",
    "demigod_tokens_total",
    "demigod_request_duration_seconds_bucket",
    "demigod_time_to_first_token_seconds_bucket",
}
LIVENESS_SECONDS = 120.0  # liveness only: the startup probe takes seconds


def series_read_by_rules_and_dashboards() -> set[str]:
    rendered = json.dumps(alert_rules(Settings())) + json.dumps(dashboards())
    return set(re.findall(r"\bdemigod_[a-z0-9_]+", rendered))


def exported(server: Server) -> dict[str, list[tuple[dict[str, str], float]]]:
    page = httpx.get(f"{server.url}/metrics", timeout=30).text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


@pytest.fixture(scope="module")
def default_mesh(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`demigod serve --model` with default settings, except auth (off: the test only
    reads) and an hour between deep probes, so that the one seen is the startup probe."""
    server = start_server(
        [f"tiny={tiny_model}"],
        tmp_path_factory.mktemp("series"),
        config="observability:\n  deep_probe_interval_seconds: 3600\n",
    )
    yield server
    stop_server(server)


def test_every_series_the_rules_and_dashboards_read_exists_from_the_start(
    default_mesh: Server,
) -> None:
    wanted = series_read_by_rules_and_dashboards()
    assert wanted >= {"demigod_canary_weight", "demigod_probe_success", *PER_REQUEST}
    deadline = time.monotonic() + LIVENESS_SECONDS
    while "demigod_probe_success" not in (found := exported(default_mesh)):
        assert time.monotonic() < deadline, "no deep probe ran at startup"
        time.sleep(0.5)
    missing = wanted - ELSEWHERE - PER_REQUEST - set(found)
    assert not missing, f"absent before any request: {sorted(missing)}"

    assert found["demigod_canary_weight"] == [({"model": "tiny", "version": "local"}, 1.0)]
    assert found["demigod_canary_rollbacks_total"] == [({"model": "tiny", "version": "local"}, 0.0)]
    assert found["demigod_probe_success"] == [({"model": "tiny"}, 1.0)]
    assert ({"model": "tiny"}, 0.0) in found["demigod_inflight_requests"]
    assert {labels["rule"] for labels, _ in found["demigod_waf_blocked_total"]} >= {"model"}
    assert all(value == 0 for _, value in found["demigod_waf_blocked_total"])
    assert {labels["model"] for labels, _ in found["demigod_energy_joules_total"]} == {"tiny"}

    body = {"model": "tiny", "prompt": "Hello", "max_tokens": 2}
    assert httpx.post(f"{default_mesh.url}/v1/completions", json=body, timeout=60).is_success
    missing = wanted - ELSEWHERE - set(exported(default_mesh))
    assert not missing, f"absent after a request: {sorted(missing)}"
