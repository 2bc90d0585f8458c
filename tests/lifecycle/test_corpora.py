"""The offline corpora: deterministic, disjoint train/held-out splits of stdlib text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demigod.lifecycle.corpora import (
    HELD_OUT_EVERY,
    documentation_topics,
    load_corpus,
    split_documents,
    stdlib_sources,
)


@pytest.mark.parametrize("name", ["code", "prose"])
def test_split_is_deterministic_disjoint_and_capped(name: str) -> None:
    first = load_corpus(name, max_train_chars=300_000, max_held_out_chars=40_000)
    second = load_corpus(name, max_train_chars=300_000, max_held_out_chars=40_000)
    assert first == second
    assert first.train and first.held_out
    assert not set(first.train) & set(first.held_out)
    assert sum(map(len, first.train)) <= 300_000
    assert sum(map(len, first.held_out)) <= 40_000


def test_code_is_python_source_and_prose_is_english() -> None:
    code = load_corpus("code", max_train_chars=200_000, max_held_out_chars=20_000)
    prose = load_corpus("prose", max_train_chars=200_000, max_held_out_chars=20_000)
    assert sum("def " in document for document in code.train) > len(code.train) / 2
    words = prose.train_text().split()
    assert sum(word in {"the", "of", "is", "a", "to"} for word in words) > len(words) / 20


def test_prose_does_not_leak_into_code() -> None:
    # pydoc_data/topics.py is itself a stdlib module: it must not enter the code corpus.
    code = stdlib_sources()
    for topic in documentation_topics()[:5]:
        assert not any(topic[:200] in document for document in code)


def test_stdlib_sources_skip_tests_and_non_stdlib(tmp_path: Path) -> None:
    for relative in [
        "json/decoder.py",
        "os.py",
        "test/test_os.py",
        "unittest/tests/test_case.py",
        "idlelib/editor.py",
        "site-packages/thirdparty.py",
        "encodings/cp1252.py",
    ]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {relative}\n")
    (tmp_path / "latin1.py").write_bytes(b"# \xff not utf-8\n")
    assert sorted(stdlib_sources(tmp_path)) == ["# json/decoder.py\n", "# os.py\n"]


@given(st.lists(st.text(max_size=3), max_size=60))
def test_every_tenth_document_is_held_out(documents: list[str]) -> None:
    train, held_out = split_documents(documents)
    assert held_out == documents[HELD_OUT_EVERY - 1 :: HELD_OUT_EVERY]
    assert len(train) + len(held_out) == len(documents)


def test_unknown_corpus_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown corpus"):
        load_corpus("poetry", max_train_chars=1, max_held_out_chars=1)
