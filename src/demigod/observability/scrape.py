"""Reading a running mesh's /metrics as an operator's tool does: per-model figures for
`demigod top` and `demigod report energy`, from one scrape or the difference of two."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Snapshot:
    """Every sample of one scrape, by sample name, and when it was taken."""

    samples: dict[str, dict[Labels, float]]
    taken: float

    @classmethod
    def parse(cls, text: str, taken: float) -> Snapshot:
        samples: dict[str, dict[Labels, float]] = defaultdict(dict)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name][frozenset(sample.labels.items())] = sample.value
        return cls(dict(samples), taken)

    def by(
        self,
        name: str,
        label: str,
        where: Callable[[dict[str, str]], bool] | None = None,
        **match: str,
    ) -> dict[str, float]:
        """Sum of `name` per value of `label`, over samples whose labels include `match`
        and satisfy `where`."""
        sums: dict[str, float] = defaultdict(float)
        for labels, value in self.samples.get(name, {}).items():
            found = dict(labels)
            if (
                label in found
                and all(found.get(k) == v for k, v in match.items())
                and (where is None or where(found))
            ):
                sums[found[label]] += value
        return dict(sums)

    def buckets(self, name: str, model: str) -> dict[float, float]:
        """Cumulative histogram buckets of `name` for `model`, summed over other labels."""
        counts: dict[float, float] = defaultdict(float)
        for labels, value in self.samples.get(f"{name}_bucket", {}).items():
            found = dict(labels)
            if found.get("model") == model:
                counts[float(found["le"])] += value
        return dict(counts)


def scrape(url: str, timeout: float = 10.0) -> Snapshot:
    """GET `url`/metrics and parse it. Raises httpx.HTTPError when the mesh does not answer."""
    reply = httpx.get(f"{url.rstrip('/')}/metrics", timeout=timeout)
    reply.raise_for_status()
    return Snapshot.parse(reply.text, time.monotonic())


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's histogram_quantile over cumulative `buckets` ({le: count}); None when
    there are no observations. Linear interpolation inside the bucket, as Prometheus does."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # the highest finite bucket bound, as Prometheus answers
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return None


def _server_error(labels: dict[str, str]) -> bool:
    return labels.get("status", "").startswith("5")


def _delta(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


@dataclass
class ModelStats:
    """What `demigod top` shows for one model."""

    model: str
    rps: float
    p95_seconds: float | None
    queue_depth: float
    inflight: float
    error_ratio: float | None
    state_cache_hit_ratio: float | None
    probe_ok: bool | None
    canary_weights: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def model_stats(before: Snapshot, after: Snapshot) -> list[ModelStats]:
    """Per-model rates and p95 over the interval between two scrapes of the same mesh."""
    seconds = max(after.taken - before.taken, 1e-9)
    requests = after.by("demigod_requests_total", "model")
    previous = before.by("demigod_requests_total", "model")
    errors = after.by("demigod_requests_total", "model", _server_error)
    errors_before = before.by("demigod_requests_total", "model", _server_error)
    hits = after.by("demigod_state_cache_hits_total", "model")
    misses = after.by("demigod_state_cache_misses_total", "model")
    queues = after.by("demigod_queue_depth", "model")
    inflight = after.by("demigod_inflight_requests", "model")
    probes = after.by("demigod_probe_success", "model")
    models = sorted((set(requests) | set(queues)) - {"none"})
    rows = []
    for model in models:
        answered = requests.get(model, 0.0) - previous.get(model, 0.0)
        failed = errors.get(model, 0.0) - errors_before.get(model, 0.0)
        lookups = hits.get(model, 0.0) + misses.get(model, 0.0)
        interval_buckets = _delta(
            after.buckets("demigod_request_duration_seconds", model),
            before.buckets("demigod_request_duration_seconds", model),
        )
        rows.append(
            ModelStats(
                model=model,
                rps=answered / seconds,
                # Over the interval when it saw traffic, else since the mesh started.
                p95_seconds=histogram_quantile(0.95, interval_buckets)
                or histogram_quantile(
                    0.95, after.buckets("demigod_request_duration_seconds", model)
                ),
                queue_depth=queues.get(model, 0.0),
                inflight=inflight.get(model, 0.0),
                error_ratio=failed / answered if answered else None,
                state_cache_hit_ratio=hits.get(model, 0.0) / lookups if lookups else None,
                probe_ok=None if model not in probes else probes[model] == 1.0,
                canary_weights=after.by("demigod_canary_weight", "version", model=model),
            )
        )
    return rows


@dataclass
class EnergyStats:
    """Energy and throughput of one model since the mesh started."""

    model: str
    sources: list[str]
    joules: float
    output_tokens: float
    joules_per_token: float | None
    decode_tokens_per_second: float | None
    requests: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def energy_stats(snapshot: Snapshot) -> list[EnergyStats]:
    """J per output token and decode speed per model, from one scrape's cumulative counters."""
    joules = snapshot.by("demigod_energy_joules_total", "model")
    tokens = snapshot.by("demigod_tokens_total", "model", type="output")
    requests = snapshot.by("demigod_requests_total", "model")
    token_seconds = snapshot.by("demigod_time_per_output_token_seconds_sum", "model")
    token_counts = snapshot.by("demigod_time_per_output_token_seconds_count", "model")
    rows = []
    for model in sorted((set(tokens) | set(joules)) - {"none"}):
        sources = sorted(
            dict(labels)["source"]
            for labels in snapshot.samples.get("demigod_energy_joules_total", {})
            if dict(labels).get("model") == model
        )
        spent, produced = joules.get(model, 0.0), tokens.get(model, 0.0)
        mean_token_seconds = (
            token_seconds[model] / token_counts[model] if token_counts.get(model) else None
        )
        rows.append(
            EnergyStats(
                model=model,
                sources=sources,
                joules=spent,
                output_tokens=produced,
                joules_per_token=spent / produced if produced and model in joules else None,
                decode_tokens_per_second=1 / mean_token_seconds if mean_token_seconds else None,
                requests=requests.get(model, 0.0),
            )
        )
    return rows
