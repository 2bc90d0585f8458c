"""Offline verification of a chain: records, hash links, checkpoints, signatures, timestamps.

Every problem is named by the first record it makes untrustworthy (its seq); the report's
`first_bad` is the lowest. What cannot be detected from the files alone: records appended
after the last checkpoint and then removed (the unsealed tail), and checkpoints removed
from the end together with their records; export checkpoints regularly (docs/audit.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from demigod.security.audit.checkpoints import (
    Checkpoint,
    CheckpointFormatError,
    root_hex,
    timestamp_digest,
)
from demigod.security.audit.layout import (
    CHECKPOINTS_FILE,
    PUBLIC_KEYS_DIR,
    find_chains,
    list_segments,
)
from demigod.security.audit.records import (
    GENESIS_HASH,
    AuditRecord,
    RecordFormatError,
    parse_time,
)
from demigod.security.audit.signing import (
    SigningKeyError,
    key_id,
    load_public_key,
    verify_signature,
)
from demigod.security.audit.timestamping import TimestampError, verify_token

MAX_PROBLEMS = 100
# A TSA's genTime further than this from the checkpoint's own time is worth a warning.
TIMESTAMP_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class Problem:
    reason: str
    seq: int | None = None
    checkpoint: int | None = None
    severity: Literal["error", "warning"] = "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "checkpoint": self.checkpoint,
            "severity": self.severity,
            "reason": self.reason,
        }


@dataclass
class ChainReport:
    directory: Path
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    timestamped: int = 0
    sealed_through: int = -1
    keys_pinned: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def first_bad(self) -> Problem | None:
        """The error at the lowest record seq (checkpoint errors without a seq last)."""
        errors = self.errors
        if not errors:
            return None
        return min(errors, key=lambda p: (p.seq is None, p.seq or 0))

    def to_dict(self) -> dict[str, Any]:
        first = self.first_bad
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "checkpoints": self.checkpoints,
            "timestamped": self.timestamped,
            "sealed_through": self.sealed_through,
            "unsealed": 0 if self.last_seq is None else self.last_seq - self.sealed_through,
            "keys_pinned": self.keys_pinned,
            "first_bad": None if first is None else first.to_dict(),
            "problems": [p.to_dict() for p in self.problems],
        }


class _Collector:
    def __init__(self, report: ChainReport) -> None:
        self.report = report

    def error(self, reason: str, seq: int | None = None, checkpoint: int | None = None) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(Problem(reason, seq, checkpoint))

    def warning(self, reason: str, seq: int | None = None, checkpoint: int | None = None) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(Problem(reason, seq, checkpoint, "warning"))


def _read_records(directory: Path, out: _Collector) -> dict[int, AuditRecord]:
    """Walk the segments in order, checking sequence numbers, hashes and links."""
    records: dict[int, AuditRecord] = {}
    expected: int | None = None
    prev: AuditRecord | None = None
    for _, path in list_segments(directory):
        data = path.read_bytes()
        lines = data.split(b"\n")
        torn = lines.pop()  # after the last newline: empty unless the tail is torn
        for number, line in enumerate(lines, start=1):
            where = f"{path.name}:{number}"
            seq_here = 0 if expected is None else expected
            try:
                record = AuditRecord.from_line(line)
            except RecordFormatError as exc:
                out.error(f"record {seq_here} ({where}) is unreadable: {exc}", seq_here)
                expected, prev = seq_here + 1, None
                continue
            if expected is not None and record.seq != expected:
                if record.seq > expected:
                    out.error(
                        f"expected record {expected} at {where}, found record {record.seq}: "
                        f"record(s) {expected}..{record.seq - 1} deleted or moved",
                        expected,
                    )
                else:
                    out.error(
                        f"record {record.seq} at {where} is out of order (after record "
                        f"{expected - 1})",
                        record.seq,
                    )
            if record.computed_hash() != record.hash:
                out.error(f"record {record.seq} ({where}) was altered: hash mismatch", record.seq)
            elif prev is not None and record.seq == prev.seq + 1 and record.prev != prev.hash:
                out.error(
                    f"record {record.seq} ({where}) does not link to record {prev.seq}: "
                    "chain broken",
                    record.seq,
                )
            if record.seq in records:
                out.error(f"record {record.seq} ({where}) appears twice", record.seq)
            else:
                records[record.seq] = record
            expected = max(expected or 0, record.seq + 1)
            prev = record
        if torn:
            seq_here = 0 if expected is None else expected
            out.error(f"{path.name} ends with a torn, unterminated line", seq_here)
    return records


def _public_key(
    directory: Path, wanted: str, pinned: dict[str, Ed25519PublicKey] | None
) -> Ed25519PublicKey | None:
    if pinned is not None:
        return pinned.get(wanted)
    path = directory / PUBLIC_KEYS_DIR / f"{wanted}.pem"
    try:
        key = load_public_key(path.read_bytes())
    except (OSError, SigningKeyError):
        return None
    return key if key_id(key) == wanted else None


def verify_chain(
    directory: Path,
    *,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
    trusted_tsa: Sequence[x509.Certificate] = (),
    require_timestamps: bool = False,
) -> ChainReport:
    """Check one chain folder. `public_keys` pins the checkpoint keys (else the keys stored
    beside the log are used, with a warning); `trusted_tsa` pins the TSA certificates."""
    report = ChainReport(directory, keys_pinned=public_keys is not None)
    out = _Collector(report)
    records = _read_records(directory, out)
    report.records = len(records)
    if records:
        report.first_seq, report.last_seq = min(records), max(records)
    checkpoints = _read_checkpoints(directory, out)
    report.checkpoints = len(checkpoints)
    pinned = None if public_keys is None else {key_id(key): key for key in public_keys}
    if pinned is None and checkpoints:
        out.warning(
            "checkpoint signatures were checked with the public keys stored beside the log; "
            "pin the published key with --public-key"
        )
    previous: Checkpoint | None = None
    for checkpoint in checkpoints:
        _check_checkpoint(checkpoint, previous, records, directory, pinned, out)
        if checkpoint.timestamp_token is not None:
            _check_timestamp(checkpoint, trusted_tsa, out)
            report.timestamped += 1
        elif require_timestamps:
            out.error(
                f"checkpoint {checkpoint.index} has no RFC 3161 timestamp"
                + (f" ({checkpoint.timestamp_error})" if checkpoint.timestamp_error else ""),
                checkpoint.first_seq,
                checkpoint.index,
            )
        elif checkpoint.timestamp_error:
            out.warning(
                f"checkpoint {checkpoint.index} was not timestamped: {checkpoint.timestamp_error}",
                checkpoint.first_seq,
                checkpoint.index,
            )
        previous = checkpoint
    report.sealed_through = previous.last_seq if previous else -1
    _check_start(records, checkpoints, out)
    if report.last_seq is not None and report.last_seq > report.sealed_through:
        out.warning(
            f"records {report.sealed_through + 1}..{report.last_seq} are not sealed by a "
            "checkpoint yet (their removal would not be detected)",
            report.sealed_through + 1,
        )
    return report


def _read_checkpoints(directory: Path, out: _Collector) -> list[Checkpoint]:
    path = directory / CHECKPOINTS_FILE
    if not path.is_file():
        return []
    checkpoints: list[Checkpoint] = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines.pop():
        out.error(f"{CHECKPOINTS_FILE} ends with a torn, unterminated line")
    for number, line in enumerate(lines, start=1):
        try:
            checkpoints.append(Checkpoint.from_line(line))
        except CheckpointFormatError as exc:
            seq = checkpoints[-1].last_seq + 1 if checkpoints else 0
            out.error(f"{CHECKPOINTS_FILE}:{number} is unreadable: {exc}", seq, number - 1)
    return checkpoints


def _check_checkpoint(
    checkpoint: Checkpoint,
    previous: Checkpoint | None,
    records: dict[int, AuditRecord],
    directory: Path,
    pinned: dict[str, Ed25519PublicKey] | None,
    out: _Collector,
) -> None:
    index, first, last = checkpoint.index, checkpoint.first_seq, checkpoint.last_seq
    name = f"checkpoint {index} (records {first}..{last})"
    expected_index = 0 if previous is None else previous.index + 1
    if index != expected_index:
        out.error(f"{name}: expected checkpoint {expected_index} here", first, index)
    expected_prev = GENESIS_HASH if previous is None else previous.checkpoint_hash()
    if checkpoint.prev_checkpoint != expected_prev:
        out.error(f"{name} does not link to the checkpoint before it", first, index)
    expected_first = 0 if previous is None else previous.last_seq + 1
    if first > expected_first:
        out.error(
            f"records {expected_first}..{first - 1} are not covered by any checkpoint (one "
            f"was removed before {name})",
            expected_first,
            index,
        )
    elif first < expected_first or last < first:
        out.error(f"{name} overlaps the checkpoint before it", first, index)
    key = _public_key(directory, checkpoint.key_id, pinned)
    if key is None:
        out.error(f"{name}: no trusted public key with id {checkpoint.key_id}", first, index)
    else:
        try:
            valid = verify_signature(key, checkpoint.signature_bytes(), checkpoint.payload_bytes())
        except ValueError:
            valid = False
        if not valid:
            out.error(f"{name}: signature does not verify (forged or altered)", first, index)
    present = [seq for seq in range(first, last + 1) if seq in records]
    if not present:
        return  # pruned by retention (the start anchor is checked separately)
    if len(present) != last - first + 1:
        missing = next(seq for seq in range(first, last + 1) if seq not in records)
        end = max(records)
        if missing > end:
            out.error(
                f"the log ends at record {end} but {name} covers up to {last}: records "
                f"{missing}..{last} were truncated",
                missing,
                index,
            )
        else:
            out.error(f"record {missing} is missing from {name}", missing, index)
        return
    hashes = [records[seq].hash for seq in range(first, last + 1)]
    if root_hex(hashes) != checkpoint.merkle_root or hashes[-1] != checkpoint.last_record_hash:
        # The chain links may have been recomputed; the signed root is what catches it.
        out.error(f"records {first}..{last} do not match the signed root of {name}", first, index)


def _check_timestamp(
    checkpoint: Checkpoint, trusted: Sequence[x509.Certificate], out: _Collector
) -> None:
    name = f"checkpoint {checkpoint.index}"
    try:
        token = checkpoint.token_bytes()
        assert token is not None
        stamp = verify_token(token, timestamp_digest(checkpoint.signature_bytes()), trusted=trusted)
    except (TimestampError, ValueError) as exc:
        out.error(f"{name}: timestamp invalid: {exc}", checkpoint.first_seq, checkpoint.index)
        return
    if abs(stamp.gen_time - parse_time(checkpoint.time)) > TIMESTAMP_SKEW:
        out.warning(
            f"{name}: TSA time {stamp.gen_time.isoformat()} is far from the checkpoint's "
            f"own time {checkpoint.time}",
            checkpoint.first_seq,
            checkpoint.index,
        )
    if not trusted:
        out.warning(
            f"{name}: TSA certificate not pinned (pass --tsa-cert)",
            checkpoint.first_seq,
            checkpoint.index,
        )


def _check_start(
    records: dict[int, AuditRecord], checkpoints: list[Checkpoint], out: _Collector
) -> None:
    """The first record present links to the genesis, or to a checkpoint that sealed the
    records retention removed before it."""
    if not records:
        if checkpoints:
            out.error(
                f"no records left, but checkpoints cover records up to "
                f"{checkpoints[-1].last_seq}: records 0..{checkpoints[-1].last_seq} missing",
                checkpoints[0].first_seq,
            )
        return
    first = records[min(records)]
    if first.seq == 0:
        if first.prev != GENESIS_HASH:
            out.error("record 0 does not start the chain (prev is not the genesis)", 0)
        return
    anchor = next((c for c in checkpoints if c.last_seq == first.seq - 1), None)
    if anchor is None or anchor.last_record_hash != first.prev:
        out.error(
            f"records 0..{first.seq - 1} are missing and no checkpoint anchors record {first.seq}",
            0 if anchor is None else first.seq,
        )


def verify_directory(directory: Path, **options: Any) -> list[ChainReport]:
    """Every chain under `directory` (itself, or its node subfolders)."""
    return [verify_chain(chain, **options) for chain in find_chains(directory)]


def reports_json(reports: list[ChainReport]) -> str:
    return json.dumps(
        {
            "ok": all(r.ok for r in reports) and bool(reports),
            "chains": [r.to_dict() for r in reports],
        },
        indent=2,
    )
