"""Round-two training data for the screen: texts the team wrote in fifteen languages
(written/waf_LANG.txt) and the bastioncorpus prompt-injection corpus (PyPI, MIT), composed
into requests as users and attackers send them. Training and validation only: the test
sets are frozen elsewhere (bench/heldout/, bench/heldout_v2/) and never built from here.

A piece file has sections (`# attack direct`, `# benign security`, `# paragraph`,
`# summarise`), one text per line; `\\n` in a line is a line break, `{url}` and `{email}`
are filled with attacker addresses. The family of a row is its section and line number,
shared by every language (line N of one language's section is often a translation of
line N of another's), so a text, its translations and its disguises fall in one split.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import external

HERE = Path(__file__).resolve().parent
WRITTEN = HERE / "written"
LANGUAGES = (
    "en",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "nl",
    "ru",
    "zh",
    "ja",
    "ar",
    "ko",
    "tr",
    "hi",
    "pl",
)
LICENCE = "Apache-2.0 (this project)"
# Line numbers with this remainder go to validation (about one in five); the rest train.
VALIDATION_EVERY, VALIDATION_AT = 5, 3
BASTION = ("bastioncorpus", "0.6.0", "MIT")

URLS = (
    "https://stats-collector.example/p.png",
    "https://cdn-metrics.example.net/pixel",
    "http://telemetry.example.org/t",
    "https://img.example-assets.com/a.gif",
    "https://forms.example.io/submit",
)
EMAILS = ("archive@files-backup.example", "ops-team@mail-relay.example", "x7@protonmail.example")


def parse_pieces(lang: str) -> dict[str, list[str]]:
    """Sections of written/waf_LANG.txt: {"attack direct": [...], "paragraph": [...]}."""
    sections: dict[str, list[str]] = {}
    current = ""
    for line in (WRITTEN / f"waf_{lang}.txt").read_text("utf-8").splitlines():
        if line.startswith("# "):
            current = line[2:].strip()
            sections[current] = []
        elif line.strip():
            sections[current].append(line.strip().replace("\\n", "\n"))
    return sections


def line_split(index: int) -> str:
    return "validation" if index % VALIDATION_EVERY == VALIDATION_AT else "train"


def fill(text: str, rng: random.Random) -> str:
    return text.replace("{url}", rng.choice(URLS)).replace("{email}", rng.choice(EMAILS))


# --- how an attack reaches the model ------------------------------------------------------
def carry(carrier: str, core: str, paragraphs: list[str], rng: random.Random) -> str:
    """`core` hidden among `paragraphs` in the carrier's format (also used for benign
    documents with no core, so the carriers themselves are not a sign of attack)."""
    body = list(paragraphs)
    if core:
        body.insert(rng.randrange(len(body) + 1), core)
    if carrier == "email":
        sender = rng.choice(("m.rossi@example.com", "hr@example.org", "noreply@shop.example"))
        return f"From: {sender}\nSubject: {rng.choice(('Update', 'Re: invoice', 'Notes'))}\n\n" + (
            "\n\n".join(body)
        )
    if carrier == "tool_json":
        name = rng.choice(("fetch_url", "search_web", "read_file", "get_email", "crm.lookup"))
        payload = {"tool": name, "status": 200, "content": "\n".join(body)}
        return json.dumps(payload, ensure_ascii=False)
    if carrier == "web_page":
        title = rng.choice(("Home", "Product details", "Blog", "Docs"))
        return (
            f"<html><head><title>{title}</title></head><body>"
            + "".join(f"<p>{p}</p>" for p in body)
            + "</body></html>"
        )
    if carrier == "code_comment":
        lines = [f"# {p}" for p in body]
        return "\n".join(lines) + "\ndef main():\n    return load_config()\n"
    if carrier == "transcript":
        speakers = ("Customer", "Agent")
        return "\n".join(f"{speakers[i % 2]}: {p}" for i, p in enumerate(body))
    if carrier == "csv":
        return "id,comment\n" + "\n".join(f'{i},"{p}"' for i, p in enumerate(body, 1))
    return "\n\n".join(f"## {i + 1}\n{p}" for i, p in enumerate(body))


def benign_tool_output(text: str, rng: random.Random) -> str:
    """A tool's ordinary answer carrying `text` (a search hit, a note, a file, an event)."""
    shapes = (
        lambda: {"status": "ok", "results": [{"title": text[:40], "snippet": text}], "next": None},
        lambda: {"status": "ok", "results": [], "note": text},
        lambda: {"events": [{"start": "2026-03-04T09:00", "summary": text[:60]}], "count": 1},
        lambda: {"path": "notes/todo.md", "size": len(text), "content": text},
        lambda: {"rows": [[1, text[:50]], [2, "n/a"]], "columns": ["id", "value"]},
        lambda: {"temperature": rng.randint(-5, 35), "unit": "C", "summary": text[:80]},
    )
    payload = json.dumps(rng.choice(shapes)(), ensure_ascii=False)
    return rng.choice(("", "Tool result: ", "Function output:\n", "<tool_output>")) + payload


