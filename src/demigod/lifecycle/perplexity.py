"""Perplexity of a GGUF model on a text, computed by llama.cpp itself.

Measuring with the engine that serves the model (not with the training framework) means
the number describes the quantized file users get.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def perplexity(
    gguf: Path,
    text: str,
    n_ctx: int = 512,
    max_tokens: int = 4096,
    threads: int | None = None,
) -> float:
    """exp(mean negative log-likelihood) of `text`'s tokens under the model in `gguf`.

    The text is tokenized by the model (no BOS; special tokens such as a document
    separator are recognised), cut to `max_tokens`, and scored in non-overlapping windows
    of `n_ctx` tokens; the model's state is cleared between windows and the first token of
    each window is context only. Raises ValueError when the text has fewer than 2 tokens
    or `gguf` does not exist.
    """
    import llama_cpp

    if not gguf.is_file():
        raise ValueError(f"no GGUF file at {gguf}")
    model = llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_ubatch=n_ctx,
        logits_all=True,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    try:
        tokens = model.tokenize(text.encode("utf-8"), add_bos=False, special=True)[:max_tokens]
        if len(tokens) < 2:
            raise ValueError("perplexity needs a text of at least 2 tokens")
        total_nll = 0.0
        scored = 0
        for start in range(0, len(tokens) - 1, n_ctx):
            window = tokens[start : start + n_ctx]
            if len(window) < 2:
                break
            model.reset()  # clears the recurrent state as well as the position
            model.eval(window)
            logits = np.asarray(model.scores[: len(window) - 1], dtype=np.float64)
            targets = np.asarray(window[1:])
            total_nll += float(
                np.sum(_logsumexp(logits) - logits[np.arange(len(targets)), targets])
            )
            scored += len(targets)
        return math.exp(total_nll / scored)
    finally:
        model.close()


def _logsumexp(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    peak = logits.max(axis=1)
    return np.asarray(peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1)))
