"""HF folder -> GGUF -> quantized GGUF -> llama.cpp, with the real converter and engine."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from demigod.lifecycle.convert import ConversionError, convert_hf_to_gguf
from demigod.lifecycle.perplexity import perplexity
from demigod.lifecycle.quantize import QuantizationError, quantize_gguf
from demigod.lifecycle.recipe import TrainConfig
from demigod.lifecycle.sampling import sample_text
from demigod.lifecycle.tokenizer import VocabTokenizer
from demigod.lifecycle.train import NEOX_VOCAB_SIZE, train_mamba

FITTED_TEXT = (
    "The state of a Mamba layer has a fixed size, so a long prompt costs no more memory "
    "than a short one. "
)


def _load(gguf: Path) -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=str(gguf), n_ctx=256, verbose=False)


def test_quantized_model_loads_as_a_smaller_mamba(random_gguf: Path) -> None:
    f16 = random_gguf.with_name("demigod-test.F16.gguf")
    assert random_gguf.stat().st_size < f16.stat().st_size
    model = _load(random_gguf)
    try:
        assert model.metadata["general.architecture"] == "mamba"
        assert int(model.metadata["general.file_type"]) == llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
        assert model.n_vocab() == NEOX_VOCAB_SIZE
        completion = model.create_completion("def", max_tokens=4, temperature=0.0)
        assert completion["usage"]["completion_tokens"] > 0
    finally:
        model.close()


def test_training_tokenizer_is_the_served_models(
    random_gguf: Path, served_tokenizer: VocabTokenizer
) -> None:
    # The bare ggml-vocab-gpt-neox.gguf pre-tokenizes "x + 1" differently: training on its
    # tokens made held-out perplexity 3x worse in llama.cpp than in training.
    served = llama_cpp.Llama(model_path=str(random_gguf), vocab_only=True, verbose=False)
    for text in ["def f(x):\n    return x + 1\n", "a  b\t\tc\n\n\nd", "Ünïcödé, “quotes”"]:
        expected = served.tokenize(text.encode(), add_bos=False, special=True)
        assert served_tokenizer.encode(text) == expected
    stream = served_tokenizer.encode_documents(["x + 1", "y"]).tolist()
    assert stream == [*served_tokenizer.encode("x + 1"), 0, *served_tokenizer.encode("y"), 0]


def test_quantize_reports_size_and_ratio(random_gguf: Path, tmp_path: Path) -> None:
    f16 = random_gguf.with_name("demigod-test.F16.gguf")
    result = quantize_gguf(f16, tmp_path / "m.Q8_0.gguf", "Q8_0", threads=1)
    assert result.size_bytes == (tmp_path / "m.Q8_0.gguf").stat().st_size
    assert result.ratio == pytest.approx(result.size_bytes / f16.stat().st_size)
    assert 0 < result.ratio < 1


def test_quantize_refuses_unknown_type_and_broken_input(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    with pytest.raises(ValueError, match="Q4_0"):
        quantize_gguf(broken, tmp_path / "out.gguf", "Q3_X")
    with pytest.raises(QuantizationError):
        quantize_gguf(broken, tmp_path / "out.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.gguf"]  # nothing half-written


def test_converter_failure_quotes_the_converter(toolkit: Path, tmp_path: Path) -> None:
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text(json.dumps({"architectures": ["NoSuchModelForLM"]}))
    with pytest.raises(ConversionError, match="NoSuchModelForLM"):
        convert_hf_to_gguf(hf_dir, tmp_path / "out" / "model.gguf", toolkit)
    assert not any((tmp_path / "out").iterdir())


def test_convert_refuses_a_folder_without_config(toolkit: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"config\.json"):
        convert_hf_to_gguf(tmp_path, tmp_path / "model.gguf", toolkit)


@pytest.fixture(scope="module")
def fitted_gguf(
    toolkit: Path, served_tokenizer: VocabTokenizer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny Mamba trained for a few seconds to fit FITTED_TEXT, converted and quantized."""
    out = tmp_path_factory.mktemp("fitted")
    tokens = np.asarray(served_tokenizer.encode(FITTED_TEXT * 40), dtype=np.int32)
    config = TrainConfig(
        hidden_size=64, num_layers=2, seq_len=32, batch_size=8, learning_rate=1e-2, max_steps=60
    )
    result = train_mamba(tokens, out / "hf", config)
    assert result.steps == 60
    assert result.final_loss < result.first_loss / 3
    f16 = convert_hf_to_gguf(out / "hf", out / "fitted.F16.gguf", toolkit)
    quantized = out / "fitted.Q8_0.gguf"
    quantize_gguf(f16, quantized, "Q8_0")
    return quantized


def test_perplexity_is_low_on_fitted_text_and_high_on_random_tokens(
    fitted_gguf: Path, served_tokenizer: VocabTokenizer
) -> None:
    rng = random.Random(0)
    noise = served_tokenizer.decode(rng.randrange(1000, 50000) for _ in range(400))

    fitted = perplexity(fitted_gguf, FITTED_TEXT * 8, n_ctx=128)
    random_tokens = perplexity(fitted_gguf, noise, n_ctx=128)

    assert math.isfinite(fitted) and math.isfinite(random_tokens)
    assert fitted < 5
    assert random_tokens > 100 * fitted


def test_perplexity_of_an_untrained_model_is_near_the_vocabulary_size(random_gguf: Path) -> None:
    value = perplexity(random_gguf, FITTED_TEXT * 4, n_ctx=64, max_tokens=200)
    assert NEOX_VOCAB_SIZE / 10 < value < NEOX_VOCAB_SIZE * 10


def test_perplexity_needs_two_tokens(random_gguf: Path) -> None:
    with pytest.raises(ValueError, match="2 tokens"):
        perplexity(random_gguf, "a")


def test_sampling_measures_repetition(fitted_gguf: Path) -> None:
    # Greedy decoding of a model fitted to one repeated sentence repeats that sentence.
    loop = sample_text(fitted_gguf, FITTED_TEXT, max_tokens=64, temperature=0.0)
    assert "Mamba" in loop.text
    assert loop.n_tokens > 32
    assert loop.distinct_token_share < 0.6


def test_time_budget_stops_training_once_the_step_floor_is_met(
    served_tokenizer: VocabTokenizer, tmp_path: Path
) -> None:
    tokens = np.asarray(served_tokenizer.encode(FITTED_TEXT * 10), dtype=np.int32)
    shape = {"hidden_size": 32, "num_layers": 1, "seq_len": 16, "batch_size": 2}
    floor = TrainConfig(**shape, time_budget_s=0.01, min_steps=7)
    assert train_mamba(tokens, tmp_path / "floor", floor).steps == 7
    budget = TrainConfig(**shape, time_budget_s=1.0, warmup_steps=1)
    result = train_mamba(tokens, tmp_path / "budget", budget)
    # Stops at the first step boundary past the budget: at most about one step late
    # (no absolute bound: a loaded machine makes every step slow).
    assert result.seconds >= 1.0
    assert result.seconds < 1.0 + 2 * result.seconds / result.steps
    assert (tmp_path / "budget" / "config.json").is_file()
