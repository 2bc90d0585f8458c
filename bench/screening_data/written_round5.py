"""Round-five training data for the screen, written by hand by the team
(written/round5_LANG.jsonl, one object a line: text, label, kind, family).

It targets two weaknesses: ordinary long documents and rewrite requests that contain
harmless imperatives ("ignore the previous email", "the system will reset your password",
"rewrite our bot's system prompt") were scored as attacks, and attacks in Swedish,
Indonesian, Czech, Thai, Persian, Ukrainian, Vietnamese and Hindi were missed. Training
and validation only: the family's sha256 picks validation (a quarter) or train, never test.
A text and its translations into other languages carry one family (e.g. "meeting-email",
"attack-direct"), so they fall in the same split; a text written for one language only has
the family "LANG/name".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRITTEN = HERE / "written"
SOURCE = "team:round5"
LICENCE = "Apache-2.0 (this project)"
VALIDATION_PERCENT = 25
LABELS = ("benign", "injection")


def split(family: str) -> str:
    bucket = int(hashlib.sha256(family.encode()).hexdigest(), 16) % 100
    return "validation" if bucket < VALIDATION_PERCENT else "train"


def rows() -> Iterator[dict[str, str]]:
    for path in sorted(WRITTEN.glob("round5_*.jsonl")):
        lang = path.stem.removeprefix("round5_")
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if item["label"] not in LABELS:
                raise ValueError(f"{path.name}:{number}: label {item['label']!r}")
            family = f"round5/{item['family']}"
            yield {"prompt": item["text"], "label": item["label"], "lang": lang,
                   "kind": item["kind"], "source": SOURCE, "family": family,
                   "licence": LICENCE, "split": split(family)}  # fmt: skip


if __name__ == "__main__":
    for item in rows():
        print(json.dumps(item, ensure_ascii=False))
