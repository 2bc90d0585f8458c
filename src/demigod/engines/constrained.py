"""Sampling under a grammar, the way llama.cpp's own common sampler does it.

Applying a grammar to the whole vocabulary costs tens of milliseconds a token (every
candidate is matched against every live grammar stack; measured 20-45 ms at a 50k
vocabulary), far more than a small model's decode step. So a token is first drawn without
the grammar, then checked alone against it; only when the grammar rejects it is the whole
vocabulary filtered and the token drawn again. A model that follows the format (the usual
case for an instruction model asked for JSON) pays one single-token check per token.
"""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np

# llama_token_data, as numpy sees it: the candidate arrays are filled from a logits row in
# one vectorised copy instead of a Python loop over the vocabulary.
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


class ConstrainedSampler:
    """Two-pass grammar sampling over logits rows of `n_vocab` tokens. Its buffers are
    reused between calls: use it from one thread (the decode thread)."""

    def __init__(self, n_vocab: int) -> None:
        self._candidates = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self._candidates["id"] = np.arange(n_vocab, dtype=np.int32)
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._single = np.zeros(1, dtype=_TOKEN_DATA)

    def sample(
        self,
        ctx: llama_cpp.llama_context_p,
        index: int,
        row: np.ndarray,
        grammar: llama_cpp.llama_sampler_p,
        chain: llama_cpp.llama_sampler_p | None,
    ) -> int:
        """A token from logits row `index` (`row`, its values) that `grammar` accepts,
        drawn by `chain` (None: greedy); the grammar then advances past it."""
        token = int(row.argmax()) if chain is None else self._draw(ctx, index, chain)
        if not self._allows(grammar, token, float(row[token])):
            token = self._redraw(row, grammar, chain)
        llama_cpp.llama_sampler_accept(grammar, token)
        return token

    @staticmethod
    def _draw(ctx: llama_cpp.llama_context_p, index: int, chain: llama_cpp.llama_sampler_p) -> int:
        return int(llama_cpp.llama_sampler_sample(chain, ctx, index))

    def _allows(self, grammar: llama_cpp.llama_sampler_p, token: int, logit: float) -> bool:
        single = self._single
        single["id"], single["logit"], single["p"] = token, logit, 0.0
        array = _array_of(single)
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        return bool(np.isfinite(single["logit"][0]))

    def _redraw(
        self,
        row: np.ndarray,
        grammar: llama_cpp.llama_sampler_p,
        chain: llama_cpp.llama_sampler_p | None,
    ) -> int:
        """Filter the whole vocabulary through the grammar, then draw from what is left."""
        candidates = self._candidates
        candidates["id"] = self._ids  # the chain may have reordered the last call's
        candidates["logit"] = row
        candidates["p"] = 0.0
        array = _array_of(candidates)
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
        if chain is None:
            # The first highest allowed logit: llama.cpp's greedy sampler picks the same.
            return int(candidates["id"][int(candidates["logit"][: array.size].argmax())])
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        return int(candidates["id"][array.selected])


def _array_of(buffer: np.ndarray) -> llama_cpp.llama_token_data_array:
    """A llama_token_data_array over `buffer`'s memory (no copy)."""
    return llama_cpp.llama_token_data_array(
        data=buffer.ctypes.data_as(llama_cpp.llama_token_data_p),
        size=len(buffer),
        selected=-1,
        sorted=False,
    )
