"""Fixtures for the model lifecycle: the converter toolkit and tiny models built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from demigod.lifecycle.tokenizer import VocabTokenizer, served_vocab
from demigod.lifecycle.toolkit import ensure_toolkit


@pytest.fixture(scope="session")
def toolkit(toolkit_data_dir: Path) -> Path:
    """llama.cpp's converter toolkit matching the installed engine."""
    return ensure_toolkit(toolkit_data_dir)


@pytest.fixture(scope="session")
def random_gguf(tiny_model: Path) -> Path:
    """The suite's random-init tiny Mamba as Q4_0 GGUF; its F16 source lies beside it."""
    return tiny_model


@pytest.fixture(scope="session")
def served_tokenizer(toolkit: Path, tmp_path_factory: pytest.TempPathFactory) -> VocabTokenizer:
    """The tokenizer the converter embeds in the models it writes."""
    return VocabTokenizer(served_vocab(toolkit, tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="session")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-init Mamba saved by transformers (config.json,
    generation_config.json, model.safetensors)."""
    from demigod.lifecycle.train import random_init

    return random_init(tmp_path_factory.mktemp("hf") / "tiny-mamba", hidden_size=32, num_layers=1)
