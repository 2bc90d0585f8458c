"""API keys: the simple alternative to JWTs. Stored hashed, shown once, revocable.

A key reads `dgk_<id>_<secret>`: `id` (12 hex digits) finds the record, the secret is 256
random bits. Only sha256(key) is stored; a 256-bit random secret needs no slow KDF, and the
comparison is constant-time. The store is one JSON file (default DATA_DIR/security/
api-keys.json, mode 0600), written atomically (temp file + rename) under an exclusive
lock, so `demigod keys` and running gateways share it safely; gateways reload it when it
changes, so a revocation takes effect on the next request. (A file rather than the
registry database: the gateway needs no database to authenticate, and replicas share it
through the same mount as their models.)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

KEY_PREFIX = "dgk_"
ID_HEX_DIGITS = 12
SECRET_BYTES = 32
STORE_VERSION = 1


class APIKeyError(Exception):
    """A key the store does not accept; `reason` is the 401 reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class KeyNotFoundError(LookupError):
    """No key with that id."""


@dataclass(frozen=True)
class APIKeyRecord:
    """One key as stored: everything except the key itself."""

    id: str
    name: str
    tenant: str
    models: list[str] | None
    created: str
    sha256: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def parse_key_id(key: str) -> str:
    """The id part of `dgk_<id>_<secret>`. Raises APIKeyError("malformed_api_key")."""
    body = key.removeprefix(KEY_PREFIX)
    key_id, sep, secret = body.partition("_")
    if (
        not key.startswith(KEY_PREFIX)
        or not sep
        or len(key_id) != ID_HEX_DIGITS
        or any(c not in "0123456789abcdef" for c in key_id)
        or not secret
    ):
        raise APIKeyError("malformed_api_key", "the API key is not of the form dgk_<id>_<secret>")
    return key_id


class APIKeyStore:
    """The key file. Every write takes the lock and replaces the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._cache: dict[str, APIKeyRecord] = {}
        self._cache_stamp: tuple[int, int, int] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, APIKeyRecord]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {row["id"]: APIKeyRecord(**row) for row in data.get("keys", [])}

    def _write(self, records: dict[str, APIKeyRecord]) -> None:
        payload = {"version": STORE_VERSION, "keys": [asdict(r) for r in records.values()]}
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".api-keys-")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def create(
        self, *, name: str, tenant: str, models: list[str] | None = None
    ) -> tuple[str, APIKeyRecord]:
        """A new key for `tenant`: returns (the key, shown only now; its stored record)."""
        with self._locked():
            records = self._read()
            key_id = secrets.token_hex(ID_HEX_DIGITS // 2)
            while key_id in records:
                key_id = secrets.token_hex(ID_HEX_DIGITS // 2)
            key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
            record = APIKeyRecord(
                id=key_id,
                name=name,
                tenant=tenant,
                models=sorted(models) if models else None,
                created=_now(),
                sha256=_digest(key),
            )
            records[key_id] = record
            self._write(records)
        return key, record

    def list(self) -> list[APIKeyRecord]:
        return sorted(self._read().values(), key=lambda r: r.created)

    def revoke(self, key_id: str) -> APIKeyRecord:
        """Mark the key revoked (kept for the record). Raises KeyNotFoundError."""
        with self._locked():
            records = self._read()
            if key_id not in records:
                raise KeyNotFoundError(key_id)
            record = records[key_id]
            if record.active:
                record = APIKeyRecord(**{**asdict(record), "revoked": _now()})
                records[key_id] = record
                self._write(records)
        return record

    def _current(self) -> dict[str, APIKeyRecord]:
        """The records, re-read only when the file changed (a stat per request)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._cache, self._cache_stamp = {}, None
            return self._cache
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp != self._cache_stamp:
            self._cache, self._cache_stamp = self._read(), stamp
        return self._cache

    def verify(self, key: str) -> APIKeyRecord:
        """The active record of `key`. Raises APIKeyError (malformed, unknown, revoked)."""
        key_id = parse_key_id(key)
        record = self._current().get(key_id)
        if record is None or not hmac.compare_digest(record.sha256, _digest(key)):
            raise APIKeyError("unknown_api_key", "the API key is not known")
        if not record.active:
            raise APIKeyError("revoked_api_key", f"the API key {key_id} was revoked")
        return record
