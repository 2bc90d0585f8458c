"""Hashed n-gram features for the injection model, computed once per word.

The same features as the request classifier's (demigod.routing.classifier.features:
log-scaled, L2-normalised counts of word 1-2-grams and character 3-grams, hashed into
HASH_DIMENSIONS), but built for long text read in overlapping windows (the sentence
encoder's 100-word windows, demigod.text_encoder.word_windows, so the n-gram model picks
the window the encoder reads): each word's ids are hashed once (and cached across
requests) and a window's vector is one `unique` over its ids, so a 512-token prompt costs
about a millisecond, not one numpy call per n-gram per window. Vectors stay sparse (ids
and weights): training works on a few thousand windows without a dense windows x 16 384
matrix.
"""

from __future__ import annotations

import functools
import itertools
import re
import zlib
from collections.abc import Sequence

import numpy as np

from demigod.routing.classifier import HASH_DIMENSIONS

# Chinese and Japanese are written without spaces: a run of their characters is read as
# overlapping character pairs (script-aware tokens), not as one sentence-long "word".
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"([{_CJK}]+)|[^\W{_CJK}]+|[^\w\s]", re.UNICODE)
WORD_CACHE_SIZE = 65536


def _hash(gram: str) -> int:
    return zlib.crc32(gram.encode()) % HASH_DIMENSIONS


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def word_ids(word: str) -> tuple[int, ...]:
    """The word's unigram id and its character 3-gram ids (`<word>` padded)."""
    padded = f"<{word}>"
    return (_hash(f"w:{word}"), *(_hash(f"c:{padded[i : i + 3]}") for i in range(len(padded) - 2)))


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def pair_id(first: str, second: str) -> int:
    return _hash(f"b:{first} {second}")


def words(folded: str) -> list[str]:
    """The tokens of already folded text (see normalize.fold): words, punctuation, and
    character pairs of Chinese and Japanese runs."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(folded):
        run = match.group(1)
        if run is None:
            tokens.append(match.group())
        elif len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


class Windows:
    """The feature vectors of a text's windows, sparse: window i holds the hashed ids
    `ids[starts[i]:starts[i+1]]` with weights `values[...]` (log-scaled counts, L2 = 1)."""

    def __init__(self, ids: np.ndarray, values: np.ndarray, starts: np.ndarray) -> None:
        self.ids, self.values, self.starts = ids, values, starts

    def __len__(self) -> int:
        return len(self.starts) - 1

    def dot(self, weight: np.ndarray) -> np.ndarray:
        """Each window's vector times `weight` (HASH_DIMENSIONS,)."""
        products = self.values * weight[self.ids]
        return np.add.reduceat(products, self.starts[:-1]) if len(products) else np.zeros(1)


def _window(tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    ids: list[int] = []
    for word in tokens:
        ids.extend(word_ids(word))
    ids.extend(pair_id(a, b) for a, b in itertools.pairwise(tokens))
    unique, counts = np.unique(np.asarray(ids, dtype=np.intp), return_counts=True)
    values = np.log1p(counts.astype(np.float32))
    norm = float(np.linalg.norm(values))
    return unique, values / norm if norm else values


def windows(folded_parts: Sequence[str]) -> Windows:
    """The sparse feature vectors of already folded windows (one per part)."""
    empty = (np.zeros(1, dtype=np.intp), np.zeros(1, dtype=np.float32))
    parts = [_window(words(part)) for part in folded_parts] or [empty]
    parts = [(ids, values) if len(ids) else empty for ids, values in parts]
    starts = np.cumsum([0] + [len(ids) for ids, _ in parts])
    return Windows(
        np.concatenate([ids for ids, _ in parts]),
        np.concatenate([values for _, values in parts]),
        starts,
    )
