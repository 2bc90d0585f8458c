"""Request classification: which category (code, math, chat, long_context) a prompt is.

Layered, cheapest first:
1. rules — very long input is `long_context`; a code fence, a stack trace or a line that
   starts like a code statement (`def f(x):`, `#include <x>`, `SELECT a FROM`) is `code`;
2. two models, their probabilities averaged: softmax regression over hashed word and
   character n-grams, and a small network (one ReLU layer, softmax) over the multilingual
   sentence encoder's embedding of the prompt's first 100 words (demigod.text_encoder),
   trained
   from `routing/data/train.jsonl` (fifteen languages; bench/screening_data/build.py
   writes it, split by family; the frozen test sets never ship). Their weights ship as
   `routing/data/model.npz`, stamped with the training file's sha256 (`python -m
   demigod.routing.train` rewrites them), so a process loads them instead of training.
   Below `min_confidence` the prompt falls back to `fallback` (chat).
Everything runs on the CPU: the rules and the n-grams in under a millisecond, the
encoder in 2-6 ms per prompt (docs/routing.md).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise

import numpy as np

from demigod import shipped_weights
from demigod.config import RoutingConfig
from demigod.jsonl import json_lines
from demigod.text_encoder import EmbeddingHead, shared_encoder, softmax, word_windows

log = logging.getLogger(__name__)

LONG_CONTEXT = "long_context"
SPLIT_FILES = {"train": "train.jsonl", "validation": "validation.jsonl"}
DATA_PACKAGE = "demigod.routing.data"
HASH_DIMENSIONS = 1 << 14
# Only the start and the end of a long prompt are read: enough to classify, bounded cost.
HEAD_CHARS, TAIL_CHARS = 2000, 500
TRAIN_STEPS, LEARNING_RATE, L2 = 400, 8.0, 1e-4

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_CODE_FENCE = re.compile(r"```")
# A line that starts like a definition or statement in a common language, e.g. "def f(x):".
_CODE_LINE = re.compile(
    r"^\s*(def|class|import|from\s+\S+\s+import|#include|function|const|let|var|public|"
    r"private|fn|func|SELECT|INSERT|UPDATE|CREATE)\b[^\n]*[(:{=;]",
    re.M,
)
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+at \S+\(.*:\d+\)", re.M)


# Characters of Chinese, Japanese and Korean carry about a token each, other non-Latin
# letters about half a token, Latin text about a quarter: the long-context rule counts
# "Latin-character equivalents" so a 3 000-character Chinese document is long context.
_CJK_CHAR = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_OTHER_LETTER = re.compile(r"[^\W\d_a-zA-Z\u00c0-\u024f]")


def latin_equivalent_length(text: str) -> int:
    """len(text), with a CJK character counted as 4 and another non-Latin letter as 2."""
    cjk = len(_CJK_CHAR.findall(text))
    other = len(_OTHER_LETTER.findall(text)) - cjk
    return len(text) + 3 * cjk + other


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float
    reason: str


@dataclass(frozen=True)
class LabelledPrompt:
    prompt: str
    category: str
    language: str = ""
    source: str = ""
    family: str = ""  # the unit the split assigns: a written prompt and its translations


def parse_prompts(text: str) -> list[LabelledPrompt]:
    """Rows of a labelled JSON-lines file (`prompt`, `category`, optional `lang` or
    `language`, `source`, `family`)."""
    return [
        LabelledPrompt(
            row["prompt"],
            row["category"],
            row.get("lang") or row.get("language", ""),
            row.get("source", ""),
            row.get("family", ""),
        )
        for _, row in json_lines(text)
    ]


def load_split(split: str = "train") -> list[LabelledPrompt]:
    """The shipped `train` or `validation` prompts."""
    data = resources.files(DATA_PACKAGE).joinpath(SPLIT_FILES[split])
    return parse_prompts(data.read_text("utf-8"))


def sparse_features(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, weights) of the hashed, log-scaled, L2-normalised word 1-2-grams and
    character 3-grams of `text` (the non-zero entries of `features`)."""
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        text = text[:HEAD_CHARS] + " " + text[-TAIL_CHARS:]
    words = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
    grams: list[str] = [f"w:{w}" for w in words]
    grams += [f"b:{a} {b}" for a, b in pairwise(words)]
    for word in words:
        padded = f"<{word}>"
        grams += [f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
    hashed = [zlib.crc32(gram.encode()) % HASH_DIMENSIONS for gram in grams]
    ids, counts = np.unique(np.asarray(hashed, dtype=np.intp), return_counts=True)
    values = np.log1p(counts.astype(np.float32))
    norm = float(np.linalg.norm(values))
    return ids, values / norm if norm else values


def features(text: str) -> np.ndarray:
    """The dense feature vector (HASH_DIMENSIONS,) of `text`."""
    ids, values = sparse_features(text)
    vector = np.zeros(HASH_DIMENSIONS, dtype=np.float32)
    vector[ids] = values
    return vector


def first_window(text: str) -> str:
    """What the encoder reads of a prompt: its first 100 words."""
    return next(iter(word_windows(text)), "")


class LinearModel:
    """Softmax regression on hashed n-grams (full-batch gradient descent), averaged with
    a small network on the sentence encoder's embedding when it has `head` (both
    deterministic)."""

    def __init__(
        self,
        labels: list[str],
        weights: np.ndarray,
        bias: np.ndarray,
        head: EmbeddingHead | None = None,
    ) -> None:
        self.labels = labels
        self._weights = weights
        self._bias = bias
        self._head = head

    @classmethod
    def train(cls, rows: Iterable[LabelledPrompt], *, encoder: bool = True) -> LinearModel:
        """The n-gram model, then (with `encoder`) the head on the prompts' embeddings
        (about a minute for the shipped training split: the encoder reads every prompt)."""
        rows = list(rows)
        model = cls._train_ngrams(rows)
        if not encoder:
            return model
        embeddings = shared_encoder().encode([first_window(row.prompt) for row in rows])
        classes = np.asarray([model.labels.index(row.category) for row in rows])
        head = EmbeddingHead.fit(embeddings, classes, len(model.labels))
        return cls(model.labels, model._weights, model._bias, head)

    @classmethod
    def _train_ngrams(cls, rows: list[LabelledPrompt]) -> LinearModel:
        """On the sparse features (a prompt has a few hundred non-zero entries of 16 384):
        the same steps as dense matrices, without a prompts x 16 384 matrix."""
        labels = sorted({row.category for row in rows})
        parts = [sparse_features(row.prompt) for row in rows]
        ids = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])
        starts = np.cumsum([0] + [len(p[0]) for p in parts])[:-1]
        row_of = np.repeat(np.arange(len(rows)), [len(p[0]) for p in parts])
        y = np.zeros((len(rows), len(labels)), dtype=np.float32)
        y[np.arange(len(rows)), [labels.index(row.category) for row in rows]] = 1.0
        weights = np.zeros((HASH_DIMENSIONS, len(labels)), dtype=np.float32)
        bias = np.zeros(len(labels), dtype=np.float32)
        for _ in range(TRAIN_STEPS):
            logits = np.add.reduceat(values[:, None] * weights[ids], starts, axis=0) + bias
            error = (softmax(logits) - y) / len(rows)
            spread = values[:, None] * error[row_of]
            gradient = np.stack(
                [
                    np.bincount(ids, spread[:, k], minlength=HASH_DIMENSIONS)
                    for k in range(len(labels))
                ],
                axis=1,
            )
            weights -= LEARNING_RATE * (gradient.astype(np.float32) + L2 * weights)
            bias -= LEARNING_RATE * error.sum(axis=0)
        return cls(labels, weights, bias)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"weights": self._weights, "bias": self._bias, "labels": np.asarray(self.labels)}
        if self._head is not None:
            arrays |= self._head.to_arrays()
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LinearModel:
        labels = [str(label) for label in arrays["labels"]]
        head = EmbeddingHead.from_arrays(arrays)
        return cls(labels, arrays["weights"], arrays["bias"], head)

    def probabilities(self, text: str) -> np.ndarray:
        """P(category) for each of `labels`."""
        ngrams = softmax(features(text) @ self._weights + self._bias)
        if self._head is None:
            return ngrams
        embedding = shared_encoder().encode([first_window(text) or text])
        return np.asarray((ngrams + self._head.probabilities(embedding)[0]) / 2)

    def predict(self, text: str) -> tuple[str, float]:
        probabilities = self.probabilities(text)
        best = int(np.argmax(probabilities))
        return self.labels[best], float(probabilities[best])


