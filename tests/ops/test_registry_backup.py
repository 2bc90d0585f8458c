"""The registry's backups, restored whole and to a point in time: SQLite through a real
Litestream, PostgreSQL through real base backups and WAL archiving."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from demigod.config import Settings
from demigod.ops.backup_target import BackupError, DirectoryTarget, S3Target
from demigod.ops.postgres_backup import (
    WAL_PREFIX,
    archive_settings,
    base_backup,
    base_backups,
    push_wal,
    restore_postgres,
    wait_until_promoted,
)
from demigod.ops.postgres_cluster import PostgresCluster
from demigod.ops.sqlite_replication import (
    LitestreamReplicator,
    litestream_environment,
    restore_sqlite,
)
from demigod.registry import Registry
from tests.conftest import S3Server

SYNC_SECONDS = 0.5


def _write_events(registry: Registry, numbers: range, pause: float) -> list[tuple[int, datetime]]:
    """Events numbered `numbers`, each acknowledged at the time returned beside it."""
    written = []
    for n in numbers:
        registry.record_event("m", "test.write", details={"n": n})
        written.append((n, datetime.now(UTC)))
        time.sleep(pause)
    return written


def _kept(url: str) -> set[int]:
    with Registry(url, migrate=False) as registry:
        return {int(e.details["n"]) for e in registry.events("m", limit=10_000)}


def _split(
    written: list[tuple[int, datetime]], when: datetime, margin: float
) -> tuple[set[int], set[int]]:
    """(surely before `when` by `margin` seconds, after `when`)."""
    before = {n for n, at in written if (when - at).total_seconds() > margin}
    after = {n for n, at in written if at > when}
    return before, after


@pytest.fixture
def s3_target(s3_server: S3Server, s3_credentials: None) -> S3Target:
    import boto3

    bucket = f"backups-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=s3_server.endpoint_url).create_bucket(Bucket=bucket)
    return S3Target(
        Settings(snapshots={"endpoint_url": s3_server.endpoint_url, "bucket": bucket}).snapshots,
        "demigod/backups/",
    )


def test_litestream_restores_the_sqlite_registry_whole_and_to_a_time(
    tmp_path: Path, s3_target: S3Target
) -> None:
    db = tmp_path / "primary" / "registry.db"
    url = f"sqlite:///{db}"
    backup = Settings(ops={"backup": {"interval_seconds": SYNC_SECONDS}}).ops.backup
    with Registry(url) as registry:
        replicator = LitestreamReplicator(db, s3_target, backup, tmp_path / "litestream.log")
        replicator.start()
        try:
            first = _write_events(registry, range(20), 0.1)
            middle = datetime.now(UTC)
            time.sleep(1.5)
            second = _write_events(registry, range(20, 40), 0.1)
            time.sleep(3 * SYNC_SECONDS)
        finally:
            replicator.stop()
    whole = tmp_path / "whole" / "registry.db"
    restore_sqlite(s3_target, backup, whole)
    assert _kept(f"sqlite:///{whole}") == set(range(40))

    at_middle = tmp_path / "middle" / "registry.db"
    restore_sqlite(s3_target, backup, at_middle, to_time=middle)
    before, after = _split(first + second, middle, margin=2 * SYNC_SECONDS)
    kept = _kept(f"sqlite:///{at_middle}")
    assert before <= kept, sorted(before - kept)
    assert not kept & after, sorted(kept & after)


def test_restoring_over_an_existing_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    db.write_bytes(b"")
    with pytest.raises(BackupError, match="exists"):
        restore_sqlite(DirectoryTarget(tmp_path / "backup"), Settings().ops.backup, db)


def test_litestream_gets_the_ca_bundle_it_can_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/corp-ca.pem")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    environment = litestream_environment()
    assert "AWS_CA_BUNDLE" not in environment
    assert environment["SSL_CERT_FILE"] == "/etc/corp-ca.pem"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the PostgreSQL server's own OS user can reach (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="demigod-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_postgres_point_in_time_restore(shared_dir: Path, postgres: PostgresCluster) -> None:
    backup_dir = shared_dir / "backup"
    settings = Settings(ops={"backup": {"dir": str(backup_dir), "pg_archive_timeout_seconds": 1}})
    primary = PostgresCluster(shared_dir / "primary", bin_dir=postgres.bin_dir)
    restored = PostgresCluster(shared_dir / "restored", bin_dir=postgres.bin_dir)
    wal = backup_dir / WAL_PREFIX
    wal.mkdir(parents=True)
    if primary.owner:
        shutil.chown(wal, primary.owner, primary.owner)
    try:
        primary.init()
        primary.start(archive_settings(settings, "unused", None))
        url = primary.create_database("registry")
        settings = settings.model_copy(update={"database_url": url})
        target = DirectoryTarget(backup_dir)
        base_backup(settings, target, datetime.now(UTC))
        assert len(base_backups(target)) == 1
        with Registry(url) as registry:
            first = _write_events(registry, range(10), 0.1)
            middle = datetime.now(UTC)
            time.sleep(0.5)
            second = _write_events(registry, range(10, 20), 0.1)
        time.sleep(3)  # archive_timeout (1 s) closes and archives the last segment
        primary.stop(immediate=True)

        restore_postgres(target, restored.data, to_time=middle, owner=restored.owner)
        restored.start()
        wait_until_promoted(restored.url("registry"), timeout=60)
        kept = _kept(restored.url("registry"))
        before, after = _split(first + second, middle, margin=0.0)
        assert kept == before, (sorted(kept), sorted(before))
        assert not kept & after
    finally:
        primary.remove()
        restored.remove()


def test_the_directory_archive_command_writes_what_push_wal_reads(tmp_path: Path) -> None:
    settings = Settings(ops={"backup": {"dir": str(tmp_path / "backup")}})
    wal = tmp_path / "backup" / WAL_PREFIX
    wal.mkdir(parents=True)
    segment = tmp_path / "000000010000000000000003"
    segment.write_bytes(b"wal bytes" * 1000)
    command = archive_settings(settings, "unused", None)["archive_command"]
    run = command.replace("%p", str(segment)).replace("%f", segment.name)
    subprocess.run(["sh", "-c", run], check=True)
    assert gzip.decompress((wal / f"{segment.name}.gz").read_bytes()) == segment.read_bytes()
    assert subprocess.run(["sh", "-c", run], check=False).returncode != 0  # never overwrites
    target = DirectoryTarget(tmp_path / "backup")
    assert push_wal(target, segment, segment.name) is False  # same content: already safe
    segment.write_bytes(b"other")
    with pytest.raises(BackupError, match="refusing to overwrite"):
        push_wal(target, segment, segment.name)


def test_directory_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    target = DirectoryTarget(tmp_path / "backup")
    target.put_bytes("audit/a/b", b"x")
    assert target.keys("audit/") == ["audit/a/b"]
    assert target.keys("audit/a/b") == ["audit/a/b"]
    with pytest.raises(BackupError, match="leaves"):
        target.put_bytes("../outside", b"x")


def test_an_absent_directory_destination_has_no_keys(tmp_path: Path) -> None:
    (tmp_path / "beside").write_text("not a backup")
    target = DirectoryTarget(tmp_path / "backup")
    assert target.keys("") == target.keys("audit/") == target.keys("manifest.json") == []
