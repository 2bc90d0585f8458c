"""Audit records and their hash chain.

A record is one JSON line: `{"seq", "time", "kind", "data", "prev", "hash"}`. `hash` is the
sha256 (hex) of the record's canonical JSON without `hash`; `prev` is the previous record's
`hash` (64 zeros for the first record), so changing, removing or reordering any record breaks
every link after it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS = ("seq", "time", "kind", "data", "prev")


class RecordFormatError(ValueError):
    """A line that is not a well-formed audit record."""


def canonical_json(value: Any) -> bytes:
    """The bytes that are hashed and signed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_now() -> str:
    """Record time: ISO 8601 UTC with microseconds and a `Z`."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a record time (or any ISO 8601 date/time; naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "kind": self.kind, "data": self.data,
                "prev": self.prev}  # fmt: skip

    def computed_hash(self) -> str:
        return sha256_hex(canonical_json(self.body()))

    def to_line(self) -> bytes:
        return canonical_json({**self.body(), "hash": self.hash}) + b"\n"

    @classmethod
    def from_line(cls, line: bytes | str) -> AuditRecord:
        """Parse one JSON line. Raises RecordFormatError naming what is wrong."""
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise RecordFormatError(f"not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise RecordFormatError("not a JSON object")
        missing = [name for name in (*HASHED_FIELDS, "hash") if name not in raw]
        if missing:
            raise RecordFormatError(f"missing field(s) {', '.join(missing)}")
        extra = sorted(set(raw) - {*HASHED_FIELDS, "hash"})
        if extra:
            raise RecordFormatError(f"unexpected field(s) {', '.join(extra)}")
        if not isinstance(raw["seq"], int) or isinstance(raw["seq"], bool) or raw["seq"] < 0:
            raise RecordFormatError("seq is not a non-negative integer")
        if not isinstance(raw["data"], dict):
            raise RecordFormatError("data is not an object")
        for name in ("time", "kind", "prev", "hash"):
            if not isinstance(raw[name], str):
                raise RecordFormatError(f"{name} is not a string")
        return cls(raw["seq"], raw["time"], raw["kind"], raw["data"], raw["prev"], raw["hash"])


def chain_record(seq: int, prev: str, kind: str, data: dict[str, Any], time: str) -> AuditRecord:
    """The record that follows the one whose hash is `prev`. Raises ValueError for data
    that has no canonical JSON form (NaN, infinities, non-JSON types)."""
    body = {"seq": seq, "time": time, "kind": kind, "data": data, "prev": prev}
    try:
        digest = sha256_hex(canonical_json(body))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit record data is not canonical JSON: {exc}") from exc
    # Keep exactly what was hashed (e.g. tuples become lists) so the line verifies.
    return AuditRecord(seq, time, kind, json.loads(canonical_json(data)), prev, digest)
