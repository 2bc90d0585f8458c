"""The architecture matrix: each family, built offline, converts, quantizes, loads in its
engine, generates through the Engine protocol and reports its per-sequence state size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from demigod.config import EngineConfig, StateCacheConfig
from demigod.engines.base import Engine, GenerationRequest, SamplingParams
from demigod.lifecycle.architectures import detect, family
from demigod.lifecycle.state_size import sequence_state_bytes
from tests.conftest import FamilyModels

pytestmark = pytest.mark.slow  # builds, converts and quantizes tiny models

# family -> llama.cpp's general.architecture of the converted GGUF
LLAMA_CPP_FAMILIES = {
    "mamba": "mamba",
    "mamba2": "mamba2",
    "rwkv7": "rwkv7",
    "jamba": "jamba",
    "falcon-h1": "falcon-h1",
    "granite-hybrid": "granitehybrid",
}
GENERATED = 8
GREEDY = SamplingParams(max_tokens=GENERATED, temperature=0.0, ignore_eos=True)
CONTEXTS = [16, 256]


def engine_config() -> EngineConfig:
    return EngineConfig(
        n_threads=1, slots=2, n_ctx=512, state_cache=StateCacheConfig(enabled=False)
    )


async def generate(engine: Engine, text: str, params: SamplingParams) -> tuple[str, int, str]:
    parts, count, finish = [], 0, ""
    async with engine.generate(GenerationRequest(engine.tokenize(text), params)) as events:
        async for event in events:
            parts.append(event.text)
            count, finish = event.completion_tokens, event.finish_reason or ""
    return "".join(parts), count, finish


@pytest.mark.parametrize("name", list(LLAMA_CPP_FAMILIES))
def test_llama_cpp_family_converts_loads_generates(
    family_models: FamilyModels, name: str, record_property: pytest.RecordProperty
) -> None:
    from demigod.engines.llama_cpp import LlamaCppEngine

    found = detect(family_models.hf(name))
    assert (found.family, found.backend) == (name, "llama.cpp")
    quantized = family_models.gguf(name)
    assert quantized.stat().st_size < family_models.f16(name).stat().st_size

    async def run() -> tuple[str, str, int, str]:
        engine = LlamaCppEngine(name, quantized, engine_config())
        try:
            text, count, finish = await generate(engine, "The os module", GREEDY)
            return engine.info.architecture, text, count, finish
        finally:
            await engine.close()

    architecture, text, count, finish = asyncio.run(run())
    assert architecture == LLAMA_CPP_FAMILIES[name]
    assert (count, finish) == (GENERATED, "length") and text

    sizes = sequence_state_bytes(quantized, CONTEXTS)
    record_property("q4_0_bytes", quantized.stat().st_size)
    record_property("state_bytes", sizes)
    if family(name).hybrid:  # attention KV: grows with the context
        assert sizes[CONTEXTS[1]] > sizes[CONTEXTS[0]] > 0
    else:  # a pure recurrent state: constant
        assert sizes[CONTEXTS[1]] == sizes[CONTEXTS[0]] > 0


def test_zamba2_runs_on_the_transformers_engine(family_models: FamilyModels) -> None:
    """Seeded sampling through the engine's cached decoding draws the same tokens as a
    reference that re-reads the whole sequence every step (any cache error changes the
    probabilities, hence the draws); a seed reproduces a reply; a stop string cuts it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from demigod.engines.transformers_engine import TransformersEngine

    hf_dir = family_models.hf("zamba2")
    assert detect(hf_dir).backend == "transformers"
    config = EngineConfig(n_threads=1, n_ctx=512)
    sampled = SamplingParams(max_tokens=12, temperature=1.0, seed=5, ignore_eos=True)

    async def run(params: SamplingParams) -> tuple[list[int], list[tuple[str, int, str]]]:
        engine = TransformersEngine("zamba2", hf_dir, config)
        try:
            prompt = engine.tokenize("The os module")
            return prompt, [await generate(engine, "The os module", params) for _ in range(2)]
        finally:
            await engine.close()

    prompt, replies = asyncio.run(run(sampled))
    assert replies[0] == replies[1]  # the seed reproduces the reply
    text, count, finish = replies[0]
    assert (count, finish) == (12, "length")

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(5)
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(12):  # no cache: the full sequence every step
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            logits[tokenizer.eos_token_id] = float("-inf")
            ids.append(int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)))
    assert text == tokenizer.decode(ids[len(prompt) :])

    stop = text[3:6]
    params = SamplingParams(max_tokens=12, temperature=1.0, seed=5, ignore_eos=True, stop=(stop,))
    _, cut = asyncio.run(run(params))
    assert cut[0][2] == "stop" and cut[0][0] == text[: text.index(stop)]


def test_transformers_engine_refuses_bad_input(family_models: FamilyModels, tmp_path: Path) -> None:
    from demigod.engines.base import ContextOverflowError
    from demigod.engines.transformers_engine import TransformersEngine

    with pytest.raises(FileNotFoundError, match="not a Hugging Face checkpoint folder"):
        TransformersEngine("x", tmp_path, EngineConfig())

    async def refusals() -> None:
        engine = TransformersEngine("zamba2", family_models.hf("zamba2"), EngineConfig(n_ctx=64))
        try:
            assert engine.info.n_ctx == 64 and engine.health()
            with pytest.raises(ContextOverflowError):
                engine.generate(GenerationRequest([1] * 60, SamplingParams(max_tokens=8)))
            with pytest.raises(ValueError, match="at least one token"):
                engine.generate(GenerationRequest([], SamplingParams(max_tokens=8)))
        finally:
            await engine.close()
        assert not engine.health()

    asyncio.run(refusals())
