"""Text corpora that every Python installation carries, for training the demo models offline.

`code`: the standard library's own `.py` sources. `prose`: the English documentation topics
shipped in `pydoc_data` (what `help("if")` prints). Each is split deterministically into a
training part and a held-out part, so a model can be evaluated on text it never saw.
"""

from __future__ import annotations

import hashlib
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# GPT-NeoX's end-of-text token; written between documents so the models learn where one
# ends, and tokenized as that single special token by the perplexity and training code.
DOCUMENT_SEPARATOR = "<|endoftext|>"

# Every HELD_OUT_EVERY-th document (in the corpus' fixed order) is held out for evaluation.
HELD_OUT_EVERY = 10

# Standard-library directories that are not representative source code (test suites carry
# huge generated data files) or are not the standard library at all.
_SKIPPED_DIRS = frozenset(
    {"test", "tests", "idlelib", "site-packages", "dist-packages", "encodings", "pydoc_data"}
)

CORPUS_NAMES = ("code", "prose")

# Documentation topics are cut into passages of about this many characters (see below).
PASSAGE_CHARS = 2000


@dataclass(frozen=True)
class Corpus:
    """A named corpus split into training and held-out documents."""

    name: str
    train: tuple[str, ...]
    held_out: tuple[str, ...]

    def train_text(self) -> str:
        """The training documents, joined by DOCUMENT_SEPARATOR."""
        return DOCUMENT_SEPARATOR.join(self.train)

    def held_out_text(self) -> str:
        """The held-out documents, joined by DOCUMENT_SEPARATOR."""
        return DOCUMENT_SEPARATOR.join(self.held_out)


def load_corpus(name: str, max_train_chars: int, max_held_out_chars: int) -> Corpus:
    """Load corpus `name` ("code" or "prose"), capping each part's total size in characters.

    Duplicates are dropped; documents are taken whole, in a fixed order, while they fit
    the cap, so the same Python version always yields the same corpus. Raises ValueError
    for an unknown name.
    """
    if name == "code":
        documents = stdlib_sources()
    elif name == "prose":
        documents = documentation_topics()
    else:
        raise ValueError(f"unknown corpus {name!r}; choose one of {', '.join(CORPUS_NAMES)}")
    # Identical documents (repeated doc sections, boilerplate modules) would leak
    # held-out text into training: keep each one once, at its first place.
    train, held_out = split_documents(dict.fromkeys(documents))
    return Corpus(
        name=name,
        train=_cap(train, max_train_chars),
        held_out=_cap(held_out, max_held_out_chars),
    )


def split_documents(documents: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split into (train, held_out): every HELD_OUT_EVERY-th document is held out."""
    train: list[str] = []
    held_out: list[str] = []
    for index, document in enumerate(documents):
        (held_out if index % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 else train).append(document)
    return train, held_out


def stdlib_sources(stdlib: Path | None = None) -> list[str]:
    """The standard library's `.py` files (tests, idlelib and site-packages excluded).

    Files are ordered by a hash of their relative path: fixed, yet spread over the whole
    library, so a size cap still yields a varied sample. Undecodable files are skipped.
    """
    root = stdlib if stdlib is not None else Path(sysconfig.get_paths()["stdlib"])
    relative_paths = [
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if path.is_file() and not _SKIPPED_DIRS.intersection(path.relative_to(root).parts[:-1])
    ]
    relative_paths.sort(key=lambda rel: hashlib.sha256(rel.encode()).hexdigest())
    documents: list[str] = []
    for rel in relative_paths:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip():
            documents.append(text)
    return documents


def documentation_topics() -> list[str]:
    """The English documentation topics of `pydoc_data`, cut into passages.

    Topics come in sorted order, each cut at paragraph breaks into passages of at least
    PASSAGE_CHARS characters: the 79 topics are too few, and too uneven in size, to hold
    every tenth one out.
    """
    from pydoc_data.topics import topics

    passages: list[str] = []
    for key in sorted(topics):
        passages.extend(_passages(topics[key]))
    return passages


def _passages(text: str) -> list[str]:
    passages: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        current = f"{current}\n\n{paragraph}" if current else paragraph
        if len(current) >= PASSAGE_CHARS:
            passages.append(current)
            current = ""
    if current.strip():
        passages.append(current)
    return [passage for passage in passages if passage.strip()]


def _cap(documents: list[str], max_chars: int) -> tuple[str, ...]:
    kept: list[str] = []
    total = 0
    for document in documents:
        if total + len(document) > max_chars:
            continue  # a later, shorter document may still fit
        kept.append(document)
        total += len(document)
    return tuple(kept)
