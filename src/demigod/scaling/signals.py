"""What the autoscaler reads from each worker: its /metrics, as Prometheus would scrape it.

Per replica: requests waiting or running (`demigod_queue_depth`), resident memory
(`process_resident_memory_bytes`) and GPU memory (`demigod_gpu_memory_used_bytes`, only
where a GPU is present). The HPA metrics are their averages per replica, counting a
replica still starting as idle, as Kubernetes does for pods not yet ready when it scales
up.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from demigod.config import AutoscaleConfig
from demigod.scaling.hpa import MetricValue

QUEUE_DEPTH = "demigod_queue_depth"
RESIDENT_MEMORY = "process_resident_memory_bytes"
GPU_MEMORY = "demigod_gpu_memory_used_bytes"


@dataclass(frozen=True)
class ReplicaSignals:
    url: str
    queue_depth: float
    memory_bytes: float | None
    gpu_memory_bytes: float | None


def parse_signals(url: str, model: str, text: str) -> ReplicaSignals:
    """The signals in one /metrics page (Prometheus text format)."""
    queue = 0.0
    memory = gpu = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == QUEUE_DEPTH and sample.labels.get("model") == model:
                queue += sample.value
            elif sample.name == RESIDENT_MEMORY:
                memory = sample.value
            elif sample.name == GPU_MEMORY:
                gpu = (gpu or 0.0) + sample.value
    return ReplicaSignals(url, queue, memory, gpu)


def scrape(client: httpx.Client, url: str, model: str) -> ReplicaSignals | None:
    """`url`'s signals, or None when it does not answer (it is then left out)."""
    try:
        response = client.get(f"{url}/metrics")
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_signals(url, model, response.text)


def metric_values(
    signals: list[ReplicaSignals], replicas: int, config: AutoscaleConfig
) -> list[MetricValue]:
    """Per-replica averages over `replicas` (those not reporting count as idle) against
    the configured targets; memory metrics only when targeted and reported."""
    count = max(replicas, 1)
    values = [
        MetricValue(
            "queue_depth", sum(s.queue_depth for s in signals) / count, config.target_queue_depth
        )
    ]
    memory = [s.memory_bytes for s in signals if s.memory_bytes is not None]
    if config.target_memory_bytes is not None and memory:
        values.append(MetricValue("memory", sum(memory) / len(memory), config.target_memory_bytes))
    gpu = [s.gpu_memory_bytes for s in signals if s.gpu_memory_bytes is not None]
    if config.target_gpu_memory_bytes is not None and gpu:
        values.append(
            MetricValue("gpu_memory", sum(gpu) / len(gpu), config.target_gpu_memory_bytes)
        )
    return values
