"""`validate_gguf`: sliding-window perplexity and the Q4_0-vs-F16 comparison, on the
suite's tiny random-init Mamba (real GGUF files through llama.cpp, one thread)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demigod.lifecycle.perplexity import perplexity, window_spans
from demigod.lifecycle.validation import validate_gguf

TEXT = (
    "The mesh serves small recurrent language models. Each request is routed to a model, "
    "which keeps a fixed-size state instead of a growing cache of keys and values. "
) * 3
N_CTX = 48
STRIDE = 24


def by_metric(results: list) -> dict:  # type: ignore[type-arg]
    return {result.metric: result for result in results}


@pytest.fixture(scope="module")
def f16(tiny_model: Path) -> Path:
    return tiny_model.parent / "demigod-test.F16.gguf"


@pytest.mark.slow
def test_a_model_against_itself_agrees_completely(f16: Path) -> None:
    seen: list[tuple[int, int]] = []
    results = by_metric(
        validate_gguf(
            f16, f16, text=TEXT, n_ctx=N_CTX, stride=STRIDE, threads=1,
            progress=lambda done, total: seen.append((done, total)),
        )
    )  # fmt: skip
    assert seen and seen[-1][0] == seen[-1][1] == len(seen)
    assert results["perplexity_delta"].value == pytest.approx(0.0, abs=1e-9)
    assert results["kl_divergence_mean"].value == pytest.approx(0.0, abs=1e-9)
    assert results["top1_agreement"].value == 1.0
    assert results["perplexity"].value == results["reference_perplexity"].value
    assert all(
        r.suite == "perplexity" and "llama-cpp-python" in r.tool_versions for r in results.values()
    )


@pytest.mark.slow
def test_q4_0_against_its_f16_reference(tiny_model: Path, f16: Path) -> None:
    results = by_metric(
        validate_gguf(
            tiny_model, f16, text=TEXT, n_ctx=N_CTX, stride=STRIDE, threads=1,
            max_perplexity_delta=0.5, min_top1_agreement=1.01,
        )
    )  # fmt: skip
    # The numbers are the comparison of two different files: quantization changed them.
    assert results["kl_divergence_mean"].value > 1e-6
    assert 0.0 < results["top1_agreement"].value <= 1.0
    delta = results["perplexity_delta"]
    expected = results["perplexity"].value / results["reference_perplexity"].value - 1
    assert delta.value == pytest.approx(expected)
    # Gates: recorded with their thresholds; an impossible one fails, ungated ones are None.
    assert delta.threshold == 0.5 and delta.passed is (delta.value <= 0.5)
    assert results["top1_agreement"].passed is False
    assert results["kl_divergence_mean"].threshold is None
    assert results["kl_divergence_mean"].passed is None
    assert results["tokens_scored"].value > N_CTX


@pytest.mark.slow
def test_non_overlapping_windows_match_the_plain_perplexity(tiny_model: Path) -> None:
    results = by_metric(
        validate_gguf(tiny_model, None, text=TEXT, n_ctx=N_CTX, stride=N_CTX, threads=1)
    )
    assert set(results) == {"perplexity", "tokens_scored"}
    plain = perplexity(tiny_model, TEXT, n_ctx=N_CTX, threads=1)
    assert results["perplexity"].value == pytest.approx(plain, rel=1e-9)
    # An untrained model is close to uniform over its 50280 tokens.
    assert 1000 < results["perplexity"].value < 10 * 50280


def test_bad_windows_and_files_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stride"):
        validate_gguf(tiny_model, None, text=TEXT, n_ctx=32, stride=64)
    with pytest.raises(ValueError, match="no GGUF file"):
        validate_gguf(tmp_path / "missing.gguf", None, text=TEXT, n_ctx=32, stride=16)


@given(
    n_tokens=st.integers(min_value=0, max_value=300),
    n_ctx=st.integers(min_value=2, max_value=64),
    data=st.data(),
)
def test_sliding_windows_score_every_token_once(
    n_tokens: int, n_ctx: int, data: st.DataObject
) -> None:
    stride = data.draw(st.integers(min_value=1, max_value=n_ctx))
    spans = window_spans(n_tokens, n_ctx, stride)
    scored = [p for _, end, first in spans for p in range(first, end)]
    assert len(scored) == len(set(scored))
    for begin, end, first in spans:
        assert end - begin <= n_ctx and begin < first < end + 1
        if begin > 0:  # every later window re-reads n_ctx - stride tokens of context
            assert first - begin >= n_ctx - stride
    if stride < n_ctx:
        assert scored == list(range(1, n_tokens))
    else:
        # Non-overlapping: each window's first token is context only.
        assert set(scored) == {p for p in range(1, n_tokens) if p % n_ctx}
