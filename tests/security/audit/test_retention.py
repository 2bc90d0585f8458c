"""Rotation and retention: old sealed segments are deleted whole, and what is left still
verifies, anchored by the checkpoint that sealed the removed records."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from demigod.security.audit import store
from demigod.security.audit.records import format_time, parse_time
from demigod.security.audit.signing import SigningKey
from demigod.security.audit.store import AuditLog
from demigod.security.audit.verify import verify_chain


def test_old_segments_are_pruned_and_the_rest_verifies(
    tmp_path: Path, signing_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = tmp_path / "chain"
    old = format_time(datetime.now(UTC) - timedelta(days=10))
    monkeypatch.setattr(store, "utc_now", lambda: old)
    log = AuditLog(chain, key=signing_key, rotate_bytes=4096, retention_days=7).open()
    for i in range(60):
        log.submit("request", {"i": i, "pad": "x" * 100}).result()
    monkeypatch.undo()
    for i in range(60, 70):
        log.submit("request", {"i": i, "pad": "x" * 100}).result()
    log.close()
    left = sorted(p.name for p in chain.glob("records-*.jsonl"))
    assert "records-000000000000.jsonl" not in left  # rotated by size, then pruned
    report = verify_chain(chain)
    assert report.ok, report.to_dict()
    assert report.first_seq is not None and report.first_seq > 0  # anchored by a checkpoint
    records = [json.loads(line) for p in sorted(chain.glob("records-*.jsonl"))
               for line in p.read_text().splitlines()]  # fmt: skip
    removed = [
        name for r in records if r["kind"] == "audit.retention"
        for name in r["data"]["removed_segments"]
    ]  # fmt: skip
    assert removed and not set(removed) & set(left)  # (older retention records aged out too)
    newest = [r["data"]["i"] for r in records if r["kind"] == "request"]
    assert newest[-10:] == list(range(60, 70))  # nothing within the period was removed


def test_a_second_writer_is_refused(tmp_path: Path, signing_key: SigningKey) -> None:
    first = AuditLog(tmp_path / "chain", key=signing_key).open()
    store.LOCK_WAIT_SECONDS, saved = 0.2, store.LOCK_WAIT_SECONDS
    try:
        with pytest.raises(store.AuditLogUnavailableError, match=r"own audit\.node"):
            AuditLog(tmp_path / "chain", key=signing_key).open()
    finally:
        store.LOCK_WAIT_SECONDS = saved
        first.close()


def test_a_generated_signing_key_is_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "deep" / "key.pem"
    key = SigningKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "GENERATED a new audit signing key" in caplog.text
    assert SigningKey.load_or_create(path).key_id == key.key_id  # reused, not regenerated


def test_rotation_reads_an_old_segment_from_its_end(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    """Pruning asks each old segment for its newest record's time at every rotation. It
    reads the segment's end, not all of it: reading whole 64 MiB segments grew the gateway
    by their size in the 30-minute soak (docs/benchmarks.md)."""
    log = AuditLog(tmp_path / "chain", key=signing_key).open()
    record = log.submit("request", {"i": 1}).result()
    log.close()
    [line] = (tmp_path / "chain" / "records-000000000000.jsonl").read_bytes().splitlines()
    segment = tmp_path / "records-000000000001.jsonl"
    with segment.open("wb") as out:
        for _ in range(16):  # 16 MiB of older lines, then the newest, then a torn tail
            out.write((b"x" * 1023 + b"\n") * 1024)
        out.write(line + b"\n" + b'{"seq": 99, "ti')
    tracemalloc.start()
    try:
        newest = store._last_record_time(segment)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert newest == parse_time(record.time)
    assert peak < 1024 * 1024, f"{peak} bytes traced to read one line of a 16 MiB segment"


@pytest.mark.parametrize(
    ("content", "last"),
    [
        (b"", None),
        (b"torn", None),
        (b"one\n", b"one"),
        (b"one\ntwo\n", b"two"),
        (b"one\ntwo\ntorn", b"two"),
        (b"a" * 50 + b"\n" + b"b" * 50 + b"\n", b"b" * 50),  # longer than a block
    ],
)
def test_the_last_complete_line(tmp_path: Path, content: bytes, last: bytes | None) -> None:
    path = tmp_path / "segment.jsonl"
    path.write_bytes(content)
    assert store._last_complete_line(path, block=8) == last
    assert store._last_complete_line(tmp_path / "missing.jsonl") is None
