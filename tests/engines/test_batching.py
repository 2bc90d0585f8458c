"""Continuous batching: concurrent sequences give exactly what they give alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from demigod.config import EngineConfig
from demigod.engines.base import GenerationRequest, QueueFullError, SamplingParams
from tests.engines.conftest import CHUNK, SLOTS, EngineRunner, collect, engine_config

# Varied lengths: some prompts fit one chunk, others take several prefill steps.
PROMPTS = [f"Request {i} asks about " + "the module " * (i * 3) + f"topic{i}" for i in range(8)]


def requests(
    engine_tokens: list[list[int]], **sampling: object
) -> list[tuple[list, SamplingParams]]:
    return [
        (tokens, SamplingParams(max_tokens=12 + 3 * i, ignore_eos=True, **sampling))  # type: ignore[arg-type]
        for i, tokens in enumerate(engine_tokens)
    ]


@pytest.mark.parametrize(
    "sampling", [{"temperature": 0.0}, {"temperature": 1.0, "top_p": 0.9, "seed": 11}]
)
def test_concurrent_outputs_equal_one_at_a_time(
    tiny_model: Path, runner: EngineRunner, sampling: dict[str, object]
) -> None:
    engine = runner.open(tiny_model, engine_config())
    tokens = [engine.tokenize(prompt) for prompt in PROMPTS]
    assert len(PROMPTS) > SLOTS and max(map(len, tokens)) > 3 * CHUNK
    batch = requests(tokens, **sampling)
    alone = [runner.complete(engine, t, p) for t, p in batch]
    together = runner.complete_all(engine, batch)
    assert together == alone
    assert len(set(alone)) == len(alone)  # every request's answer is its own: none mixed


def test_results_do_not_depend_on_slots_or_chunk(tiny_model: Path, runner: EngineRunner) -> None:
    """One slot and whole-prompt prefill is the plain sequential decoder."""
    batched = runner.open(tiny_model, engine_config())
    tokens = [batched.tokenize(prompt) for prompt in PROMPTS]
    batch = requests(tokens, temperature=1.0, seed=5)
    together = runner.complete_all(batched, batch)
    plain = runner.open(tiny_model, EngineConfig(n_threads=1, slots=1, n_batch=512, n_ctx=512))
    assert [runner.complete(plain, t, p) for t, p in batch] == together


def test_stop_sequence_ends_only_its_own_request(tiny_model: Path, runner: EngineRunner) -> None:
    engine = runner.open(tiny_model, engine_config())
    tokens = [engine.tokenize(prompt) for prompt in PROMPTS[:4]]
    free = requests(tokens, temperature=1.0, seed=3)
    full = runner.complete_all(engine, free)
    stop = full[0][len(full[0]) // 2 :][:3]  # text from the middle of request 0's answer
    stopped = [(free[0][0], SamplingParams(**{**free[0][1].__dict__, "stop": (stop,)}))]
    mixed = runner.complete_all(engine, stopped + free[1:])
    assert mixed[0] == full[0][: full[0].index(stop)]
    assert mixed[1:] == full[1:]


def test_queue_full_is_refused_and_cancelled_slots_are_reused(
    tiny_model: Path, runner: EngineRunner
) -> None:
    engine = runner.open(tiny_model, engine_config().model_copy(update={"queue_size": 1}))
    long = SamplingParams(max_tokens=400, temperature=0.0, ignore_eos=True)
    prompt = engine.tokenize("go")

    async def scenario() -> tuple[int, str]:
        streams, refused = [], 0
        for _ in range(SLOTS + 3):
            try:
                streams.append(engine.generate(GenerationRequest(prompt, long)))
            except QueueFullError:
                refused += 1
            await asyncio.sleep(0.05)  # let the scheduler admit what fits
        for stream in streams:  # every client leaves after its first event
            await anext(stream)
            await stream.aclose()
        # with every slot freed, a new request runs to the end
        answer = await collect(engine, prompt, SamplingParams(max_tokens=5, temperature=0.0))
        return refused, answer

    refused, answer = runner.loop.run_until_complete(scenario())
    assert refused >= 1
    assert answer and engine.queue_depth() == 0
