"""The deep probe: a short greedy generation through a model, then the Hemlock suite's
`probe: true` cases (expected-output checks), exported as `demigod_probe_success{model}`
and `demigod_probe_duration_seconds{model}`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from demigod.engines.base import GenerationRequest, SamplingParams
from demigod.evaluation.hemlock import Case
from demigod.mesh import ServedModel
from demigod.observability.metrics import Metrics

log = logging.getLogger(__name__)

# The synthetic prompt sent through every model, and how many tokens it must produce.
DEEP_PROBE_PROMPT = "The quick brown fox"
DEEP_PROBE_TOKENS = 4


class DeepProber:
    """Runs deep probes, records their outcome in `metrics`, and restarts a model whose
    probes keep failing."""

    def __init__(self, metrics: Metrics, probe_cases: Sequence[Case] = ()) -> None:
        """`probe_cases`: Hemlock cases each probe also runs and checks (see hemlock)."""
        self._metrics = metrics
        self._cases = tuple(probe_cases)
        self._failures: dict[str, int] = {}  # failed probes in a row, per model

    async def probe(self, served: ServedModel) -> str:
        """Probe `served` once: returns "ok", or "error: ..." saying what went wrong.
        Never raises."""
        started = time.perf_counter()
        result = await _generate(served)
        for case in self._cases if result == "ok" else ():
            result = await _run_case(served, case)
            if result != "ok":
                break
        self._metrics.probe_success.labels(served.name).set(1 if result == "ok" else 0)
        self._metrics.probe_duration.labels(served.name).set(time.perf_counter() - started)
        if result == "ok":
            self._failures[served.name] = 0
        else:
            self._failures[served.name] = self._failures.get(served.name, 0) + 1
            log.warning("deep probe failed", extra={"model": served.name, "error": result})
        return result

    async def run_every(
        self,
        interval: float,
        models: Callable[[], Mapping[str, ServedModel]],
        restart: Callable[[str], Awaitable[None]],
        restart_after: int,
    ) -> None:
        """Probe every idle model at once (so `demigod_probe_success` exists from the
        start), then each `interval` seconds, until cancelled; `restart` a model after
        `restart_after` failed probes in a row (0: never).

        A model with requests queued or running is skipped: it is not starved of a queue
        slot by its own health check, and a stuck busy model trips the queue-depth alert.
        """
        while True:
            for served in models().values():
                if served.engine.queue_depth() > 0:
                    continue
                await self.probe(served)
                failures = self._failures.get(served.name, 0)
                if restart_after and failures >= restart_after:
                    await self._restart(served.name, failures, restart)
            await asyncio.sleep(interval)

    async def _restart(
        self, name: str, failures: int, restart: Callable[[str], Awaitable[None]]
    ) -> None:
        log.error("restarting model", extra={"model": name, "failed_probes": failures})
        self._metrics.model_restarts.labels(name).inc()
        self._failures[name] = 0
        try:
            await restart(name)
        except Exception:
            # The next probes fail again and retry the restart; the loop must go on.
            log.exception("model restart failed", extra={"model": name})


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


async def _run_case(served: ServedModel, case: Case) -> str:
    """Generate `case`'s reply straight from the engine and check it: "ok" or "error: ..."."""
    from demigod.protocol import ChatMessage

    try:
        if case.messages is not None:
            chat = [ChatMessage(role=m.role, content=m.content) for m in case.messages]
            prompt, add_special, stops = served.chat_template.render(chat), True, True
        else:
            prompt, add_special, stops = case.prompt or "", False, False
        tokens = await asyncio.to_thread(
            served.engine.tokenize, prompt, add_special=add_special, parse_special=stops
        )
        params = case.params
        sampling = SamplingParams(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p if params.top_p is not None else 1.0,
            seed=params.seed,
            stop=(*(params.stop or ()), *(served.chat_template.stops if stops else ())),
        )
        started = time.perf_counter()
        text = ""
        async with served.engine.generate(
            GenerationRequest(tokens, sampling, f"deep-probe-{case.id}")
        ) as events:
            async for event in events:
                text += event.text
        latency_ms = (time.perf_counter() - started) * 1000
    except Exception as exc:
        return f"error: case {case.id}: {exc}"
    failures = case.failures(text, latency_ms)
    return "ok" if not failures else f"error: case {case.id}: {'; '.join(failures)}"
