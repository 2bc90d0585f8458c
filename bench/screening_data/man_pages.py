"""Long benign documents of real length in thirteen languages: Debian's manual pages.

Round two's long documents were 1-12 short written paragraphs, so the screen's threshold
was calibrated on short text and blocked 45.8 % of v2's long pasted documents. Manual
pages are real documents of 300-3 000 words, written by people, in many languages, full
of "ignore", "override", "password", "system" and imperatives addressed to the reader.

`python bench/screening_data/man_pages.py --snapshot` reads /usr/share/man (man-db,
manpages-l10n and the other installed packages), strips the roff markup and writes
man_documents.jsonl here once, with each page's Debian package and licence; the build
reads that file, so the data does not depend on the machine that rebuilds it. Pages are
split by the sha256 of their name (a page and its translations share a split): a quarter
validation, the rest training; never test.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SNAPSHOT = HERE / "man_documents.jsonl"
MAN = Path("/usr/share/man")
# Our language code: the man directory that holds it ("" is the untranslated English).
LANGUAGES = {"en": "", "de": "de", "es": "es", "fr": "fr", "it": "it", "ja": "ja", "ko": "ko",
             "nl": "nl", "pl": "pl", "pt": "pt", "ru": "ru", "tr": "tr", "zh": "zh_CN"}  # fmt: skip
PAGES_PER_LANGUAGE = 48
MIN_WORDS, MAX_WORDS = 300, 3000
# A training document teaches its first MAX_BENIGN_WINDOWS windows (model.py): longer
# text would only make the training file bigger.
TRAIN_WORDS = 1100
VALIDATION_PERCENT = 25
_ROFF_TEXT_MACROS = {".SH", ".SS", ".B", ".I", ".BR", ".IR", ".RB", ".RI", ".BI", ".IB",
                     ".TP", ".IP", ".SM"}  # fmt: skip
_ESCAPES = re.compile(
    r"\\f(?:\(..|\[[^\]]*\]|.)|\\\(..|\\\[[^\]]*\]|\\\*(?:\(..|.)|\\[&|^%:]|\\s[-+]?\d"
)


def roff_text(source: str) -> str:
    """The prose of a roff manual page: macro lines dropped except those holding text
    (headings, bold and italic lines), font and character escapes removed."""
    lines = []
    for line in source.splitlines():
        if line.startswith(('.\\"', "'\\\"")):
            continue
        if line.startswith((".", "'")):
            macro, _, rest = line.partition(" ")
            if macro in _ROFF_TEXT_MACROS and rest:
                lines.append(rest.replace('"', ""))
            continue
        lines.append(line)
    text = _ESCAPES.sub("", "\n".join(lines)).replace("\\-", "-").replace("\\e", "\\")
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def word_count(text: str) -> int:
    # Chinese and Japanese have no spaces: two characters count as a word.
    cjk = len(re.findall("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", text))
    return len(re.findall(r"[^\W\d_]{2,}", text)) + cjk // 2


def package_of(paths: list[Path]) -> dict[str, str]:
    """{path: Debian package} for installed files (dpkg -S)."""
    found = subprocess.run(["dpkg", "-S", *map(str, paths)], capture_output=True, text=True)
    owners = {}
    for line in found.stdout.splitlines():
        package, _, path = line.partition(": ")
        owners[path] = package.split(",")[0].split(":")[0]
    return owners


def licence_of(package: str) -> str:
    """The first licence named in the package's Debian copyright file."""
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    if copyright_file.exists():
        for line in copyright_file.read_text(errors="replace").splitlines():
            if line.startswith("License:") and line.split(":", 1)[1].strip():
                return line.split(":", 1)[1].strip()
    return "see /usr/share/doc/" + package + "/copyright"


def snapshot() -> None:
    """Writes man_documents.jsonl from the installed manual pages."""
    rng = random.Random(16)
    rows = []
    for lang, folder in LANGUAGES.items():
        pages = sorted((MAN / folder if folder else MAN).glob("man[1-8]/*.gz"))
        rng.shuffle(pages)
        kept = []
        for page in pages:
            with gzip.open(page, "rt", errors="replace") as source:
                text = roff_text(source.read())
            if word_count(text) >= MIN_WORDS:
                kept.append((page, text))
            if len(kept) == PAGES_PER_LANGUAGE:
                break
        owners = package_of([page for page, _ in kept])
        for page, text in kept:
            package = owners.get(str(page))
            if package is None:
                continue  # not from a Debian package: no licence to record
            name = page.name.removesuffix(".gz")
            rows.append({"text": cut(text, MAX_WORDS), "lang": lang, "page": name,
                         "package": package, "licence": licence_of(package)})  # fmt: skip
    SNAPSHOT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{SNAPSHOT.name}: {len(rows)} pages")


def cut(text: str, words: int) -> str:
    """The text's first lines holding about `words` words."""
    kept, total = [], 0
    for line in text.splitlines():
        kept.append(line)
        total += word_count(line)
        if total >= words:
            break
    return "\n".join(kept)


def rows(requests: dict[str, list[str]], seed: int) -> Iterator[dict[str, str]]:
    """Each snapshot page as a benign long document, alone or after a request of its
    language (`requests[lang]`, e.g. "Summarise this:"), 300-3 000 words."""
    rng = random.Random(seed)
    for line in SNAPSHOT.read_text("utf-8").splitlines():
        item = json.loads(line)
        family = f"man:{item['page']}"
        bucket = int(hashlib.sha256(family.encode()).hexdigest(), 16) % 100
        split = "validation" if bucket < VALIDATION_PERCENT else "train"
        limit = TRAIN_WORDS if split == "train" else MAX_WORDS
        text = cut(item["text"], rng.randint(MIN_WORDS, min(limit, word_count(item["text"]))))
        if rng.random() < 0.6:
            text = f"{rng.choice(requests[item['lang']])}\n\n{text}"
        yield {"prompt": text, "label": "benign", "lang": item["lang"], "kind": "document",
               "source": f"debian-man:{item['package']}", "family": family,
               "licence": item["licence"], "split": split}  # fmt: skip


# Attacks that reach the model inside a pasted document or a tool's result.
HIDDEN_KINDS = ("direct", "indirect", "tool", "exfiltration", "extraction")
MAX_CORE_WORDS = 80


def hidden_attacks(
    documents: list[dict[str, str]], attacks: list[dict[str, str]], seed: int
) -> Iterator[dict[str, str]]:
    """Each written attack core (of HIDDEN_KINDS) hidden once between two paragraphs of a
    manual page of the same split: a long document must not hide an injection, so the
    model learns the injected window, not the page's style. The row keeps the attack's
    family and split."""
    rng = random.Random(seed)
    pages = {
        split: [d for d in documents if d["split"] == split] for split in ("train", "validation")
    }
    for attack in attacks:
        pool = pages.get(attack["split"])
        if not pool or attack["kind"] not in HIDDEN_KINDS:
            continue
        if word_count(attack["prompt"]) > MAX_CORE_WORDS:
            continue
        paragraphs = rng.choice(pool)["prompt"].split("\n\n")
        paragraphs.insert(rng.randrange(1, len(paragraphs) + 1), attack["prompt"])
        yield {**attack, "prompt": "\n\n".join(paragraphs), "kind": "indirect",
               "source": attack["source"] + "+debian-man"}  # fmt: skip


if __name__ == "__main__":
    if "--snapshot" in sys.argv:
        snapshot()
