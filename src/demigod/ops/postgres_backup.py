"""The PostgreSQL registry: base backups plus continuous WAL archiving, restored to the
newest state or to a point in time, with PostgreSQL's own tools.

- Base backup: `pg_basebackup -Ft -z -X fetch` (a self-contained tar with the WAL it
  needs) under `registry/postgres/base/<UTC stamp>/`, completed by a `done` marker naming
  its first WAL segment. The user needs the REPLICATION privilege.
- WAL: the server's `archive_command` gzips each finished segment to
  `registry/postgres/wal/<segment>.gz` (in the shell for a directory destination, with
  `python -m demigod.ops.wal_archive` for S3); `archive_timeout` closes a segment at least
  that often, which bounds the RPO (`demigod ops pg-archive-settings` prints the lines).
- Restore: the newest base backup before the target time, unpacked into a fresh data
  directory with every archived segment after it beside it, `recovery.signal`, a
  `restore_command` copying from there, `recovery_target_time` when asked and
  `recovery_target_action = 'promote'`: starting the server replays and opens it.
"""

from __future__ import annotations

import gzip
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from demigod.config import Settings
from demigod.ops.backup_target import BackupError, BackupTarget
from demigod.ops.postgres_cluster import PostgresUnavailableError, postgres_client_tool

PG_PREFIX = "registry/postgres/"
BASE_PREFIX = PG_PREFIX + "base/"
WAL_PREFIX = PG_PREFIX + "wal/"
DONE_MARKER = "done"
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_START_WAL = re.compile(rb"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)")
_SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def is_postgres(settings: Settings) -> bool:
    url = settings.database_url or ""
    return url.startswith("postgresql")


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL."""
    url = make_url(database_url)
    parts = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    return " ".join(f"{key}={_quote(str(value))}" for key, value in parts.items() if value)


def archive_settings(settings: Settings, python: str, config_file: Path | None) -> dict[str, str]:
    """The server settings that archive WAL to this config's backup destination.

    To a directory: gzip and rename in the shell, so the server needs nothing of ours
    (it runs as its own OS user). To S3: `python -m demigod.ops.wal_archive`, which the
    server's user must be able to run, with the AWS_* variables in its environment."""
    backup = settings.ops.backup
    if backup.dir is not None:
        wal = shlex.quote(str((backup.dir / WAL_PREFIX).resolve()))
        command = (
            f"test ! -f {wal}/%f.gz && gzip -c %p > {wal}/%f.gz.partial "
            f"&& mv {wal}/%f.gz.partial {wal}/%f.gz"
        )
    else:
        command = f"{python} -m demigod.ops.wal_archive"
        if config_file is not None:
            command += f" --config {shlex.quote(str(config_file.resolve()))}"
        command += " %p %f"
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": command,
        "archive_timeout": f"{backup.pg_archive_timeout_seconds}s",
    }


def push_wal(target: BackupTarget, path: Path, name: str) -> bool:
    """Archive one WAL segment (or .history/.backup file); False when an identical copy was
    already there (PostgreSQL retries after a crash). Raises BackupError when a different
    file already has that name: overwriting would corrupt the archive."""
    data = path.read_bytes()
    key = f"{WAL_PREFIX}{name}.gz"
    if target.keys(key) == [key]:
        if gzip.decompress(target.get_bytes(key)) == data:
            return False
        raise BackupError(f"{key} already archived with different content: refusing to overwrite")
    target.put_bytes(key, gzip.compress(data, compresslevel=6))
    return True


@dataclass(frozen=True)
class BaseBackup:
    stamp: str  # UTC, STAMP_FORMAT
    start_segment: str  # first WAL segment it needs

    @property
    def time(self) -> datetime:
        return datetime.strptime(self.stamp, STAMP_FORMAT).replace(tzinfo=UTC)


def base_backup(settings: Settings, target: BackupTarget, now: datetime) -> BaseBackup:
    """Take a base backup of the registry's cluster and store it; then delete base
    backups older than the retention (the newest always stays) and the WAL only they
    needed. Raises BackupError when pg_basebackup is missing or fails, or the target fails."""
    assert settings.database_url is not None
    try:
        pg_basebackup = postgres_client_tool("pg_basebackup")
    except PostgresUnavailableError as exc:
        raise BackupError(str(exc)) from exc
    stamp = now.astimezone(UTC).strftime(STAMP_FORMAT)
    with tempfile.TemporaryDirectory(prefix="demigod-basebackup-") as folder:
        out = Path(folder) / "backup"
        command = [
            str(pg_basebackup),
            "-d",
            conninfo(settings.database_url),
            "-D",
            str(out),
            "-Ft",
            "-z",
            "-X",
            "fetch",
            "--checkpoint=fast",
            "-l",
            f"demigod {stamp}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"pg_basebackup failed: {done.stderr.strip()}")
        start = _start_segment(out / "base.tar.gz")
        prefix = f"{BASE_PREFIX}{stamp}/"
        for file in sorted(out.iterdir()):
            target.put_file(prefix + file.name, file)
    target.put_bytes(prefix + DONE_MARKER, start.encode())
    backup = BaseBackup(stamp, start)
    _prune(target, now, timedelta(hours=settings.ops.backup.retention_hours))
    return backup


def base_backups(target: BackupTarget) -> list[BaseBackup]:
    """Complete base backups, oldest first."""
    found = []
    for key in target.keys(BASE_PREFIX):
        stamp, _, name = key.removeprefix(BASE_PREFIX).partition("/")
        if name == DONE_MARKER:
            found.append(BaseBackup(stamp, target.get_bytes(key).decode().strip()))
    return sorted(found, key=lambda backup: backup.stamp)


@dataclass(frozen=True)
class PostgresRestore:
    base: BaseBackup
    wal_files: int
    wal_dir: Path
    to_time: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "base_backup": self.base.stamp,
            "wal_files": self.wal_files,
            "wal_dir": str(self.wal_dir),
            "recovery_target_time": None if self.to_time is None else self.to_time.isoformat(),
        }