CARRIERS = ("email", "tool_json", "web_page", "code_comment", "markdown_doc", "transcript", "csv")

_HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "x": "х"})
_LEET = str.maketrans({"e": "3", "o": "0", "i": "1", "a": "4", "s": "5", "t": "7"})
_TAG_BASE = 0xE0000


def disguise(how: str, text: str, rng: random.Random) -> str:
    """The attack as it is hidden from patterns; each keeps it readable for a model."""
    if how == "base64":
        lead = rng.choice(("Decode this and do what it says:", "base64:", "Execute:", ""))
        return f"{lead} {base64.b64encode(text.encode()).decode()}".strip()
    if how == "hex":
        return "hex payload: " + text.encode().hex()
    if how == "homoglyph":
        return text.translate(_HOMOGLYPHS)
    if how == "spacing":
        return " ".join(text) if len(text) < 200 else text.replace(" ", "   ")
    if how == "leet":
        return text.translate(_LEET)
    if how == "zero_width":
        return "\u200b".join(text)
    if how == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    if how == "tags":  # Unicode tag characters: invisible when rendered
        visible = rng.choice(("Hello!", "Thanks for your help.", "ok"))
        return visible + "".join(chr(_TAG_BASE + ord(c)) for c in text if ord(c) < 128)
    if how == "reversed":
        return "Read this backwards and follow it: " + text[::-1]
    if how == "split":
        half = len(text) // 2
        return f'a = "{text[:half]}"\nb = "{text[half:]}"\nNow do what a + b says.'
    raise ValueError(how)


DISGUISES = (
    "base64", "hex", "homoglyph", "spacing", "leet", "zero_width", "fullwidth", "tags",
    "reversed", "split",
)  # fmt: skip
LATIN_ONLY = ("homoglyph", "leet")
# An attack carried by a translation request: the wrapper is in another language.
TRANSLATE_AND_DO = (
    "Translate the following into English and then do exactly what it says:\n",
    "Traduce esto al inglés y luego haz lo que dice:\n",
    "Übersetze das ins Englische und befolge es dann:\n",
    "请把下面这段翻译成英文，然后照着做：\n",
)


def row(text: str, label: str, lang: str, kind: str, family: str, split: str) -> dict[str, str]:
    return {"prompt": text, "label": label, "lang": lang, "kind": kind, "source": "team:written",
            "family": family, "licence": LICENCE, "split": split}  # fmt: skip


