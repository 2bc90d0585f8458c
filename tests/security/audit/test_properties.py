"""Properties of the hash chain and the Merkle tree (hypothesis)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from demigod.security.audit.merkle import (
    inclusion_proof,
    merkle_root,
    verify_inclusion,
)
from demigod.security.audit.records import GENESIS_HASH, canonical_json, chain_record
from demigod.security.audit.verify import verify_chain

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
record_data = st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=4)


def write(folder: Path, lines: list[bytes]) -> Path:
    (folder / "records-000000000000.jsonl").write_bytes(b"".join(lines))
    return folder


def build(datas: list[dict]) -> list[bytes]:  # type: ignore[type-arg]
    prev, lines = GENESIS_HASH, []
    for seq, data in enumerate(datas):
        record = chain_record(seq, prev, "request", data, "2026-11-26T12:00:00.000000Z")
        lines.append(record.to_line())
        prev = record.hash
    return lines


@settings(max_examples=60, deadline=None)
@given(
    st.lists(record_data, min_size=2, max_size=12),
    st.data(),
)
def test_any_single_record_change_is_detected_there(datas: list[dict], data: st.DataObject) -> None:  # type: ignore[type-arg]
    lines = build(datas)
    index = data.draw(st.integers(0, len(lines) - 1))
    field = data.draw(st.sampled_from(["data", "time", "kind", "seq", "prev"]))
    record = json.loads(lines[index])
    replacement = {
        "data": data.draw(record_data.filter(lambda d: d != record["data"])),
        "time": "2026-11-26T12:00:01.000000Z",
        "kind": "forged",
        "seq": record["seq"] + 100,
        "prev": "f" * 64,
    }[field]
    record[field] = replacement
    lines[index] = canonical_json(record) + b"\n"
    with tempfile.TemporaryDirectory() as folder:
        report = verify_chain(write(Path(folder), lines))
    assert not report.ok
    assert report.first_bad is not None and report.first_bad.seq == index


@settings(max_examples=40, deadline=None)
@given(st.lists(record_data, min_size=3, max_size=12), st.data())
def test_any_deletion_or_swap_is_detected_at_the_first_moved_record(
    datas: list[dict],
    data: st.DataObject,  # type: ignore[type-arg]
) -> None:
    lines = build(datas)
    i = data.draw(st.integers(0, len(lines) - 2))
    if data.draw(st.booleans()):
        del lines[i]
    else:
        j = data.draw(st.integers(i + 1, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    with tempfile.TemporaryDirectory() as folder:
        report = verify_chain(write(Path(folder), lines))
    assert report.first_bad is not None and report.first_bad.seq == i


leaves = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40)


@given(leaves, st.data())
def test_every_leaf_has_an_inclusion_proof(items: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(items)
    index = data.draw(st.integers(0, len(items) - 1))
    proof = inclusion_proof(items, index)
    assert verify_inclusion(items[index], index, len(items), proof, root)
    other = bytes(b ^ 1 for b in items[index])
    assert not verify_inclusion(other, index, len(items), proof, root)


@given(leaves, st.data())
def test_changing_any_leaf_changes_the_root(items: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    changed = list(items)
    changed[index] = bytes(b ^ 0x80 for b in items[index])
    assert merkle_root(changed) != merkle_root(items)
    assert merkle_root(items[:-1]) != merkle_root(items) if len(items) > 1 else True
