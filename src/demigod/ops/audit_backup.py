"""The audit log, shipped as it is written, and put back after a loss.

Every chain file is append-only (records segments, `checkpoints.jsonl`) or written once
(public keys, TSA certificates), so a backup pass ships only the bytes appended since the
last pass, as one object per pass: `audit/<node>/<file>/<start>-<end>` (byte offsets, 16
digits). Only whole lines are shipped, so a torn tail never reaches the backup. The
checkpoints file is read before the records: a shipped checkpoint then never covers
records the same pass did not ship. A closed segment, or a file with many pieces, is
re-shipped as one object and its pieces deleted, keeping listings short.

Restore reassembles each file, drops checkpoints that seal records the backup lacks, and
appends an `audit.restore` record to every chain: the chain continues from the last
restored record, and the gap (records written after it but never shipped) is on the
record, never a silent fork.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demigod.config import Settings
from demigod.ops.backup_target import BackupError, BackupTarget
from demigod.security.audit.checkpoints import Checkpoint, CheckpointFormatError
from demigod.security.audit.layout import (
    CHECKPOINTS_FILE,
    PUBLIC_KEYS_DIR,
    TSA_CERTS_DIR,
    find_chains,
    list_segments,
)
from demigod.security.audit.records import AuditRecord, RecordFormatError
from demigod.security.audit.store import AuditLog

AUDIT_PREFIX = "audit/"
RESTORE_KIND = "audit.restore"
# A file shipped in more pieces than this is re-shipped whole (one object to list and read).
COMPACT_AFTER_PIECES = 256
_PIECE = re.compile(r"^audit/(?P<node>[^/]+)/(?P<file>.+)/(?P<start>\d{16})-(?P<end>\d{16})$")


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of one chain file, stored under `key`."""

    start: int
    end: int
    key: str


def piece_key(node: str, file: str, start: int, end: int) -> str:
    return f"{AUDIT_PREFIX}{node}/{file}/{start:016d}-{end:016d}"


def stored_pieces(target: BackupTarget) -> dict[tuple[str, str], list[Piece]]:
    """Every shipped piece, by (node, file), in offset order."""
    pieces: dict[tuple[str, str], list[Piece]] = defaultdict(list)
    for key in target.keys(AUDIT_PREFIX):
        match = _PIECE.match(key)
        if match:
            piece = Piece(int(match["start"]), int(match["end"]), key)
            pieces[(match["node"], match["file"])].append(piece)
    for found in pieces.values():
        found.sort(key=lambda p: (p.start, -p.end))
    return dict(pieces)


def shipped_end(pieces: list[Piece]) -> int:
    """How far the contiguous pieces from offset 0 reach."""
    end = 0
    for piece in pieces:
        if piece.start <= end:
            end = max(end, piece.end)
    return end


class AuditShipper:
    """Ships every chain under `audit_root` (one folder per node) to `target`."""

    def __init__(self, audit_root: Path, target: BackupTarget) -> None:
        self.audit_root = audit_root
        self.target = target
        self._pieces: dict[tuple[str, str], list[Piece]] | None = None

    def ship(self) -> int:
        """One pass: ship what was appended since the last; returns the bytes shipped.
        Raises BackupError when the target refuses a write (the next pass retries)."""
        if self._pieces is None:  # first pass (or after a restart): resume from the target
            self._pieces = stored_pieces(self.target)
        shipped = 0
        for chain in find_chains(self.audit_root):
            if chain == self.audit_root:
                continue  # chains live in node folders; a bare folder is not a gateway's
            shipped += self._ship_chain(chain)
        return shipped

    def _ship_chain(self, chain: Path) -> int:
        node = chain.name
        # Checkpoints first: anything they seal is already in the records read after.
        checkpoints_end = _whole_lines_end(
            chain / CHECKPOINTS_FILE, self._end(node, CHECKPOINTS_FILE)
        )
        shipped = 0
        segments = list_segments(chain)
        for index, (_, path) in enumerate(segments):
            closed = index < len(segments) - 1
            shipped += self._ship_file(node, path.name, path, None, closed=closed)
        for folder in (PUBLIC_KEYS_DIR, TSA_CERTS_DIR):
            for path in sorted((chain / folder).glob("*.pem")):
                shipped += self._ship_file(node, f"{folder}/{path.name}", path, None, closed=True)
        shipped += self._ship_file(
            node, CHECKPOINTS_FILE, chain / CHECKPOINTS_FILE, checkpoints_end, closed=False
        )
        return shipped

    def _end(self, node: str, file: str) -> int:
        assert self._pieces is not None
        return shipped_end(self._pieces.get((node, file), []))

    def _ship_file(self, node: str, file: str, path: Path, end: int | None, *, closed: bool) -> int:
        assert self._pieces is not None
        pieces = self._pieces.setdefault((node, file), [])
        start = shipped_end(pieces)
        if end is None:
            end = _whole_lines_end(path, start) if path.suffix == ".jsonl" else _size(path)
        if end < start:
            raise BackupError(
                f"audit file {path} is shorter ({end} bytes) than what was shipped ({start}): "
                "it was replaced, not appended to; move the old backup aside"
            )
        if end > start:
            data = _read(path, start, end)
            key = piece_key(node, file, start, end)
            self.target.put_bytes(key, data)
            pieces.append(Piece(start, end, key))
        if len(pieces) > COMPACT_AFTER_PIECES or (closed and len(pieces) > 1):
            self._compact(node, file, path, pieces)
        return end - start

    def _compact(self, node: str, file: str, path: Path, pieces: list[Piece]) -> None:
        end = shipped_end(pieces)
        whole = Piece(0, end, piece_key(node, file, 0, end))
        self.target.put_bytes(whole.key, _read(path, 0, end))
        for piece in pieces:
            if piece.key != whole.key:
                self.target.delete(piece.key)
        pieces[:] = [whole]


