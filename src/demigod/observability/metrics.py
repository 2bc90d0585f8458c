"""Prometheus metrics with the names the alert rules and dashboards use (design.md).

One `Metrics` object per app, each with its own registry: no global state, so tests and
several apps in one process do not collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Latency buckets from 5 ms to 2 min: token times sit at the low end, whole requests high.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TOKEN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _QueueDepthCollector(Collector):
    """Reads each model's queue depth at scrape time, so the gauge is never stale."""

    def __init__(self, depths: Callable[[], Mapping[str, int]], replica: str) -> None:
        self._depths = depths
        self._replica = replica

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "demigod_queue_depth",
            "Requests waiting or running per model replica",
            labels=["model", "replica"],
        )
        for model, depth in self._depths().items():
            family.add_metric([model, self._replica], depth)
        yield family


class Metrics:
    def __init__(self) -> None:
        # `*_created` series double every counter's cardinality and no dashboard reads them.
        disable_created_metrics()
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "demigod_requests",
            "Requests answered, by model, version, tenant and HTTP status",
            ["model", "version", "tenant", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "demigod_request_duration_seconds",
            "Time from request received to last byte",
            ["model", "tenant"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "demigod_time_to_first_token_seconds",
            "Time from request received to first generated token",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.time_per_output_token = Histogram(
            "demigod_time_per_output_token_seconds",
            "Mean time between generated tokens, per request",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "demigod_tokens",
            "Tokens processed, input (prompt) and output (completion)",
            ["model", "tenant", "type"],
            registry=registry,
        )
        self.inflight = Gauge(
            "demigod_inflight_requests",
            "Requests being answered now",
            ["model"],
            registry=registry,
        )

    def watch_queues(self, depths: Callable[[], Mapping[str, int]], replica: str) -> None:
        """Export `demigod_queue_depth` from `depths()` at every scrape."""
        self.registry.register(_QueueDepthCollector(depths, replica))

    def render(self) -> bytes:
        return generate_latest(self.registry)
