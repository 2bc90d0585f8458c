"""How well the screen separates injections from benign text, on the held-out part.

The model threshold is chosen on the *training* part only (out-of-fold scores from
CV_FOLDS-fold cross-validation, false-positive rate <= the target); the model is then
trained on the whole training part and measured on the held-out part, per language, for
the model alone and for the full screen (rules or model). Run:
`python -m demigod.security.waf.evaluate [--json]`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass

from demigod.config import WafConfig
from demigod.security.waf.model import (
    InjectionModel,
    LabelledText,
    load_labelled,
    out_of_fold_scores,
    split_labelled,
    threshold_at_fpr,
)
from demigod.security.waf.screen import PromptScreen

TARGET_FALSE_POSITIVE_RATE = 0.02


@dataclass(frozen=True)
class Rates:
    language: str
    layer: str  # "model" or "screen" (rules or model)
    threshold: str  # "chosen" (on the training part) or "configured" (waf.threshold)
    injections: int
    benign: int
    true_positive_rate: float
    false_positive_rate: float


@dataclass(frozen=True)
class Evaluation:
    threshold: float  # chosen on the training part
    configured_threshold: float
    train_size: int
    held_out_size: int
    rates: list[Rates]


def choose_threshold(train: list[LabelledText], max_fpr: float) -> float:
    """The model threshold at <= `max_fpr` false positives on out-of-fold training scores."""
    scores = out_of_fold_scores(train, lambda model, row: model.score(row.prompt))
    # Measured on the written benign examples (hard negatives included), not the easy
    # background prompts, which would let the threshold drop.
    benign = [
        s
        for s, r in zip(scores, train, strict=True)
        if not r.is_injection and r.language != "mixed"
    ]
    return threshold_at_fpr(benign, max_fpr)


def _rates(
    language: str, layer: str, which: str, rows: list[LabelledText], blocked: list[bool]
) -> Rates:
    positives = [b for b, r in zip(blocked, rows, strict=True) if r.is_injection]
    negatives = [b for b, r in zip(blocked, rows, strict=True) if not r.is_injection]
    return Rates(
        language,
        layer,
        which,
        len(positives),
        len(negatives),
        round(sum(positives) / max(len(positives), 1), 4),
        round(sum(negatives) / max(len(negatives), 1), 4),
    )


def evaluate(max_fpr: float = TARGET_FALSE_POSITIVE_RATE) -> Evaluation:
    train, held_out = split_labelled(load_labelled())
    threshold = choose_threshold(train, max_fpr)
    model = InjectionModel.train(train)
    configured = WafConfig().threshold
    rates = []
    for which, cut in (("chosen", threshold), ("configured", configured)):
        screen = PromptScreen(threshold=cut, model=model)
        for language in ("en", "es", "all"):
            rows = [r for r in held_out if language in ("all", r.language)]
            by_model = [model.score(r.prompt) >= cut for r in rows]
            by_screen = [screen.screen_text(r.prompt).blocked for r in rows]
            rates += [_rates(language, "model", which, rows, by_model)]
            rates += [_rates(language, "screen", which, rows, by_screen)]
    return Evaluation(round(threshold, 4), configured, len(train), len(held_out), rates)


def main(argv: list[str]) -> None:
    result = evaluate()
    if "--json" in argv:
        print(json.dumps(asdict(result)))
        return
    sizes = f"train {result.train_size}, held out {result.held_out_size}"
    print(
        f"chosen threshold {result.threshold}, configured {result.configured_threshold} ({sizes})"
    )
    print(
        f"{'threshold':<11} {'lang':<5} {'layer':<7} {'inj':>4} {'benign':>6} {'TPR':>7} {'FPR':>7}"
    )
    for r in result.rates:
        print(
            f"{r.threshold:<11} {r.language:<5} {r.layer:<7} {r.injections:>4} {r.benign:>6} "
            f"{r.true_positive_rate:>7.1%} {r.false_positive_rate:>7.1%}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