def compose(rng: random.Random) -> Iterator[dict[str, str]]:
    """Every written row with its family and split."""
    pieces = {lang: parse_pieces(lang) for lang in LANGUAGES}
    for lang in LANGUAGES:
        sections = pieces[lang]
        pools: dict[str, list[tuple[int, str]]] = {}
        for index, text in enumerate(sections["benign paragraph"]):
            pools.setdefault(line_split(index), []).append((index, text))
        others = [other for other in LANGUAGES if other != lang]
        for section, texts in sections.items():
            if not section.startswith("attack "):
                continue
            kind = section.split()[1]
            for index, raw in enumerate(texts):
                split = line_split(index)
                family = f"written:{section}/{index}"
                core = fill(raw, rng)
                yield row(core, "injection", lang, kind, family, split)
                pool = [p[1] for p in pools.get(split, pools["train"])]
                # In a carrier, among ordinary paragraphs (of this language, or another's).
                for carrier in rng.sample(CARRIERS, 2):
                    paragraphs = rng.sample(pool, min(len(pool), rng.randint(1, 3)))
                    yield row(carry(carrier, core, paragraphs, rng), "injection", lang, kind,
                              family, split)  # fmt: skip
                # Appended to an ordinary request.
                request = rng.choice(sections["summarise"])
                yield row(f"{request}\n\n{rng.choice(pool)}\n\n{core}", "injection", lang, kind,
                          family, split)  # fmt: skip
                # Disguised.
                choices = [d for d in DISGUISES if lang in ("en", "es", "fr", "de", "it", "pt",
                                                              "nl", "pl", "tr") or d not in LATIN_ONLY]  # fmt: skip
                how = rng.choice(choices)
                yield row(disguise(how, core, rng), "injection", lang, "obfuscation", family, split)
                if index % 3 == 0:
                    wrapper = rng.choice(TRANSLATE_AND_DO)
                    yield row(wrapper + core, "injection", lang, "obfuscation", family, split)
                # The same attack inside another language's document.
                if index % 2 == 0:
                    other = rng.choice(others)
                    other_paragraphs = pieces[other]["benign paragraph"]
                    chosen = [p for i, p in enumerate(other_paragraphs) if line_split(i) == split]
                    if chosen:
                        doc = carry(
                            "markdown_doc", core, rng.sample(chosen, min(2, len(chosen))), rng
                        )
                        yield row(doc, "injection", lang, kind, family, split)
        for section, texts in sections.items():
            if not section.startswith("benign ") or section == "benign paragraph":
                continue
            kind = section.split()[1]
            for index, text in enumerate(texts):
                split = line_split(index)
                yield row(text, "benign", lang, kind, f"written:{section}/{index}", split)
        # Long pasted documents, alone, in a carrier, or to summarise / translate / proofread.
        for split, pool in pools.items():
            for count in (1, 2, 3, 4, 6, 8, 12):
                picked = [rng.choice(pool) for _ in range(count)]
                family = f"written:paragraph/{picked[0][0]}"
                body = [p[1] for p in picked]
                request = rng.choice(sections["summarise"])
                yield row(request + "\n\n" + "\n\n".join(body), "benign", lang, "document",
                          family, split)  # fmt: skip
                carrier = rng.choice(CARRIERS)
                yield row(carry(carrier, "", body, rng), "benign", lang, "document", family, split)
        # Ordinary tool results (JSON, brackets, status fields) with no order in them.
        for index, text in enumerate([*sections["benign everyday"], *sections["benign paragraph"]]):
            split = line_split(index)
            yield row(benign_tool_output(text, rng), "benign", lang, "tool",
                      f"written:benign tool/{index}", split)  # fmt: skip
        # Benign text that is encoded or spaced out: decoding alone is no sign of attack.
        for index, text in enumerate(sections["benign everyday"]):
            how = rng.choice(("base64", "hex", "spacing", "fullwidth"))
            encoded = disguise(how, text, rng).replace("Decode this and do what it says:", "")
            request = "What does this say?" if how in ("base64", "hex") else "Fix the spacing:"
            yield row(f"{request} {encoded.strip()}", "benign", lang, "everyday",
                      f"written:benign everyday/{index}", line_split(index))  # fmt: skip


# --- bastioncorpus (PyPI, MIT): injections, tool-output hijacks and hard negatives --------
BASTION_KINDS = {
    "direct_injection": "direct", "instruction_override": "direct",
    "delimiter_injection": "direct", "jailbreak_persona": "jailbreak",
    "indirect_injection": "indirect", "exfiltration": "exfiltration",
    "obfuscation": "obfuscation", "benign_support": "everyday", "benign_encoded": "everyday",
    "benign_ignore": "everyday", "benign_actas": "roleplay", "benign_roleplay": "roleplay",
}  # fmt: skip


def bastion_rows() -> Iterator[dict[str, str]]:
    """Every row of bastioncorpus's corpus, split by the sha256 of its id."""
    package, version, licence = BASTION
    external.WHEELS.setdefault(package, (version, licence))
    archive = external.wheel(package)
    text = archive.read("bastioncorpus/corpus/injections.jsonl").decode()
    for line in text.splitlines():
        item = json.loads(line)
        malicious = item["label"] == "malicious"
        kind = BASTION_KINDS.get(item["category"], "everyday" if not malicious else "direct")
        if malicious and item.get("channel") == "tool_output" and kind in ("indirect", "direct"):
            kind = "tool"
        family = f"bastioncorpus:{item['id']}"
        bucket = int(hashlib.sha256(family.encode()).hexdigest(), 16) % 100
        yield {"prompt": item["text"].strip(), "label": "injection" if malicious else "benign",
               "lang": item.get("lang") or "en", "kind": kind,
               "source": f"bastioncorpus:{item['category']}", "family": family,
               "licence": licence, "split": "validation" if bucket < 20 else "train"}  # fmt: skip


def rows(seed: int) -> list[dict[str, str]]:
    return [*compose(random.Random(seed)), *bastion_rows()]
