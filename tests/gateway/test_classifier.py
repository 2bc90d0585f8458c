"""The request classifier: accuracy on the frozen held-out prompts (ten languages), rules."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demigod.routing.classifier import (
    LONG_CONTEXT,
    LinearModel,
    RequestClassifier,
    features,
    load_split,
    parse_prompts,
    shipped_model,
)

HELDOUT = Path(__file__).resolve().parents[2] / "bench" / "heldout" / "route.jsonl"
HELDOUT_V2 = Path(__file__).resolve().parents[2] / "bench" / "heldout_v2" / "route.jsonl"
HELDOUT_V3 = Path(__file__).resolve().parents[2] / "bench" / "heldout_v3" / "route.jsonl"
HELDOUT_V4 = Path(__file__).resolve().parents[2] / "bench" / "heldout_v4" / "route.jsonl"
HELDOUT_V5 = Path(__file__).resolve().parents[2] / "bench" / "heldout_v5" / "route.jsonl"
# Measured by bench/route_quality.py on the frozen sets (docs/routing.md), round four
# (frozen in "screening-4: frozen"); the targets (0.95 overall, 0.90 per category
# and language) are not all met: these bars hold what was measured, so a regression fails.
MEASURED_ACCURACY = 123 / 123
MEASURED_CORRECT_BY_GROUP = {
    "chat": 40, "code": 43, "math": 40, "de": 12, "en": 15, "es": 12, "fr": 12, "it": 12,
    "ja": 12, "nl": 12, "pt": 12, "ru": 12, "zh": 12,
}  # fmt: skip
# The same on v2 (written independently of the data and models, fifteen languages).
MEASURED_V2_ACCURACY = 542 / 550
MEASURED_V2_CORRECT_BY_GROUP = {
    "chat": 141, "code": 146, "long_context": 118, "math": 137, "ar": 27, "de": 34,
    "en": 119, "es": 34, "fr": 33, "hi": 26, "it": 31, "ja": 33, "ko": 28, "nl": 26,
    "pl": 28, "pt": 32, "ru": 32, "tr": 28, "zh": 31,
}  # fmt: skip
# v3 (blind-author-2, eighteen languages): round three's clean measure (0.852).
MEASURED_V3_ACCURACY = 306 / 310
MEASURED_V3_CORRECT_BY_GROUP = {
    "chat": 82, "code": 79, "long_context": 64, "math": 81, "ar": 6, "de": 13, "en": 164,
    "es": 14, "fr": 13, "hi": 6, "id": 7, "it": 8, "ja": 8, "ko": 7, "nl": 7, "pl": 7,
    "pt": 8, "ru": 10, "sv": 5, "tr": 8, "vi": 7, "zh": 8,
}  # fmt: skip
# v4 (blind-author-3b, twenty-two languages): round four's clean measure, scored once.
MEASURED_V4_ACCURACY = 346 / 357
MEASURED_V4_CORRECT_BY_GROUP = {
    "chat": 96, "code": 100, "long_context": 53, "math": 97, "ar": 7, "cs": 5, "de": 11,
    "en": 183, "es": 9, "fa": 6, "fr": 9, "hi": 7, "id": 7, "it": 8, "ja": 8, "ko": 8,
    "nl": 8, "pl": 8, "pt": 8, "ru": 9, "sv": 6, "th": 7, "tr": 8, "uk": 7, "vi": 8,
    "zh": 9,
}  # fmt: skip
# v5 (blind-author-4): a second clean measure of round four's classifier (round five
# changed only the screen).
MEASURED_V5_ACCURACY = 216 / 226
MEASURED_V5_CORRECT_BY_GROUP = {
    "chat": 64, "code": 62, "long_context": 25, "math": 65, "ar": 4, "de": 7, "en": 112,
    "es": 8, "fr": 8, "hi": 5, "id": 6, "it": 7, "ja": 7, "ko": 4, "nl": 7, "pl": 7,
    "pt": 7, "ru": 7, "tr": 7, "uk": 7, "zh": 6,
}  # fmt: skip

CLASSIFIER = RequestClassifier()  # the shipped model, trained once per process


def test_held_out_prompts_are_not_trained_on() -> None:
    held_out = [
        p
        for path in (HELDOUT, HELDOUT_V2, HELDOUT_V3, HELDOUT_V4, HELDOUT_V5)
        for p in parse_prompts(path.read_text())
    ]
    shipped = load_split("train") + load_split("validation")
    # v2 to v5 were written without seeing the training data; five everyday phrasings of
    # v2, two general questions of v3 and one maths question each of v4 and v5 coincide.
    assert {r.prompt for r in held_out} & {r.prompt for r in shipped} == {
        "Tell me a fun fact about octopuses.",
        "Demuestra por inducción que 1 + 2 + ... + n = n(n+1)/2.",
        "Solve the differential equation dy/dx = 3y with y(0) = 2.",
        "안녕! 오늘 기분 어때?",
        "مرحبًا! كيف حالك اليوم؟",
        "How do vaccines train the immune system?",
        "What's the difference between weather and climate?",
        "Find the eigenvalues of the matrix [[2, 1], [1, 2]].",
        "Is 221 a prime number?",
    }
    assert not {r.family for r in held_out} & {r.family for r in shipped}
    assert {r.language for r in held_out} >= {"en", "es", "fr", "de", "it", "pt", "nl", "ru"}


@pytest.mark.parametrize(
    ("path", "accuracy", "by_group"),
    [
        (HELDOUT, MEASURED_ACCURACY, MEASURED_CORRECT_BY_GROUP),
        (HELDOUT_V2, MEASURED_V2_ACCURACY, MEASURED_V2_CORRECT_BY_GROUP),
        (HELDOUT_V3, MEASURED_V3_ACCURACY, MEASURED_V3_CORRECT_BY_GROUP),
        (HELDOUT_V4, MEASURED_V4_ACCURACY, MEASURED_V4_CORRECT_BY_GROUP),
        (HELDOUT_V5, MEASURED_V5_ACCURACY, MEASURED_V5_CORRECT_BY_GROUP),
    ],
    ids=["v1", "v2", "v3", "v4", "v5"],
)
def test_held_out_accuracy_per_category_and_language(
    path: Path, accuracy: float, by_group: dict[str, int]
) -> None:
    held_out = parse_prompts(path.read_text())
    correct: collections.Counter[str] = collections.Counter()
    for row in held_out:
        if CLASSIFIER.classify(row.prompt).category == row.category:
            correct.update([row.category, row.language, "all"])
    assert correct["all"] / len(held_out) >= accuracy
    for group, measured in by_group.items():
        assert correct[group] >= measured, group


def test_spanish_and_english_prompts() -> None:
    classifier = CLASSIFIER
    assert (
        classifier.classify("Escribe una función en JavaScript que ordene un array.").category
        == "code"
    )
    assert classifier.classify("Resuelve la ecuación 3x + 2 = 17.").category == "math"
    assert classifier.classify("¿Qué ciudad me recomiendas visitar en verano?").category == "chat"
    assert classifier.classify("Write a Java class for a bank account.").category == "code"


def test_rules_come_before_the_model() -> None:
    classifier = RequestClassifier(long_context_chars=100)
    assert classifier.classify("hello " * 40).category == LONG_CONTEXT
    fenced = CLASSIFIER.classify("what does this do?\n```\nx = 1\n```")
    assert (fenced.category, fenced.reason) == ("code", "rule: code fence")
    trace = "Traceback (most recent call last):\n  File 'a.py', line 1"
    assert CLASSIFIER.classify(trace).category == "code"
    for statement in ("def foo(x): return x*2  # explain", "SELECT a, b FROM t WHERE a = 1;"):
        found = CLASSIFIER.classify(statement)
        assert (found.category, found.reason) == ("code", "rule: code statement")
    # prose that merely mentions such words is left to the model
    assert CLASSIFIER.classify("Let me tell you about my class trip").category == "chat"


def test_shipped_weights_are_the_training_of_the_shipped_data() -> None:
    """The gateway loads data/model.npz instead of training; retraining on the shipped
    split (`python -m demigod.routing.train`) gives the same model."""
    trained = LinearModel.train(load_split("train"))
    for row in load_split("validation")[:60]:
        assert trained.predict(row.prompt)[0] == shipped_model().predict(row.prompt)[0]
        assert abs(trained.predict(row.prompt)[1] - shipped_model().predict(row.prompt)[1]) < 1e-4


def test_long_context_counts_characters_by_script() -> None:
    """A Chinese or Japanese character is about a token, a Latin one a quarter of one: 2 500
    Chinese characters are long context at the default 8 000, 2 500 Latin ones are not."""
    classifier = RequestClassifier(long_context_chars=8000)
    assert classifier.classify("会议决定五月粉刷楼道。" * 250).category == LONG_CONTEXT
    assert classifier.classify("The board met. " * 166).category != LONG_CONTEXT
    assert classifier.classify("Совет собрался. " * 400).category == LONG_CONTEXT


def test_low_confidence_falls_back() -> None:
    unsure = RequestClassifier(min_confidence=1.01, fallback="chat").classify("Solve 2x = 4")
    assert unsure.category == "chat" and "fallback" in unsure.reason


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_a_known_category(text: str) -> None:
    found = CLASSIFIER.classify(text)
    assert found.category in {"code", "math", "chat", LONG_CONTEXT}
    assert 0.0 <= found.confidence <= 1.0
    assert features(text).shape == features("").shape


def test_route_classify_cli_scores_the_held_out_set_the_same() -> None:
    """`demigod route classify --jsonl` (the batch interface evaluations use) reaches the
    accuracy the docs report on the frozen set."""
    command = [sys.executable, "-m", "demigod", "route", "classify", "--jsonl", str(HELDOUT)]
    models = ["--model", "c=c.gguf:code", "--model", "m=m.gguf:math", "--model", "t=t.gguf"]
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DEMIGOD_")}
    done = subprocess.run(
        [*command, *models], capture_output=True, text=True, timeout=300, cwd=HELDOUT.parent,
        env=clean,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    predicted = [json.loads(line)["category"] for line in done.stdout.split("\n") if line]
    truth = [row.category for row in parse_prompts(HELDOUT.read_text())]
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    assert correct / len(truth) >= MEASURED_ACCURACY
