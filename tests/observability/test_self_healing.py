"""A model that keeps failing its deep probe is restarted: the rule (with a stand-in
engine, since a real one cannot be made to fail on purpose) and the restart itself (with
the real llama.cpp engine)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from demigod.config import EngineConfig, ModelConfig
from demigod.engines.base import EngineError, GenerationEvent, GenerationRequest
from demigod.engines.chat_template import ChatTemplate
from demigod.mesh import Mesh, ServedModel
from demigod.observability.metrics import Metrics
from demigod.observability.probes import DEEP_PROBE_TOKENS, DeepProber


class StandInEngine:
    """Just what the deep probe uses of an engine. Each generation fails or succeeds as
    `outcomes` says, in turn (True: it works); `broken` makes every one fail."""

    def __init__(self, broken: bool, outcomes: Iterator[bool] | None = None) -> None:
        self.broken = broken
        self.outcomes = outcomes
        self.generations = 0

    def tokenize(self, text: str) -> list[int]:
        return [1, 2, 3]

    def queue_depth(self) -> int:
        return 0

    @asynccontextmanager
    async def _events(self, works: bool) -> AsyncIterator[AsyncIterator[GenerationEvent]]:
        async def events() -> AsyncIterator[GenerationEvent]:
            if not works:
                raise EngineError("decode failed")
            for produced in range(1, DEEP_PROBE_TOKENS + 1):
                yield GenerationEvent("x", produced)

        yield events()

    def generate(self, request: GenerationRequest) -> object:
        self.generations += 1
        works = next(self.outcomes) if self.outcomes is not None else not self.broken
        return self._events(works)


def sample(metrics: Metrics, name: str, model: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"model": model})


def test_three_failed_probes_in_a_row_restart_the_model_once() -> None:
    metrics = Metrics()
    prober = DeepProber(metrics)
    served = ServedModel("m", StandInEngine(broken=True), ["chat"], "v1", ChatTemplate(None))  # type: ignore[arg-type]
    restarted = asyncio.Event()
    restarts: list[str] = []

    async def restart(name: str) -> None:
        restarts.append(name)
        served.engine = StandInEngine(broken=False)  # type: ignore[assignment]
        restarted.set()

    async def scenario() -> None:
        loop = asyncio.create_task(prober.run_every(0.01, lambda: {"m": served}, restart, 3))
        await asyncio.wait_for(restarted.wait(), 10)
        assert sample(metrics, "demigod_probe_success", "m") == 0
        await asyncio.sleep(0.2)  # healthy now: more probes, no more restarts
        loop.cancel()

    asyncio.run(scenario())
    assert restarts == ["m"]
    assert sample(metrics, "demigod_model_restarts_total", "m") == 1
    assert sample(metrics, "demigod_probe_success", "m") == 1


def test_no_restart_when_disabled_or_when_failures_are_not_consecutive() -> None:
    metrics = Metrics()
    prober = DeepProber(metrics)
    always_failing = StandInEngine(broken=True)
    # fail, fail, work, fail, fail, work, ...: never three failures in a row
    flaky = StandInEngine(broken=False, outcomes=itertools.cycle([False, False, True]))
    models = {
        name: ServedModel(name, engine, ["chat"], "v1", ChatTemplate(None))  # type: ignore[arg-type]
        for name, engine in (("failing", always_failing), ("flaky", flaky))
    }
    restarts: list[str] = []

    async def restart(name: str) -> None:
        restarts.append(name)

    async def scenario() -> None:
        never = asyncio.create_task(
            prober.run_every(0.01, lambda: {"failing": models["failing"]}, restart, 0)
        )
        sometimes = asyncio.create_task(
            prober.run_every(0.01, lambda: {"flaky": models["flaky"]}, restart, 3)
        )
        while always_failing.generations < 10 or flaky.generations < 10:
            await asyncio.sleep(0.01)
        never.cancel()
        sometimes.cancel()

    asyncio.run(scenario())
    assert restarts == []
    assert sample(metrics, "demigod_model_restarts_total", "failing") is None


def test_restart_loads_a_fresh_engine_that_serves(tiny_model: Path) -> None:
    async def scenario() -> None:
        config = ModelConfig(name="tiny", path=tiny_model)
        mesh = await Mesh.load([config], EngineConfig(n_threads=1, n_ctx=256))
        try:
            old = mesh.models["tiny"].engine
            await mesh.restart("tiny")
            served = mesh.models["tiny"]
            assert served.engine is not old and served.engine.health()
            assert served.load_seconds > 0
            assert await DeepProber(Metrics()).probe(served) == "ok"
        finally:
            await mesh.close()

    asyncio.run(scenario())
