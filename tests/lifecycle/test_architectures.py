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
    """Greedy decoding through the engine's own cache loop equals transformers' generate;
    a seed reproduces a sampled reply; a stop string cuts it."""
    import torch
    from transformers import AutoModelForCausalLM

    from demigod.engines.transformers_engine import TransformersEngine

    hf_dir = family_models.hf("zamba2")
    assert detect(hf_dir).backend == "transformers"
    config = EngineConfig(n_threads=1, n_ctx=512)

    async def run() -> tuple[list[int], tuple[str, int, str], list[tuple[str, int, str]]]:
        engine = TransformersEngine("zamba2", hf_dir, config)
        try:
            prompt = engine.tokenize("The os module")
            greedy = SamplingParams(max_tokens=12, temperature=0.0, ignore_eos=True)
            text, count, finish = await generate(engine, "The os module", greedy)
            seeded = SamplingParams(max_tokens=12, temperature=0.9, top_p=0.9, seed=5)
            sampled = [await generate(engine, "The os module", seeded) for _ in range(2)]
            return prompt, (text, count, finish), sampled
        finally:
            await engine.close()

    prompt, (text, count, finish), sampled = asyncio.run(run())
    assert (count, finish) == (12, "length")
    assert sampled[0] == sampled[1]

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        expected = model.generate(
            torch.tensor([prompt]), max_new_tokens=12, min_new_tokens=12, do_sample=False
        )[0, len(prompt) :]
    from transformers import AutoTokenizer

    assert text == AutoTokenizer.from_pretrained(hf_dir).decode(expected)

    async def stopped() -> tuple[str, int, str]:
        engine = TransformersEngine("zamba2", hf_dir, config)
        try:
            stop = text[3:6]
            params = SamplingParams(max_tokens=12, temperature=0.0, ignore_eos=True, stop=(stop,))
            return await generate(engine, "The os module", params)
        finally:
            await engine.close()

    cut, _, reason = asyncio.run(stopped())
    assert reason == "stop" and cut == text[: text.index(text[3:6])]


def test_transformers_engine_refuses_a_gguf_path(tmp_path: Path) -> None:
    from demigod.engines.transformers_engine import TransformersEngine

    with pytest.raises(FileNotFoundError, match="not a Hugging Face checkpoint folder"):
        TransformersEngine("x", tmp_path, EngineConfig())
