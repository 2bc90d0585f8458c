"""Token log-probabilities: of sampled tokens, and of a prompt's own tokens (echo scoring)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from demigod.engines.base import GenerationEvent, GenerationRequest, SamplingParams, TokenLogprob
from tests.engines.conftest import EngineRunner, engine_config


async def events_of(engine: object, request: GenerationRequest) -> list[GenerationEvent]:
    async with engine.generate(request) as stream:  # type: ignore[attr-defined]
        return [event async for event in stream]


def sampled(events: list[GenerationEvent]) -> list[TokenLogprob]:
    return [entry for event in events for entry in event.logprobs]


def test_each_sampled_token_has_its_logprob_and_the_likeliest_alternatives(
    tiny_model: Path, runner: EngineRunner
) -> None:
    engine = runner.open(tiny_model, engine_config())
    request = GenerationRequest(
        engine.tokenize("The module"), SamplingParams(12, 0.0, logprobs=3, ignore_eos=True)
    )
    events = runner.loop.run_until_complete(events_of(engine, request))
    entries = sampled(events)
    assert len(entries) == events[-1].completion_tokens == 12
    assert b"".join(entry.piece for entry in entries).decode() == "".join(e.text for e in events)
    for entry in entries:
        assert entry.logprob is not None and entry.logprob <= 0.0
        assert len(entry.top) == 3
        values = [alternative.logprob for alternative in entry.top]
        assert values == sorted(values, reverse=True)  # likeliest first
        assert sum(math.exp(value) for value in values) <= 1.0 + 1e-6  # type: ignore[arg-type]
        # greedy: the sampled token is the likeliest one
        assert entry.top[0].token == entry.token and entry.top[0].logprob == entry.logprob


def test_no_logprobs_unless_asked(tiny_model: Path, runner: EngineRunner) -> None:
    engine = runner.open(tiny_model, engine_config())
    request = GenerationRequest(engine.tokenize("x"), SamplingParams(5, 0.7, seed=1))
    events = runner.loop.run_until_complete(events_of(engine, request))
    assert sampled(events) == [] and all(e.prompt_logprobs is None for e in events)


@pytest.mark.parametrize("cached", [False, True])
def test_prompt_scores_agree_with_the_logprobs_of_the_same_tokens_when_sampled(
    tiny_model: Path, runner: EngineRunner, cached: bool
) -> None:
    """Two paths: tokens sampled one decode step at a time, then the same tokens read back
    as a prompt in chunks. Their logprobs must agree; a saved state of the prompt (the
    state cache) must not stand in for the tokens it would skip."""
    config = engine_config(ram_bytes=1 << 24) if cached else engine_config()
    engine = runner.open(tiny_model, config)
    prompt = engine.tokenize("Request about the module " * 3)
    greedy = GenerationRequest(prompt, SamplingParams(10, 0.0, logprobs=1, ignore_eos=True))
    generated = sampled(runner.loop.run_until_complete(events_of(engine, greedy)))
    tokens = prompt + [entry.token for entry in generated]
    echo = GenerationRequest(tokens, SamplingParams(1, 0.0), prompt_logprobs=2)
    events = runner.loop.run_until_complete(events_of(engine, echo))
    scores = events[0].prompt_logprobs
    assert scores is not None and [s.token for s in scores] == tokens
    assert scores[0].logprob is None and scores[0].top == ()
    assert all(len(score.top) == 2 for score in scores[1:])
    for scored, sampled_entry in zip(scores[len(prompt) :], generated, strict=True):
        assert scored.logprob == pytest.approx(sampled_entry.logprob, abs=1e-3)
    assert all(event.prompt_logprobs is None for event in events[1:])


def test_scoring_prompts_batches_with_other_requests(
    tiny_model: Path, runner: EngineRunner
) -> None:
    engine = runner.open(tiny_model, engine_config())
    long = engine.tokenize("a longer prompt that takes several prefill chunks " * 4)

    async def both() -> tuple[list[GenerationEvent], list[GenerationEvent]]:
        alone = await events_of(
            engine, GenerationRequest(long, SamplingParams(1), prompt_logprobs=0)
        )
        scored = GenerationRequest(long, SamplingParams(1, 0.0), prompt_logprobs=0)
        other = GenerationRequest(engine.tokenize("go"), SamplingParams(30, 0.0, ignore_eos=True))
        together = await asyncio.gather(events_of(engine, scored), events_of(engine, other))
        return alone, together[0]

    alone, together = runner.loop.run_until_complete(both())
    first, second = alone[0].prompt_logprobs, together[0].prompt_logprobs
    assert first is not None and second is not None and len(first) == len(long)
    assert first[0].logprob is None and second[0].logprob is None
    expected = [score.logprob for score in first[1:]]
    assert [score.logprob for score in second[1:]] == pytest.approx(expected, abs=1e-4)