@dataclass(frozen=True)
class RestoredChain:
    """One chain as the backup had it."""

    node: str
    directory: Path
    last_seq: int | None
    last_hash: str | None
    last_time: str | None
    dropped_checkpoints: int

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "directory": str(self.directory),
            "last_seq": self.last_seq,
            "last_time": self.last_time,
            "dropped_checkpoints": self.dropped_checkpoints,
        }


def restore_chains(target: BackupTarget, audit_root: Path) -> list[RestoredChain]:
    """Write every backed-up chain under `audit_root` (which must hold none of them).
    Raises BackupError when a chain folder already has files or a file has a hole."""
    files: dict[str, dict[str, list[Piece]]] = defaultdict(dict)
    for (node, file), pieces in stored_pieces(target).items():
        files[node][file] = pieces
    restored = []
    for node, chain_files in sorted(files.items()):
        directory = audit_root / node
        if directory.exists() and any(directory.iterdir()):
            raise BackupError(f"{directory} is not empty: restore into a fresh data dir")
        for file, pieces in chain_files.items():
            path = directory / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_assemble(target, pieces, f"{node}/{file}"))
        restored.append(_trim_checkpoints(node, directory))
    return restored


def record_gap(settings: Settings, chain: RestoredChain, details: dict[str, Any]) -> AuditRecord:
    """Append the `audit.restore` record to the restored chain (signed into a checkpoint
    when the log closes): the chain continues from `chain.last_seq`, and the record says
    what may be missing after it. `settings` name the restored data dir and signing key."""
    audit = AuditLog.from_settings(settings, node=chain.node).open()
    try:
        return audit.submit(
            RESTORE_KIND,
            {
                "restored_through_seq": chain.last_seq,
                "restored_through_hash": chain.last_hash,
                "last_restored_record_time": chain.last_time,
                "dropped_checkpoints": chain.dropped_checkpoints,
                "gap": "records written after the last restored one and not yet shipped "
                "when the primary was lost are missing; the chain continues here",
                **details,
            },
        ).result(timeout=30)
    finally:
        audit.close()


def _assemble(target: BackupTarget, pieces: list[Piece], name: str) -> bytes:
    data = bytearray()
    for piece in pieces:
        if piece.end <= len(data):
            continue  # covered by a larger piece (a compaction raced a deletion)
        if piece.start > len(data):
            raise BackupError(f"audit file {name}: bytes {len(data)}..{piece.start} are missing")
        data += target.get_bytes(piece.key)[len(data) - piece.start :]
    return bytes(data)


def _trim_checkpoints(node: str, directory: Path) -> RestoredChain:
    """Drop checkpoints sealing records past the last restored one (possible only when a
    pass was cut between its records and its checkpoints)."""
    last: AuditRecord | None = None
    for _, segment in reversed(list_segments(directory)):  # a new segment may be empty
        if lines := segment.read_bytes().splitlines():
            try:
                last = AuditRecord.from_line(lines[-1])
            except RecordFormatError as exc:
                raise BackupError(f"{segment}: last record unreadable: {exc}") from exc
            break
    checkpoints_path = directory / CHECKPOINTS_FILE
    dropped = 0
    if checkpoints_path.is_file():
        kept: list[bytes] = []
        for line in checkpoints_path.read_bytes().splitlines():
            try:
                covered = Checkpoint.from_line(line).last_seq
            except CheckpointFormatError:
                covered = -1  # verify names it; nothing to decide here
            if last is not None and covered > last.seq:
                dropped += 1
            else:
                kept.append(line + b"\n")
        checkpoints_path.write_bytes(b"".join(kept))
    return RestoredChain(
        node=node,
        directory=directory,
        last_seq=None if last is None else last.seq,
        last_hash=None if last is None else last.hash,
        last_time=None if last is None else last.time,
        dropped_checkpoints=dropped,
    )


def _whole_lines_end(path: Path, start: int) -> int:
    """The offset just past the last newline at or after `start` (start when none)."""
    try:
        tail = _read(path, start, None)
    except FileNotFoundError:
        return start
    return start + tail.rfind(b"\n") + 1


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read(path: Path, start: int, end: int | None) -> bytes:
    with path.open("rb") as handle:
        handle.seek(start)
        return handle.read() if end is None else handle.read(end - start)
