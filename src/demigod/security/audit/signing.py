"""Ed25519 keys that sign audit checkpoints.

The private key is a PKCS#8 PEM file. When the configured file does not exist it is
generated (mode 0600) and a warning is logged: the operator must back it up, and should
publish the public key (`public-keys/<key id>.pem` beside each chain) out of band.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)


class SigningKeyError(Exception):
    """The signing key file cannot be read or is not an Ed25519 private key."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its sha256."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Raises SigningKeyError unless `pem` is an Ed25519 public key."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise SigningKeyError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("the public key is not Ed25519")
    return key


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, payload: bytes) -> bool:
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, payload: bytes) -> bytes:
        return self.private_key.sign(payload)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read an Ed25519 private key. Raises SigningKeyError."""
        try:
            pem = path.read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise SigningKeyError(f"cannot load audit signing key {path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 private key")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "audit signing key %s is readable by others (mode %o); chmod 600 it",
                path,
                mode,
            )
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Load `path`, generating it (0600, atomically, race-free) when absent."""
        if path.exists():
            return cls.load(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another process created it meanwhile
        except FileExistsError:
            return cls.load(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        created = cls(key)
        log.warning(
            "GENERATED a new audit signing key at %s (key id %s). Back it up and publish its "
            "public key; set audit.signing_key_path to use your own.",
            path,
            created.key_id,
            extra={"audit_key_id": created.key_id},
        )
        return created
