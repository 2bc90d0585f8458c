"""Checkpoints: a signed, timestamped Merkle root over the records since the last one.

One JSON line per checkpoint in `checkpoints.jsonl`. The signed payload is the canonical
JSON of every field but `signature`, `timestamp_token` and `timestamp_error`; the RFC 3161
token timestamps sha256(signature), proving the signature (and so the root) existed then.
Each checkpoint names the previous one's hash, so checkpoints form their own chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from demigod.security.audit.merkle import merkle_root
from demigod.security.audit.records import GENESIS_HASH, canonical_json, sha256_hex
from demigod.security.audit.signing import SigningKey
from demigod.security.audit.timestamping import TimestampClient, TimestampError

log = logging.getLogger(__name__)

UNSIGNED_FIELDS = ("signature", "timestamp_token", "timestamp_error")


class CheckpointFormatError(ValueError):
    """A checkpoint line that is not well formed."""


@dataclass(frozen=True)
class Checkpoint:
    index: int
    first_seq: int
    last_seq: int
    merkle_root: str
    last_record_hash: str
    prev_checkpoint: str
    time: str
    key_id: str
    signature: str  # base64 Ed25519 signature of payload_bytes()
    timestamp_token: str | None = None  # base64 DER RFC 3161 TimeStampToken
    timestamp_error: str | None = None  # why there is no token, when a TSA was configured

    def payload(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in UNSIGNED_FIELDS}

    def payload_bytes(self) -> bytes:
        return canonical_json(self.payload())

    def signature_bytes(self) -> bytes:
        return base64.b64decode(self.signature, validate=True)

    def token_bytes(self) -> bytes | None:
        return None if self.timestamp_token is None else base64.b64decode(self.timestamp_token)

    def checkpoint_hash(self) -> str:
        """What the next checkpoint's `prev_checkpoint` holds: over payload and signature."""
        return sha256_hex(canonical_json({**self.payload(), "signature": self.signature}))

    def to_line(self) -> bytes:
        return canonical_json(asdict(self)) + b"\n"

    @classmethod
    def from_line(cls, line: bytes | str) -> Checkpoint:
        try:
            raw = json.loads(line)
            return cls(**raw)
        except (ValueError, TypeError) as exc:
            raise CheckpointFormatError(f"malformed checkpoint: {exc}") from exc


def root_hex(record_hashes: Sequence[str]) -> str:
    return merkle_root([bytes.fromhex(h) for h in record_hashes]).hex()


def timestamp_digest(signature: bytes) -> bytes:
    return hashlib.sha256(signature).digest()


def make_checkpoint(
    *,
    index: int,
    first_seq: int,
    record_hashes: Sequence[str],
    prev_checkpoint: Checkpoint | None,
    time: str,
    key: SigningKey,
    timestamper: TimestampClient | None,
) -> Checkpoint:
    """Sign (and timestamp, when a TSA is configured) the root over `record_hashes`.
    A TSA failure is logged and recorded in `timestamp_error`, never raised: the log keeps
    going, and verify reports the missing timestamp."""
    unsigned = Checkpoint(
        index=index,
        first_seq=first_seq,
        last_seq=first_seq + len(record_hashes) - 1,
        merkle_root=root_hex(record_hashes),
        last_record_hash=record_hashes[-1],
        prev_checkpoint=(
            GENESIS_HASH if prev_checkpoint is None else prev_checkpoint.checkpoint_hash()
        ),
        time=time,
        key_id=key.key_id,
        signature="",
    )
    signature = key.sign(unsigned.payload_bytes())
    token: str | None = None
    error: str | None = None
    if timestamper is not None:
        try:
            der, _ = timestamper.timestamp(signature)  # its imprint: timestamp_digest
            token = base64.b64encode(der).decode()
        except TimestampError as exc:
            error = str(exc)
            log.error("audit checkpoint %d not timestamped: %s", index, exc)
    return replace(
        unsigned,
        signature=base64.b64encode(signature).decode(),
        timestamp_token=token,
        timestamp_error=error,
    )
