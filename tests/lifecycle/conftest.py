"""Fixtures for the model lifecycle: the converter toolkit and tiny models built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from demigod.lifecycle.demo import build_test_model
from demigod.lifecycle.tokenizer import VocabTokenizer, served_vocab
from demigod.lifecycle.toolkit import ensure_toolkit


@pytest.fixture(scope="session")
def toolkit_data_dir(pytestconfig: pytest.Config) -> Path:
    """A folder kept between test runs (pytest's cache), so the toolkit downloads once."""
    return Path(pytestconfig.cache.mkdir("demigod-lifecycle"))


@pytest.fixture(scope="session")
def toolkit(toolkit_data_dir: Path) -> Path:
    """llama.cpp's converter toolkit matching the installed engine."""
    return ensure_toolkit(toolkit_data_dir)


@pytest.fixture(scope="session")
def random_gguf(tmp_path_factory: pytest.TempPathFactory, toolkit_data_dir: Path) -> Path:
    """A random-init tiny Mamba as Q4_0 GGUF; its F16 source lies beside it."""
    return build_test_model(tmp_path_factory.mktemp("random-model"), data_dir=toolkit_data_dir)


@pytest.fixture(scope="session")
def served_tokenizer(toolkit: Path, tmp_path_factory: pytest.TempPathFactory) -> VocabTokenizer:
    """The tokenizer the converter embeds in the models it writes."""
    return VocabTokenizer(served_vocab(toolkit, tmp_path_factory.mktemp("vocab")))
