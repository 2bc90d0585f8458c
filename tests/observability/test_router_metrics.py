"""The gauges Kubernetes inference routers read, from a batching engine's occupancy."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from demigod.engines.base import SchedulerStats
from demigod.observability.metrics import ROUTER_METRICS, Metrics, SchedulerCollector


def test_waiting_running_and_slot_use_are_exported_per_model() -> None:
    metrics = Metrics()
    occupancy = {
        "chat": SchedulerStats(waiting=5, running=4, slots=8),
        "code": SchedulerStats(slots=8),
    }
    metrics.watch(SchedulerCollector(lambda: occupancy))
    samples = {
        (sample.name, sample.labels["model"]): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if family.name in ROUTER_METRICS.values()
    }
    assert samples == {
        ("demigod_num_requests_waiting", "chat"): 5,
        ("demigod_num_requests_running", "chat"): 4,
        ("demigod_kv_cache_usage_perc", "chat"): 0.5,
        ("demigod_num_requests_waiting", "code"): 0,
        ("demigod_num_requests_running", "code"): 0,
        ("demigod_kv_cache_usage_perc", "code"): 0,
    }
    occupancy["chat"] = SchedulerStats(running=8, slots=8)  # read at scrape time, never stale
    assert 'demigod_kv_cache_usage_perc{model="chat"} 1.0' in metrics.render().decode()
