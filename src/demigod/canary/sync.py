"""The gateway's side of the canary: follow the store's weights into the version router
and the `demigod_canary_weight{model,version}` gauge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from demigod.canary.store import CanaryStore
from demigod.observability.metrics import Metrics
from demigod.routing.versions import V, VersionRouter

log = logging.getLogger(__name__)


def apply_states(
    store: CanaryStore,
    router: VersionRouter[V],
    stables: Mapping[str, V],
    static_weights: Mapping[str, float],
    metrics: Metrics,
    seen: dict[str, float] | None = None,
) -> dict[str, float]:
    """Set each candidate's weight from the store (when its entry names the versions this
    gateway serves), else from `static_weights` (percent), else 0. Returns the percents.

    `seen` holds, per model, the `updated` time of the last rolled-back state counted in
    `demigod_canary_rollbacks_total`, so each rollback counts once per gateway."""
    states = store.states()
    applied: dict[str, float] = {}
    for name, candidate in router.candidates.items():
        stable = stables[name]
        state = states.get(name)
        if state is not None and (state.stable, state.candidate) == (
            stable.version,
            candidate.version,
        ):
            percent = state.weight
            rolled_back = state.status == "rolled_back"
            if rolled_back and seen is not None and seen.get(name) != state.updated:
                seen[name] = state.updated
                metrics.canary_rollbacks.labels(name, candidate.version).inc()
        else:
            percent = static_weights.get(name, 0.0)
        if percent != router.weight(name) * 100:
            log.info(
                "canary weight",
                extra={"model": name, "candidate": candidate.version, "weight_percent": percent},
            )
        router.set_weight(name, percent / 100)
        metrics.canary_weight.labels(name, candidate.version).set(percent / 100)
        metrics.canary_weight.labels(name, stable.version).set(1 - percent / 100)
        applied[name] = percent
    return applied


async def follow_store(
    store: CanaryStore,
    router: VersionRouter[V],
    stables: Mapping[str, V],
    static_weights: Mapping[str, float],
    metrics: Metrics,
    interval: float,
) -> None:
    """`apply_states` every `interval` seconds until cancelled; a store that cannot be read
    keeps the last weights (logged), it never stops the loop."""
    seen: dict[str, float] = {}
    while True:
        try:
            await asyncio.to_thread(
                apply_states, store, router, stables, static_weights, metrics, seen
            )
        except Exception:
            log.exception("canary store unreadable; keeping the last weights")
        await asyncio.sleep(interval)
