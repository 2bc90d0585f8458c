"""The deep probe: a short greedy generation through a model, exported as
`demigod_probe_success{model}` and `demigod_probe_duration_seconds{model}`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from demigod.engines.base import GenerationRequest, SamplingParams
from demigod.mesh import ServedModel
from demigod.observability.metrics import Metrics

log = logging.getLogger(__name__)

# The synthetic prompt sent through every model, and how many tokens it must produce.
DEEP_PROBE_PROMPT = "The quick brown fox"
DEEP_PROBE_TOKENS = 4


class DeepProber:
    """Runs deep probes and records their outcome in `metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def probe(self, served: ServedModel) -> str:
        """ "ok", or "error: ..." saying what went wrong. Never raises."""
        started = time.perf_counter()
        result = await _generate(served)
        self._metrics.probe_success.labels(served.name).set(1 if result == "ok" else 0)
        self._metrics.probe_duration.labels(served.name).set(time.perf_counter() - started)
        if result != "ok":
            log.warning("deep probe failed", extra={"model": served.name, "error": result})
        return result

    async def run_every(
        self, interval: float, models: Callable[[], Mapping[str, ServedModel]]
    ) -> None:
        """Probe every idle model each `interval` seconds, until cancelled.

        A model with requests queued or running is skipped: it is not starved of a queue
        slot by its own health check, and a stuck busy model trips the queue-depth alert.
        """
        while True:
            await asyncio.sleep(interval)
            for served in models().values():
                if served.engine.queue_depth() == 0:
                    await self.probe(served)


async def _generate(served: ServedModel) -> str:
    try:
        tokens = await asyncio.to_thread(served.engine.tokenize, DEEP_PROBE_PROMPT)
        params = SamplingParams(max_tokens=DEEP_PROBE_TOKENS, temperature=0.0, ignore_eos=True)
        produced = 0
        async with served.engine.generate(
            GenerationRequest(tokens, params, "deep-probe")
        ) as events:
            async for event in events:
                produced = event.completion_tokens
    except Exception as exc:
        return f"error: {exc}"
    return (
        "ok"
        if produced == DEEP_PROBE_TOKENS
        else f"error: produced {produced} of {DEEP_PROBE_TOKENS} tokens"
    )
