"""Prometheus metrics with the names the alert rules and dashboards use (design.md).

One `Metrics` object per app, each with its own registry: no global state, so tests and
several apps in one process do not collide.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from prometheus_client import (
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from demigod import __version__
from demigod.engines.base import SchedulerStats, StateCacheStats

# Latency buckets from 5 ms to 10 min: first tokens sit at the low end, whole requests high
# (a long generation on a CPU runs for minutes); 3 s, the paging threshold, is a boundary.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 600
)  # fmt: skip
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


# The model-server protocol of Kubernetes inference routers (Gateway API Inference
# Extension, llm-d): per-pod gauges of queued requests, running requests and cache use.
# vLLM calls them vllm:num_requests_waiting, vllm:num_requests_running and
# vllm:kv_cache_usage_perc; the endpoint picker's engine config maps these names to them.
ROUTER_METRICS = {
    "queued": "demigod_num_requests_waiting",
    "running": "demigod_num_requests_running",
    "cache_usage": "demigod_kv_cache_usage_perc",
}


class SchedulerCollector(Collector):
    """Queue waits and decode-step batch sizes, and the waiting/running/slot-use gauges
    inference routers read, from the engines at scrape time.

    Mean queue wait: rate(demigod_queue_wait_seconds_total) / rate(demigod_queue_admitted_total);
    mean batch size: rate(demigod_decode_step_sequences_total) / rate(demigod_decode_steps_total).
    """

    def __init__(self, stats: Callable[[], Mapping[str, SchedulerStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        families = {
            "admitted": CounterMetricFamily(
                "demigod_queue_admitted", "Requests admitted to a decode slot", labels=["model"]
            ),
            "queue_wait_seconds": CounterMetricFamily(
                "demigod_queue_wait_seconds",
                "Seconds admitted requests waited for a decode slot",
                labels=["model"],
            ),
            "steps": CounterMetricFamily(
                "demigod_decode_steps", "Batched llama_decode steps", labels=["model"]
            ),
            "stepped_sequences": CounterMetricFamily(
                "demigod_decode_step_sequences",
                "Sequences advanced by decode steps (divide by steps: mean batch size)",
                labels=["model"],
            ),
        }
        # The model-server protocol gauges (ROUTER_METRICS), from the occupancy now.
        waiting = GaugeMetricFamily(
            ROUTER_METRICS["queued"], "Requests waiting for a decode slot", labels=["model"]
        )
        running = GaugeMetricFamily(
            ROUTER_METRICS["running"], "Sequences holding a decode slot", labels=["model"]
        )
        usage = GaugeMetricFamily(
            ROUTER_METRICS["cache_usage"],
            "Share of decode slots, each one sequence's reserved state, in use (0-1)",
            labels=["model"],
        )
        for model, stats in self._stats().items():
            for field_name, family in families.items():
                family.add_metric([model], getattr(stats, field_name))
            waiting.add_metric([model], stats.waiting)
            running.add_metric([model], stats.running)
            usage.add_metric([model], stats.state_usage)
        yield from families.values()
        yield from (waiting, running, usage)


class StateCacheCollector(Collector):
    """Recurrent-state cache counters, read from the engines at scrape time."""

    def __init__(self, stats: Callable[[], Mapping[str, StateCacheStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        labels = ["model", "tier"]
        hits = CounterMetricFamily(
            "demigod_state_cache_hits", "Prompts resumed from a saved state, by tier", labels=labels
        )
        misses = CounterMetricFamily(
            "demigod_state_cache_misses", "Lookups the tier could not serve", labels=labels
        )
        held = GaugeMetricFamily(
            "demigod_state_cache_bytes", "Saved-state bytes held, by tier", labels=labels
        )
        for model, stats in self._stats().items():
            for family, values in ((hits, stats.hits), (misses, stats.misses), (held, stats.bytes)):
                for tier, value in values.items():
                    family.add_metric([model, tier], value)
        yield from (hits, misses, held)


def _llama_cpp_version() -> str:
    try:
        return package_version("llama-cpp-python")
    except PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every metric the gateway exports, in one registry.

    Metrics of features still being built (canary: issue 5, WAF and upstreams: issues 5
    and 7) are declared here already, so the shipped alert rules and dashboards refer to
    names that exist; they have no samples until their feature records one.
    """

    def __init__(self) -> None:
        # `*_created` series double every counter's cardinality and no dashboard reads them.
        disable_created_metrics()
        self.registry = CollectorRegistry()
        registry = self.registry
        # process_* (CPU, memory, fds, start time) and python_info, as every exporter has.
        registry.register(PROCESS_COLLECTOR)
        registry.register(PLATFORM_COLLECTOR)
        self.build_info = Gauge(
            "demigod_build_info",
            "Always 1; the labels say which build is running",
            ["version", "llama_cpp_version", "python_version"],
            registry=registry,
        )
        self.build_info.labels(__version__, _llama_cpp_version(), platform.python_version()).set(1)
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
        self.version_request_duration = Histogram(
            "demigod_version_request_duration_seconds",
            "Time from request received to last byte, by model version (canary analysis)",
            ["model", "version"],
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
        self.model_load_seconds = Gauge(
            "demigod_model_load_seconds",
            "Seconds the model took to load at startup",
            ["model"],
            registry=registry,
        )
        self.probe_success = Gauge(
            "demigod_probe_success",
            "1 if the model's last deep probe produced the expected tokens, else 0",
            ["model"],
            registry=registry,
        )
        self.model_restarts = Counter(
            "demigod_model_restarts",
            "Engines restarted after failing their deep probe several times in a row",
            ["model"],
            registry=registry,
        )
        self.probe_duration = Gauge(
            "demigod_probe_duration_seconds",
            "How long the model's last deep probe took",
            ["model"],
            registry=registry,
        )
        self.canary_weight = Gauge(
            "demigod_canary_weight",
            "Share of the model's traffic routed to this version (0-1)",
            ["model", "version"],
            registry=registry,
        )
        self.canary_rollbacks = Counter(
            "demigod_canary_rollbacks",
            "Canary versions rolled back automatically",
            ["model", "version"],
            registry=registry,
        )
        self.waf_blocked = Counter(
            "demigod_waf_blocked",
            "Requests blocked by the prompt firewall, by rule",
            ["rule"],
            registry=registry,
        )
        self.waf_flagged = Counter(
            "demigod_waf_flagged",
            "Requests the prompt firewall let through but flagged (action flag or log), by rule",
            ["rule", "action"],
            registry=registry,
        )
        self.upstream_up = Gauge(
            "demigod_upstream_up",
            "1 while the gateway reaches the model replica, else 0",
            ["model", "replica"],
            registry=registry,
        )

    def declare_served(self, stable: Mapping[str, str], candidates: Mapping[str, str]) -> None:
        """Give the per-model series their starting values (model -> version), so that
        dashboards and alerts see "0" or "all on stable" from the start, not "no data":
        the stable version's weight 1 (a candidate's 0 until the canary store says
        otherwise), no rollbacks, nothing in flight."""
        for model, version in stable.items():
            self.canary_weight.labels(model, version).set(1.0)
            self.canary_rollbacks.labels(model, version)
            self.inflight.labels(model)
        for model, version in candidates.items():
            self.canary_weight.labels(model, version).set(0.0)
            self.canary_rollbacks.labels(model, version)

    def watch_queues(self, depths: Callable[[], Mapping[str, int]], replica: str) -> None:
        """Export `demigod_queue_depth` from `depths()` at every scrape."""
        self.registry.register(_QueueDepthCollector(depths, replica))

    def watch(self, collector: Collector) -> None:
        """Add a collector read at every scrape (energy, GPU)."""
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)
