"""A running mesh's latency and energy figures, read from a gateway's /metrics or from a
Prometheus that scrapes the mesh. Both become one `Snapshot`, so the figures are
computed the same way whichever was read (p95: Prometheus's histogram_quantile)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from demigod.observability.scrape import (
    Labels,
    Snapshot,
    energy_stats,
    histogram_quantile,
    scrape,
)

LATENCY = "demigod_request_duration_seconds"
FIRST_TOKEN = "demigod_time_to_first_token_seconds"
# The series a one-pager reads; Prometheus is asked for these and nothing else.
SERIES = (
    f"{LATENCY}_bucket",
    f"{FIRST_TOKEN}_bucket",
    "demigod_requests_total",
    "demigod_energy_joules_total",
    "demigod_tokens_total",
)
# Requests refused before a model was chosen carry model="none": not a model's latency.
NO_MODEL = "none"


class PrometheusError(Exception):
    """Prometheus answered, but not with a query result."""


@dataclass(frozen=True)
class ModelFigures:
    """One model's requests, latency and energy over the figures' window."""

    model: str
    requests: float
    p95_seconds: float | None
    p95_first_token_seconds: float | None
    server_error_ratio: float | None
    joules_per_output_token: float | None
    energy_sources: list[str]


@dataclass(frozen=True)
class MeshFigures:
    """What a mesh's metrics say: per model, and the p95 of all its requests together."""

    source: str  # where they were read
    window: str | None  # a PromQL range; None: since each process started
    requests: float
    p95_seconds: float | None
    models: list[ModelFigures]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_gateway(url: str) -> tuple[Snapshot, str]:
    """One scrape of a gateway (or `demigod serve`). Raises httpx.HTTPError."""
    return scrape(url), f"{url.rstrip('/')}/metrics"


def read_prometheus(url: str, window: str | None, timeout: float = 10.0) -> tuple[Snapshot, str]:
    """The one-pager's series from Prometheus: their current values (counters since each
    process started), or with `window` (a PromQL range such as 30d) their increase over
    it. Raises httpx.HTTPError, or PrometheusError for a refused query."""
    samples: dict[str, dict[Labels, float]] = {}
    base = url.rstrip("/")
    for name in SERIES:
        query = name if window is None else f"increase({name}[{window}])"
        reply = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=timeout)
        try:
            body = reply.json()
        except ValueError as exc:  # not Prometheus's API: an HTTP error says more, if any
            reply.raise_for_status()
            raise PrometheusError(
                f"{base} did not answer as Prometheus: {reply.text[:200]}"
            ) from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{query}: {body.get('error', body)}")
        samples[name] = {
            frozenset((k, v) for k, v in row["metric"].items() if k != "__name__"): float(
                row["value"][1]
            )
            for row in body["data"]["result"]
        }
    where = f"{base} ({'increase over ' + window if window else 'since each process started'})"
    return Snapshot(samples, time.monotonic()), where


def mesh_figures(snapshot: Snapshot, source: str, window: str | None = None) -> MeshFigures:
    """Per-model requests, p95 latency and time to first token, 5xx share and J per
    output token; and the p95 over every model's requests."""
    requests = snapshot.by("demigod_requests_total", "model")
    errors = snapshot.by(
        "demigod_requests_total", "model", lambda labels: labels.get("status", "").startswith("5")
    )
    energy = {row.model: row for row in energy_stats(snapshot)}
    latency_models = {
        dict(labels).get("model", NO_MODEL)
        for labels in snapshot.samples.get(f"{LATENCY}_bucket", {})
    }
    all_buckets: dict[float, float] = defaultdict(float)
    models = []
    for model in sorted((set(requests) | latency_models) - {NO_MODEL}):
        buckets = snapshot.buckets(LATENCY, model)
        for bound, count in buckets.items():
            all_buckets[bound] += count
        answered = requests.get(model, 0.0)
        spent = energy.get(model)
        models.append(
            ModelFigures(
                model=model,
                requests=answered,
                p95_seconds=histogram_quantile(0.95, buckets),
                p95_first_token_seconds=histogram_quantile(
                    0.95, snapshot.buckets(FIRST_TOKEN, model)
                ),
                server_error_ratio=errors.get(model, 0.0) / answered if answered else None,
                joules_per_output_token=None if spent is None else spent.joules_per_token,
                energy_sources=[] if spent is None else spent.sources,
            )
        )
    return MeshFigures(
        source=source,
        window=window,
        requests=sum(model.requests for model in models),
        p95_seconds=histogram_quantile(0.95, dict(all_buckets)),
        models=models,
    )
