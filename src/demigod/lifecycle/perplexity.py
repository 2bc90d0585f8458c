"""Perplexity of a GGUF model on a text, computed by llama.cpp itself.

Measuring with the engine that serves the model (not with the training framework) means
the number describes the quantized file users get.

Windows: the text is scored in windows of `n_ctx` tokens that start every `stride` tokens
(the sliding-window method of Hugging Face's perplexity guide). Each window re-reads its
first tokens as context and scores only the tokens no earlier window scored, so with
`stride` < `n_ctx` every scored token but the first window's sees at least
`n_ctx - stride` tokens of context. `stride` = `n_ctx` gives non-overlapping windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import llama_cpp


@dataclass(frozen=True)
class ScoredWindow:
    """One window's scored tokens: `logits[i]` is the model's prediction for `targets[i]`."""

    logits: NDArray[np.float64]  # (n_scored, n_vocab)
    targets: NDArray[np.int64]  # (n_scored,)


def window_spans(n_tokens: int, n_ctx: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first_scored) per window over `n_tokens` tokens: the window reads
    tokens [begin, end) and scores the targets at positions [first_scored, end).

    No position is scored twice. With stride < n_ctx every position from 1 to
    n_tokens - 1 is scored; with stride = n_ctx each window's first token is context only.
    Raises ValueError unless 0 < stride <= n_ctx and n_ctx >= 2.
    """
    if n_ctx < 2:
        raise ValueError(f"n_ctx must be at least 2, not {n_ctx}")
    if not 0 < stride <= n_ctx:
        raise ValueError(f"stride must lie in 1..n_ctx ({n_ctx}), not {stride}")
    spans: list[tuple[int, int, int]] = []
    scored_until = 1  # position 0 has no prediction
    for begin in range(0, max(n_tokens - 1, 0), stride):
        end = min(begin + n_ctx, n_tokens)
        first_scored = max(scored_until, begin + 1)
        if end > first_scored:
            spans.append((begin, end, first_scored))
            scored_until = end
        if end == n_tokens:
            break
    return spans


def load_for_scoring(gguf: Path, n_ctx: int, threads: int | None = None) -> llama_cpp.Llama:
    """The model in `gguf`, set up to return logits for every position of an `n_ctx`
    window. Raises ValueError when `gguf` does not exist."""
    import llama_cpp

    if not gguf.is_file():
        raise ValueError(f"no GGUF file at {gguf}")
    return llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_ubatch=n_ctx,
        logits_all=True,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )


def tokenize_for_scoring(model: llama_cpp.Llama, text: str, max_tokens: int) -> list[int]:
    """`text` as the model reads it (no BOS; special tokens such as a document separator
    recognised), cut to `max_tokens`. Raises ValueError below 2 tokens."""
    tokens = model.tokenize(text.encode("utf-8"), add_bos=False, special=True)[:max_tokens]
    if len(tokens) < 2:
        raise ValueError("perplexity needs a text of at least 2 tokens")
    return list(tokens)


def scored_windows(
    model: llama_cpp.Llama, tokens: Sequence[int], n_ctx: int, stride: int
) -> Iterator[ScoredWindow]:
    """Run `model` over each window of `tokens` (see `window_spans`) and yield the logits
    of the positions it scores. The model's state is cleared before every window."""
    for begin, end, first_scored in window_spans(len(tokens), n_ctx, stride):
        window = list(tokens[begin:end])
        model.reset()  # type: ignore[no-untyped-call]  # clears the recurrent state too
        model.eval(window)
        # The logits at position p predict the token at p + 1.
        rows = slice(first_scored - 1 - begin, end - 1 - begin)
        yield ScoredWindow(
            logits=np.asarray(model.scores[rows], dtype=np.float64),
            targets=np.asarray(tokens[first_scored:end], dtype=np.int64),
        )


def log_softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise log-probabilities of `logits` (n, vocab), computed stably."""
    peak = logits.max(axis=1, keepdims=True)
    shifted = logits - peak
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def negative_log_likelihoods(window: ScoredWindow) -> NDArray[np.float64]:
    """Each scored token's negative log-likelihood (nats)."""
    log_probs = log_softmax(window.logits)
    return np.asarray(-log_probs[np.arange(len(window.targets)), window.targets])


def perplexity(
    gguf: Path,
    text: str,
    n_ctx: int = 512,
    max_tokens: int = 4096,
    threads: int | None = None,
    stride: int | None = None,
) -> float:
    """exp(mean negative log-likelihood) of `text`'s tokens under the model in `gguf`.

    The text is tokenized by the model (see `tokenize_for_scoring`) and scored in windows
    of `n_ctx` tokens starting every `stride` tokens (default `n_ctx`: non-overlapping
    windows). Raises ValueError when the text has fewer than 2 tokens, `gguf` does not
    exist, or the stride is out of range.
    """
    stride = n_ctx if stride is None else stride
    window_spans(0, n_ctx, stride)  # validates before the model loads
    model = load_for_scoring(gguf, n_ctx, threads)
    try:
        tokens = tokenize_for_scoring(model, text, max_tokens)
        total_nll = 0.0
        scored = 0
        for window in scored_windows(model, tokens, n_ctx, stride):
            total_nll += float(negative_log_likelihoods(window).sum())
            scored += len(window.targets)
        return math.exp(total_nll / scored)
    finally:
        model.close()
