"""`engine.cpu_weight_repacking`: llama.cpp's extra CPU buffer types stay on, except in a
build with Intel AMX, whose matmul segfaults on some CPUs (the plain-install test crashed
on such a machine: tests/test_install.py serves from a native build)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from demigod.engines.base import SamplingParams
from demigod.engines.llama_cpp import weight_repacking
from tests.engines.conftest import EngineRunner, engine_config

AVX2_BUILD = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | OPENMP = 1 |"
AMX_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | OPENMP = 1 |"


def test_auto_repacks_except_in_an_amx_build_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="demigod.engines.llama_cpp"):
        assert weight_repacking("auto", AVX2_BUILD) is True
        assert caplog.text == ""
        assert weight_repacking("auto", AMX_BUILD) is False
    assert "built with Intel AMX" in caplog.text
    assert "engine.cpu_weight_repacking=on" in caplog.text


@pytest.mark.parametrize("build", [AVX2_BUILD, AMX_BUILD])
def test_an_explicit_setting_wins(build: str) -> None:
    assert weight_repacking("on", build) is True
    assert weight_repacking("off", build) is False


@pytest.mark.parametrize("setting", ["on", "off"])
def test_either_setting_loads_and_serves(
    runner: EngineRunner, tiny_model: Path, setting: str
) -> None:
    config = engine_config().model_copy(update={"cpu_weight_repacking": setting})
    engine = runner.open(tiny_model, config)
    tokens = engine.tokenize(
        "Hello there, a prompt of a few words", add_special=True, parse_special=False
    )
    text = runner.complete(engine, tokens, SamplingParams(max_tokens=3, temperature=0.0))
    assert isinstance(text, str)