_TRAINING = threading.Lock()  # two first requests at once must not train twice


def shipped_model() -> LinearModel:
    """The shipped weights; trained anew (a few seconds, once per process) when
    train.jsonl changed since they were written."""
    with _TRAINING:
        return _shipped_model()


@functools.cache
def _shipped_model() -> LinearModel:
    arrays = shipped_weights.read(DATA_PACKAGE)
    if arrays is not None:
        return LinearModel.from_arrays(arrays)
    log.warning("model.npz does not match train.jsonl: training the request classifier")
    return LinearModel.train(load_split("train"))


class RequestClassifier:
    """Rules first, then the linear model. Thread-safe; the model trains once per process,
    on first use."""

    def __init__(
        self,
        *,
        long_context_chars: int = 8000,
        min_confidence: float = 0.45,
        fallback: str = "chat",
    ) -> None:
        self._long_context_chars = long_context_chars
        self._min_confidence = min_confidence
        self._fallback = fallback

    @classmethod
    def from_config(cls, config: RoutingConfig) -> RequestClassifier:
        return cls(
            long_context_chars=config.long_context_chars,
            min_confidence=config.min_confidence,
            fallback=config.fallback_category,
        )

    def classify(self, text: str) -> Classification:
        length = len(text)
        if length * 4 >= self._long_context_chars:  # only then can the weighted length reach it
            length = latin_equivalent_length(text)
        if length >= self._long_context_chars:
            return Classification(LONG_CONTEXT, 1.0, f"rule: {length} character equivalents")
        if _CODE_FENCE.search(text):
            return Classification("code", 1.0, "rule: code fence")
        if _TRACEBACK.search(text):
            return Classification("code", 1.0, "rule: stack trace")
        if _CODE_LINE.search(text):
            return Classification("code", 1.0, "rule: code statement")
        category, confidence = self.model().predict(text)
        if confidence < self._min_confidence:
            reason = f"model: {category} at {confidence:.2f} < {self._min_confidence}, fallback"
            return Classification(self._fallback, confidence, reason)
        return Classification(category, confidence, f"model: {category} at {confidence:.2f}")

    def model(self) -> LinearModel:
        return shipped_model()