def restore_postgres(
    target: BackupTarget,
    pg_data: Path,
    *,
    to_time: datetime | None = None,
    owner: str | None = None,
) -> PostgresRestore:
    """Prepare `pg_data` (absent or empty) to recover the archived cluster when started:
    the newest base backup taken before `to_time` (or the newest), every archived WAL file
    from its start on (in `<pg_data>.wal`), and recovery settings that replay up to
    `to_time` (or to the end) and then promote. `owner`: the OS user the server runs as
    (files are given to it). Raises BackupError when no base backup fits."""
    candidates = [b for b in base_backups(target) if to_time is None or b.time <= to_time]
    if not candidates:
        when = "" if to_time is None else f" taken before {to_time.isoformat()}"
        raise BackupError(f"no PostgreSQL base backup{when} in {target.description}")
    base = candidates[-1]
    if pg_data.exists() and any(pg_data.iterdir()):
        raise BackupError(f"{pg_data} is not empty: restore into a fresh data directory")
    pg_data.mkdir(parents=True, exist_ok=True)
    pg_data.chmod(0o700)
    with tempfile.TemporaryDirectory(prefix="demigod-pgrestore-") as folder:
        archive = Path(folder) / "base.tar.gz"
        target.get_file(f"{BASE_PREFIX}{base.stamp}/base.tar.gz", archive)
        with tarfile.open(archive) as tar:
            tar.extractall(pg_data, filter="tar")
    wal_dir = pg_data.with_name(pg_data.name + ".wal")
    wal_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for key in target.keys(WAL_PREFIX):
        name = key.removeprefix(WAL_PREFIX).removesuffix(".gz")
        if _SEGMENT.match(name) and name[8:] < base.start_segment[8:]:
            continue  # before the base backup: never replayed
        (wal_dir / name).write_bytes(gzip.decompress(target.get_bytes(key)))
        count += 1
    (pg_data / "recovery.signal").touch()
    recovery = [
        f'restore_command = \'cp "{wal_dir}/%f" "%p"\'',
        "recovery_target_action = 'promote'",
    ]
    if to_time is not None:
        recovery.append(f"recovery_target_time = '{to_time.astimezone(UTC).isoformat()}'")
    with (pg_data / "postgresql.auto.conf").open("a") as conf:
        conf.write("\n# demigod ops restore\n" + "\n".join(recovery) + "\n")
    if owner is not None:
        for path in (pg_data, wal_dir):
            _chown_tree(path, owner)
    return PostgresRestore(base, count, wal_dir, to_time)


def wait_until_promoted(database_url: str, timeout: float) -> None:
    """Wait until the restored server has replayed its WAL and accepts writes (hot standby
    answers reads earlier, from a state older than the target). Raises BackupError."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as connection:
                    if not connection.execute(text("select pg_is_in_recovery()")).scalar():
                        return
                error = "still replaying WAL"
            except OperationalError as exc:  # not accepting connections yet
                error = str(exc)
            if time.monotonic() > deadline:
                raise BackupError(f"the restored PostgreSQL did not open: {error}")
            time.sleep(0.2)
    finally:
        engine.dispose()


def _start_segment(base_tar: Path) -> str:
    with tarfile.open(base_tar) as tar:
        label = tar.extractfile("backup_label")
        if label is None:
            raise BackupError(f"{base_tar} has no backup_label")
        found = _START_WAL.search(label.read())
    if found is None:
        raise BackupError(f"{base_tar}: backup_label names no start WAL file")
    return found.group(1).decode()


def _prune(target: BackupTarget, now: datetime, retention: timedelta) -> None:
    backups = base_backups(target)
    keep = [b for b in backups if now - b.time <= retention] or backups[-1:]
    if not keep:
        return
    for old in backups:
        if old not in keep:
            for key in target.keys(f"{BASE_PREFIX}{old.stamp}/"):
                target.delete(key)
    oldest = min(b.start_segment for b in keep)
    for key in target.keys(WAL_PREFIX):
        name = key.removeprefix(WAL_PREFIX).removesuffix(".gz")
        if _SEGMENT.match(name) and name < oldest:
            target.delete(key)


def _chown_tree(path: Path, owner: str) -> None:
    shutil.chown(path, owner, owner)
    for child in path.rglob("*"):
        shutil.chown(child, owner, owner)


def _quote(value: str) -> str:
    """A libpq conninfo value: quoted when it holds spaces, quotes or backslashes."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
