"""The learned layer: logistic regression over hashed word and character n-grams.

The request classifier's features (see features.py), two labels, trained from
`data/labelled.jsonl` (English and Spanish, with hard negatives: questions *about* prompt
injection, text that legitimately says "ignore", "system" or "override") plus everyday
prompts as background negatives. Training takes well under a second on one core and
happens once per process; long text is scored in overlapping word windows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from demigod.gateway import classifier
from demigod.security.waf.features import window_vectors
from demigod.security.waf.normalize import clean, fold

DATA_FILE = "labelled.jsonl"
INJECTION, BENIGN = "injection", "benign"
# Logistic regression by full-batch gradient descent on the cross-entropy + L2 loss.
TRAIN_STEPS, LEARNING_RATE, L2 = 1000, 8.0, 1e-4
HELD_OUT_EVERY = 5  # every fifth example is held out, never trained on
CV_FOLDS = 5


@dataclass(frozen=True)
class LabelledText:
    prompt: str
    label: str  # "injection" or "benign"
    language: str  # "en", "es", or "mixed" (the background prompts)

    @property
    def is_injection(self) -> bool:
        return self.label == INJECTION


def load_background() -> list[LabelledText]:
    """Everyday prompts (the routing classifier's code/math/chat set, EN and ES) as benign
    examples, language "mixed": they teach the model what ordinary traffic looks like."""
    return [LabelledText(row.prompt, BENIGN, "mixed") for row in classifier.load_labelled()]


def load_labelled(*, background: bool = True) -> list[LabelledText]:
    """The labelled set shipped with the package, plus (by default) the background
    prompts interleaved. Raises ValueError on a malformed line."""
    text = resources.files("demigod.security.waf.data").joinpath(DATA_FILE).read_text("utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("label") not in (INJECTION, BENIGN) or row.get("lang") not in ("en", "es"):
            raise ValueError(f"{DATA_FILE}:{number}: label must be injection|benign, lang en|es")
        rows.append(LabelledText(row["prompt"], row["label"], row["lang"]))
    if not background:
        return rows
    written = {row.prompt for row in rows}
    extra = [row for row in load_background() if row.prompt not in written]
    # Interleave so the every-fifth held-out split takes a fair share of both.
    step = max(len(rows) // max(len(extra), 1), 1)
    mixed: list[LabelledText] = []
    for index, row in enumerate(rows):
        mixed.append(row)
        if index % step == step - 1 and extra:
            mixed.append(extra.pop())
    return mixed + extra


def split_labelled(rows: Sequence[LabelledText]) -> tuple[list[LabelledText], list[LabelledText]]:
    """Deterministic train / held-out split: every fifth example is held out."""
    train = [r for i, r in enumerate(rows) if i % HELD_OUT_EVERY]
    return train, [r for i, r in enumerate(rows) if not i % HELD_OUT_EVERY]


class InjectionModel:
    """P(injection) for a text: the highest over its windows."""

    def __init__(self, weight: np.ndarray, bias: float) -> None:
        self._weight = weight
        self._bias = bias

    @classmethod
    def train(cls, rows: Iterable[LabelledText]) -> InjectionModel:
        """Gradient descent in the dual: the weights stay in the span of the training
        vectors (w = X^T a), so each step costs n x n, not n x 16384 — a fraction of a
        second for a few hundred examples, the same weights as the primal steps."""
        rows = list(rows)
        x = np.stack([window_vectors(fold(clean(r.prompt)))[0] for r in rows]).astype(np.float64)
        y = np.array([r.is_injection for r in rows], dtype=np.float64)
        gram = x @ x.T
        dual = np.zeros(len(rows))
        bias = 0.0
        for _ in range(TRAIN_STEPS):
            error = (_sigmoid(gram @ dual + bias) - y) / len(rows)
            dual -= LEARNING_RATE * (error + L2 * dual)
            bias -= LEARNING_RATE * float(error.sum())
        return cls((x.T @ dual).astype(np.float32), bias)

    def score_folded(self, folded: str) -> float:
        """P(injection) of text already normalised with `fold(clean(text))`."""
        logits = window_vectors(folded) @ self._weight + self._bias
        return float(_sigmoid(np.asarray(logits.max())))

    def score(self, text: str) -> float:
        return self.score_folded(fold(clean(text)))


@functools.cache
def shipped_model() -> InjectionModel:
    """Trained on the shipped set's training split, once per process."""
    return InjectionModel.train(split_labelled(load_labelled())[0])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def threshold_at_fpr(benign_scores: Sequence[float], max_false_positive_rate: float) -> float:
    """The lowest threshold (score >= threshold blocks) whose false-positive rate on
    `benign_scores` is at most `max_false_positive_rate`."""
    ordered = sorted(benign_scores, reverse=True)
    allowed = int(max_false_positive_rate * len(ordered))  # benign scores allowed above it
    if allowed >= len(ordered):
        return 0.0
    # Just above the (allowed+1)-th highest benign score.
    return float(np.nextafter(ordered[allowed], np.inf))


def out_of_fold_scores(
    rows: Sequence[LabelledText], score: Callable[[InjectionModel, LabelledText], float]
) -> list[float]:
    """Each row scored by a model trained on the other folds (CV_FOLDS folds)."""
    scores = [0.0] * len(rows)
    for fold_index in range(CV_FOLDS):
        train = [r for i, r in enumerate(rows) if i % CV_FOLDS != fold_index]
        model = InjectionModel.train(train)
        for i in range(fold_index, len(rows), CV_FOLDS):
            scores[i] = score(model, rows[i])
    return scores
