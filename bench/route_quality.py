"""The request classifier on prompts it has never seen: accuracy on the frozen held-out
set (bench/heldout/route.jsonl, split by family and committed before any training), per
category and per language, with the confusion matrix.

Run: .venv/bin/python bench/route_quality.py [--test-dir DIR] [--json]
--test-dir: a folder holding a frozen route.jsonl (default bench/heldout; bench/heldout_v2
is the set written independently by another engineer).
The classifier is the one `demigod route classify` and the gateway use (rules, then the
model trained on the shipped training split, `routing.min_confidence` fallback).
"""

from __future__ import annotations

import collections
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from demigod.config import RoutingConfig
from demigod.routing.classifier import RequestClassifier, load_split, parse_prompts

HELDOUT = Path(__file__).resolve().parent / "heldout"
MIN_ACCURACY, MIN_PER_GROUP = 0.95, 0.90  # the targets


def accuracy_by(rows: list[tuple[str, str, str]], index: int) -> dict[str, tuple[int, int]]:
    """(correct, total) per value of field `index` of (category, language, predicted)."""
    found: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for row in rows:
        found[row[index]][0] += row[0] == row[2]
        found[row[index]][1] += 1
    return {key: (correct, total) for key, (correct, total) in sorted(found.items())}


def main(argv: list[str]) -> None:
    classifier = RequestClassifier.from_config(RoutingConfig())
    folder = Path(argv[argv.index("--test-dir") + 1]) if "--test-dir" in argv else HELDOUT
    test = parse_prompts((folder / "route.jsonl").read_text("utf-8"))
    sets = {"validation": load_split("validation"), "test": test}
    summary = {}
    for name, prompts in sets.items():
        rows = [(p.category, p.language, classifier.classify(p.prompt).category) for p in prompts]
        correct = sum(r[0] == r[2] for r in rows)
        by_category, by_language = accuracy_by(rows, 0), accuracy_by(rows, 1)
        confusion = collections.Counter((r[0], r[2]) for r in rows)
        groups = [*by_category.values(), *by_language.values()]
        summary[name] = {
            "accuracy": round(correct / len(rows), 4),
            "prompts": len(rows),
            "by_category": by_category,
            "by_language": by_language,
            "confusion": {f"{t}->{p}": n for (t, p), n in sorted(confusion.items())},
            "targets_met": {
                "accuracy": correct / len(rows) >= MIN_ACCURACY,
                "every_category_and_language": all(c / t >= MIN_PER_GROUP for c, t in groups),
            },
        }
        if "--json" in argv:
            continue
        print(f"\n{name}: accuracy {correct}/{len(rows)} = {correct / len(rows):.1%}")
        for title, table in (("category", by_category), ("language", by_language)):
            print(f"  by {title}: " + ", ".join(f"{k} {c}/{t}" for k, (c, t) in table.items()))
        labels = sorted({r[0] for r in rows} | {r[2] for r in rows})
        print("  true \\ predicted " + " ".join(f"{label:>12}" for label in labels))
        for true in labels:
            cells = " ".join(f"{confusion[(true, p)]:12}" for p in labels)
            print(f"  {true:17} {cells}")
        print(f"  targets met: {summary[name]['targets_met']}")
    print(
        json.dumps(
            {
                "bench": "route_quality",
                "date": datetime.now(UTC).date().isoformat(),
                "results": summary,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
