"""Shipping the audit log as it is written, and restoring it: the restored chain verifies,
continues from the last shipped record, and says so in an `audit.restore` record."""

from __future__ import annotations

from pathlib import Path

import pytest

from demigod.config import Settings
from demigod.ops import audit_backup
from demigod.ops.audit_backup import AuditShipper, record_gap, restore_chains, stored_pieces
from demigod.ops.backup_target import BackupTarget, DirectoryTarget
from demigod.ops.state_files import StateShipper, restore_state
from demigod.security.audit.layout import CHECKPOINTS_FILE, list_segments
from demigod.security.audit.records import AuditRecord
from demigod.security.audit.store import AuditLog, audit_root
from demigod.security.audit.verify import verify_directory

NODE = "gw-1"


def _settings(data_dir: Path, **audit: object) -> Settings:
    return Settings(data_dir=data_dir, audit={"checkpoint_every_records": 5, **audit})


def _write(settings: Settings, first: int, count: int) -> None:
    log = AuditLog.from_settings(settings, node=NODE).open()
    try:
        for i in range(first, first + count):
            log.submit("request", {"request_id": f"r{i}"}).result(timeout=10)
    finally:
        log.close()


def _records(settings: Settings) -> list[AuditRecord]:
    chain = audit_root(settings) / NODE
    return [
        AuditRecord.from_line(line)
        for _, path in list_segments(chain)
        for line in path.read_bytes().splitlines()
    ]


def _restore(target: BackupTarget, settings: Settings) -> list[audit_backup.RestoredChain]:
    restore_state(settings, target)  # the signing key: the chain keeps its signer
    chains = restore_chains(target, audit_root(settings))
    for chain in chains:
        record_gap(settings, chain, {"backup": target.description})
    return chains


def test_a_restored_chain_verifies_and_records_the_gap(tmp_path: Path) -> None:
    primary = _settings(tmp_path / "primary")
    target = DirectoryTarget(tmp_path / "backup")
    shipper, state = AuditShipper(audit_root(primary), target), StateShipper(primary, target)
    _write(primary, 0, 7)
    assert shipper.ship() > 0
    state.ship()
    _write(primary, 7, 6)
    assert shipper.ship() > 0  # only what was appended: a second piece
    _write(primary, 13, 3)  # never shipped: lost with the host

    restored = _settings(tmp_path / "restored")
    chains = _restore(target, restored)

    # 13 request records + a gateway-less log's records; the last 3 requests are gone.
    ids = [r.data.get("request_id") for r in _records(restored)]
    assert ids[:13] == [f"r{i}" for i in range(13)]
    assert "r13" not in ids
    gap = _records(restored)[-1]
    assert gap.kind == "audit.restore"
    assert gap.data["restored_through_seq"] == chains[0].last_seq == 12
    assert gap.prev == _records(restored)[-2].hash  # continues the chain, no fork
    reports = verify_directory(audit_root(restored))
    assert [r.ok for r in reports] == [True], [p.reason for r in reports for p in r.problems]

    _write(restored, 100, 2)  # the gateway then carries on appending
    assert verify_directory(audit_root(restored))[0].ok


def test_a_torn_tail_is_never_shipped(tmp_path: Path) -> None:
    primary = _settings(tmp_path / "primary")
    target = DirectoryTarget(tmp_path / "backup")
    _write(primary, 0, 3)
    segment = list_segments(audit_root(primary) / NODE)[-1][1]
    with segment.open("ab") as handle:
        handle.write(b'{"seq":3,"half a rec')
    AuditShipper(audit_root(primary), target).ship()
    pieces = stored_pieces(target)[(NODE, segment.name)]
    assert pieces[-1].end == segment.stat().st_size - len(b'{"seq":3,"half a rec')


def test_pieces_are_compacted_and_still_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_backup, "COMPACT_AFTER_PIECES", 3)
    primary = _settings(tmp_path / "primary", rotate_bytes=4096)
    target = DirectoryTarget(tmp_path / "backup")
    shipper, state = AuditShipper(audit_root(primary), target), StateShipper(primary, target)
    state.ship()
    for batch in range(8):
        _write(primary, batch * 5, 5)
        shipper.ship()
    segments = list_segments(audit_root(primary) / NODE)
    assert len(segments) > 1, "rotate_bytes should have closed a segment"
    pieces = stored_pieces(target)
    closed = segments[0][1].name
    assert [(p.start, p.end) for p in pieces[(NODE, closed)]] == [
        (0, segments[0][1].stat().st_size)
    ]
    assert all(len(found) <= 3 for found in pieces.values())

    restored = _settings(tmp_path / "restored")
    _restore(target, restored)
    assert [r.data.get("request_id") for r in _records(restored)][:40] == [
        f"r{i}" for i in range(40)
    ]
    assert verify_directory(audit_root(restored))[0].ok


def test_a_checkpoint_sealing_unshipped_records_is_dropped(tmp_path: Path) -> None:
    primary = _settings(tmp_path / "primary")
    target = DirectoryTarget(tmp_path / "backup")
    shipper, state = AuditShipper(audit_root(primary), target), StateShipper(primary, target)
    _write(primary, 0, 5)
    shipper.ship()
    state.ship()
    _write(primary, 5, 5)
    # A pass cut after the checkpoints piece but before the records piece.
    checkpoints = audit_root(primary) / NODE / CHECKPOINTS_FILE
    start = stored_pieces(target)[(NODE, CHECKPOINTS_FILE)][-1].end
    data = checkpoints.read_bytes()
    target.put_bytes(audit_backup.piece_key(NODE, CHECKPOINTS_FILE, start, len(data)), data[start:])

    restored = _settings(tmp_path / "restored")
    chains = _restore(target, restored)
    assert chains[0].dropped_checkpoints == 1
    assert _records(restored)[-1].data["dropped_checkpoints"] == 1
    assert verify_directory(audit_root(restored))[0].ok


def test_restore_refuses_a_chain_that_exists(tmp_path: Path) -> None:
    primary = _settings(tmp_path / "primary")
    target = DirectoryTarget(tmp_path / "backup")
    _write(primary, 0, 2)
    AuditShipper(audit_root(primary), target).ship()
    with pytest.raises(audit_backup.BackupError, match="not empty"):
        restore_chains(target, audit_root(primary))
