"""Engines built directly (no server): the tiny model with small slots and chunks, so a
handful of requests already exercise joining, leaving and chunked prefill."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from demigod.config import EngineConfig, StateCacheConfig
from demigod.engines.base import GenerationRequest, SamplingParams
from demigod.engines.llama_cpp import LlamaCppEngine

# Chunk smaller than most test prompts: their prefill spans steps shared with decoding.
CHUNK = 8
SLOTS = 3


def engine_config(**state_cache: object) -> EngineConfig:
    """One decode thread (the tests share two cores); state cache off unless configured."""
    cache = StateCacheConfig(**state_cache) if state_cache else StateCacheConfig(enabled=False)
    return EngineConfig(n_threads=1, slots=SLOTS, n_batch=CHUNK, n_ctx=512, state_cache=cache)


class EngineRunner:
    """Runs engines on one private event loop, as the gateway would."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._engines: list[LlamaCppEngine] = []

    def open(self, model: Path, config: EngineConfig) -> LlamaCppEngine:
        engine = LlamaCppEngine("tiny", model, config)
        self._engines.append(engine)
        return engine

    def close(self, engine: LlamaCppEngine) -> None:
        self._engines.remove(engine)
        self.loop.run_until_complete(engine.close())

    def complete(
        self,
        engine: LlamaCppEngine,
        tokens: list[int],
        params: SamplingParams,
        next_turn: bool = True,
    ) -> str:
        return self.loop.run_until_complete(collect(engine, tokens, params, next_turn))

    def complete_all(
        self, engine: LlamaCppEngine, requests: list[tuple[list[int], SamplingParams]]
    ) -> list[str]:
        async def together() -> list[str]:
            return list(await asyncio.gather(*(collect(engine, t, p) for t, p in requests)))

        return self.loop.run_until_complete(together())

    def shutdown(self) -> None:
        for engine in list(self._engines):
            self.close(engine)
        self.loop.close()


async def collect(
    engine: LlamaCppEngine, tokens: list[int], params: SamplingParams, next_turn: bool = True
) -> str:
    """The whole answer. Every request is a conversation turn unless `next_turn` is False."""
    parts = []
    request = GenerationRequest(tokens, params, next_turn_expected=next_turn)
    async with engine.generate(request) as events:
        async for event in events:
            parts.append(event.text)
    return "".join(parts)


@pytest.fixture
def runner() -> Iterator[EngineRunner]:
    running = EngineRunner()
    yield running
    running.shutdown()
