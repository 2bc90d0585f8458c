"""Export a time range of a chain for auditors: a folder `demigod audit verify` (or any
reimplementation of docs/audit.md) checks offline.

The range is widened to whole checkpoints, so every exported record is under a signed root;
all checkpoints are exported (they are small), so the first exported record is anchored by
the checkpoint before it. Public keys and TSA certificates go along; private keys never.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from demigod.security.audit.checkpoints import Checkpoint, CheckpointFormatError
from demigod.security.audit.layout import (
    CHECKPOINTS_FILE,
    PUBLIC_KEYS_DIR,
    TSA_CERTS_DIR,
    list_segments,
    segment_name,
)
from demigod.security.audit.records import AuditRecord, RecordFormatError, parse_time

README = """Audit log export: {node}
Records {first}..{last} ({count} records; the requested range {since} .. {until}, widened
to whole checkpoints). Verify offline with:

    demigod audit verify --dir . --public-key public-keys/<key id>.pem --tsa-cert <TSA cert>

Format, hash chain, Merkle checkpoints and timestamps: docs/audit.md of Phoenix DemiGod.
"""


class ExportError(Exception):
    """Nothing to export, or the chain cannot be read."""


@dataclass(frozen=True)
class ExportSummary:
    node: str
    directory: Path
    first_seq: int
    last_seq: int
    records: int
    checkpoints: int


def _records(chain: Path) -> list[AuditRecord]:
    records = []
    for _, path in list_segments(chain):
        for line in path.read_bytes().split(b"\n"):
            if line:
                try:
                    records.append(AuditRecord.from_line(line))
                except RecordFormatError as exc:
                    raise ExportError(f"{path}: {exc}; run `demigod audit verify`") from exc
    return records


def _checkpoints(chain: Path) -> list[Checkpoint]:
    path = chain / CHECKPOINTS_FILE
    if not path.is_file():
        return []
    try:
        return [Checkpoint.from_line(line) for line in path.read_bytes().split(b"\n") if line]
    except CheckpointFormatError as exc:
        raise ExportError(f"{path}: {exc}; run `demigod audit verify`") from exc


def export_chain(
    chain: Path,
    out: Path,
    since: datetime,
    until: datetime | None = None,
    tsa_certificates: list[Path] | None = None,
) -> ExportSummary:
    """Write records with since <= time (< until), widened to checkpoints, to `out`/<node>.
    Raises ExportError when no record is in the range."""
    records = _records(chain)
    selected = [
        r
        for r in records
        if parse_time(r.time) >= since and (until is None or parse_time(r.time) < until)
    ]
    if not selected:
        raise ExportError(f"{chain.name}: no records between {since} and {until or 'now'}")
    checkpoints = _checkpoints(chain)
    first, last = selected[0].seq, selected[-1].seq
    for checkpoint in checkpoints:
        if checkpoint.first_seq <= first <= checkpoint.last_seq:
            first = checkpoint.first_seq
        if checkpoint.first_seq <= last <= checkpoint.last_seq:
            last = checkpoint.last_seq
    target = out / chain.name
    target.mkdir(parents=True, exist_ok=True)
    chosen = [r for r in records if first <= r.seq <= last]
    (target / segment_name(first)).write_bytes(b"".join(r.to_line() for r in chosen))
    (target / CHECKPOINTS_FILE).write_bytes(b"".join(c.to_line() for c in checkpoints))
    for folder in (PUBLIC_KEYS_DIR, TSA_CERTS_DIR):
        if (chain / folder).is_dir():
            shutil.copytree(chain / folder, target / folder, dirs_exist_ok=True)
    for certificate in tsa_certificates or []:
        (target / TSA_CERTS_DIR).mkdir(exist_ok=True)
        shutil.copy(certificate, target / TSA_CERTS_DIR / f"trusted-{certificate.name}")
    (target / "README.txt").write_text(
        README.format(
            node=chain.name,
            first=first,
            last=last,
            count=len(chosen),
            since=since.isoformat(),
            until=until.isoformat() if until else "now",
        )
    )
    return ExportSummary(chain.name, target, first, last, len(chosen), len(checkpoints))
