"""`engine.n_gpu_layers` reaches llama.cpp; on a CPU-only build a request for GPU layers is
said, not silently dropped (tests/gpu checks the offload itself on a CUDA build)."""

from __future__ import annotations

import logging
from pathlib import Path

import llama_cpp
import pytest

from demigod.engines.base import SamplingParams
from tests.engines.conftest import EngineRunner, engine_config


@pytest.mark.skipif(llama_cpp.llama_supports_gpu_offload(), reason="a GPU build offloads")
def test_gpu_layers_on_a_cpu_build_warn_and_still_serve(
    runner: EngineRunner, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = engine_config().model_copy(update={"n_gpu_layers": 2})
    with caplog.at_level(logging.WARNING, logger="demigod.engines.llama_cpp"):
        engine = runner.open(tiny_model, config)
    assert "engine.n_gpu_layers=2 but this llama-cpp-python has no GPU support" in caplog.text
    tokens = engine.tokenize("Hello", add_special=True, parse_special=False)
    text = runner.complete(engine, tokens, SamplingParams(max_tokens=3, temperature=0.0))
    assert isinstance(text, str)


def test_the_default_asks_nothing_of_a_cpu_build(
    runner: EngineRunner, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="demigod.engines.llama_cpp"):
        runner.open(tiny_model, engine_config())  # n_gpu_layers -1: all, where there is a GPU
    assert "n_gpu_layers" not in caplog.text
