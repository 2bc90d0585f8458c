"""Fixtures: a local RFC 3161 TSA over HTTP, a signing key, a small sealed chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demigod.security.audit.signing import SigningKey
from demigod.security.audit.store import AuditLog
from demigod.security.audit.timestamping import TimestampClient
from tests.security.audit.tsa import LocalTSA, start_local_tsa


@pytest.fixture(scope="session")
def tsa() -> Iterator[LocalTSA]:
    server = start_local_tsa()
    yield server
    server.stop()


@pytest.fixture
def signing_key(tmp_path: Path) -> SigningKey:
    return SigningKey.load_or_create(tmp_path / "keys" / "audit.pem")


def open_log(
    directory: Path, key: SigningKey, tsa: LocalTSA | None = None, **options: object
) -> AuditLog:
    timestamper = TimestampClient(tsa.url, trusted=[tsa.certificate]) if tsa is not None else None
    return AuditLog(directory, key=key, timestamper=timestamper, **options).open()  # type: ignore[arg-type]


def write_chain(
    directory: Path, key: SigningKey, tsa: LocalTSA | None, records: int, every: int
) -> None:
    """`records` records, sealed every `every` (each record its own group, so the
    checkpoints fall exactly every `every` records)."""
    log = open_log(directory, key, tsa, checkpoint_every_records=every)
    for i in range(records):
        log.submit("request", {"i": i, "tenant": "acme"}).result(timeout=10)
    log.close()
