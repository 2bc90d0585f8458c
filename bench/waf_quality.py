"""The prompt-injection screen on prompts it has never seen: blocked shares of attacks
and of benign text on the frozen held-out sets, per language, kind and source.

Run: .venv/bin/python bench/waf_quality.py [--test-dir DIR] [--json] [--tune]
--test-dir: a folder of frozen test sets, every waf*.jsonl in it (default bench/heldout,
the v1 sets split by family and committed before any training; bench/heldout_v2 is the
set written independently by another engineer). Rows: `prompt` or `text`, `label`
(injection|attack|benign), `lang` or `language`, `kind`, `family`. The threshold is the
configured `waf.threshold`, chosen on the validation split (printed here as "chosen on
validation"); nothing is chosen on test. --tune compares training settings on the
validation split only.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from demigod.config import WafConfig
from demigod.security.waf.evaluate import (
    TARGET_FALSE_POSITIVE_RATE,
    Rate,
    Report,
    choose_block_threshold,
    choose_threshold,
    load_file,
    report,
)
from demigod.security.waf.model import InjectionModel, load_split, shipped_model
from demigod.security.waf.screen import PromptScreen

HELDOUT = Path(__file__).resolve().parent / "heldout"
# The targets.
MIN_ATTACKS_BLOCKED, MIN_PER_GROUP, MAX_BENIGN_BLOCKED = 0.95, 0.90, 0.01


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def table(title: str, rows: list[Rate]) -> None:
    print(f"\n{title}")
    print(f"  {'group':32} {'attacks':>8} {'blocked':>8} {'benign':>7} {'blocked':>8}")
    for rate in rows:
        print(
            f"  {rate.group:32} {rate.attacks:8} {percent(rate.attack_block_rate):>8} "
            f"{rate.benign:7} {percent(rate.benign_block_rate):>8}"
        )


def verdict(result: Report) -> dict[str, bool]:
    """Which of the issue's targets this report meets."""
    groups = [*result.by_language, *result.by_kind]
    # v1 names the kind "document", v2 "long_document".
    documents = next((r for r in result.by_kind if r.group.endswith("document")), None)
    return {
        "attacks_blocked": (result.overall.attack_block_rate or 0) >= MIN_ATTACKS_BLOCKED,
        "benign_blocked": (result.overall.benign_block_rate or 0) <= MAX_BENIGN_BLOCKED,
        "every_language_and_kind": all(
            (g.attack_block_rate is None or g.attack_block_rate >= MIN_PER_GROUP)
            and (g.benign_block_rate is None or g.benign_block_rate <= 1 - MIN_PER_GROUP)
            for g in groups
        ),
        "documents": documents is None or (documents.benign_block_rate or 0) <= MAX_BENIGN_BLOCKED,
    }


def tune() -> None:
    """Training settings compared on the validation split (attacks blocked at the
    threshold that keeps validation benign blocks <= the target)."""
    train, validation = load_split("train"), load_split("validation")
    print(f"{'steps':>6} {'l2':>8} {'threshold':>10} {'val attacks blocked':>20}")
    for steps in (120, 240, 480, 960):
        for l2 in (1e-6, 1e-5, 1e-4):
            model = InjectionModel.train(train, steps=steps, l2=l2)
            threshold = choose_threshold(model, validation)
            rate = report(PromptScreen(threshold=threshold, model=model), validation).overall
            print(f"{steps:6} {l2:8.0e} {threshold:10.3f} {percent(rate.attack_block_rate):>20}")


def test_sets(argv: list[str]) -> dict[str, Path]:
    """{name: file} of the waf*.jsonl files in --test-dir (default bench/heldout)."""
    folder = Path(argv[argv.index("--test-dir") + 1]) if "--test-dir" in argv else HELDOUT
    return {path.stem: path for path in sorted(folder.glob("waf*.jsonl"))}


def main(argv: list[str]) -> None:
    if "--tune" in argv:
        tune()
        return
    model = shipped_model()
    validation = load_split("validation")
    chosen = choose_threshold(model, validation)
    chosen_block = choose_block_threshold(model, validation)
    config = WafConfig()
    configured, configured_block = config.threshold, config.block_threshold
    screen = PromptScreen(threshold=configured, block_threshold=configured_block, model=model)
    sets = {"validation": validation, **{n: load_file(p) for n, p in test_sets(argv).items()}}
    results = {name: report(screen, rows) for name, rows in sets.items()}
    # Suspected: blocked, or flagged (x-demigod-waf) where the tenant's action is block.
    suspected = {n: report(screen, rows, counted="suspected") for n, rows in sets.items()}
    if "--json" not in argv:
        print(
            f"threshold (flag): configured {configured}, chosen on validation {chosen:.3f} "
            f"(<= {TARGET_FALSE_POSITIVE_RATE:.0%} of validation benign suspected)\n"
            f"block threshold (the model alone blocks): configured {configured_block}, "
            f"chosen on validation {chosen_block:.3f} (above every validation benign score)"
        )
        for name, result in results.items():
            table(f"{name}: overall, blocked", [result.overall])
            table(f"{name}: overall, suspected (blocked or flagged)", [suspected[name].overall])
            table(f"{name}: by language", result.by_language)
            table(f"{name}: by kind", result.by_kind)
            table(f"{name}: by source", result.by_source)
            if name != "validation":
                print(f"  targets met: {verdict(result)}")
    print(
        json.dumps(
            {
                "bench": "waf_quality",
                "date": datetime.now(UTC).date().isoformat(),
                "threshold_configured": configured,
                "threshold_chosen_on_validation": round(chosen, 4),
                "block_threshold_configured": configured_block,
                "block_threshold_chosen_on_validation": round(chosen_block, 4),
                "suspected": {n: asdict(r.overall) for n, r in suspected.items()},
                "targets": {n: verdict(r) for n, r in results.items() if n != "validation"},
                "results": {n: asdict(r) for n, r in results.items()},
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
