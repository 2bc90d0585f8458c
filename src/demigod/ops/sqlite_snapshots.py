"""Whole copies of the SQLite registry with SQLite's online backup API, independent of
Litestream's replica: the scheduled full copy (`demigod ops backup`, a CronJob or a
systemd timer) and what a restore falls back to when there is no replica.

The online backup API copies a consistent state while writers carry on (it restarts if
one writes mid-copy), so no lock is held for long. On a timer this is also the
alternative Litestream was measured against (bench/registry_rpo.py): its loss window is
the period plus the copy.
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from demigod.ops.backup_target import BackupError, BackupTarget

SNAPSHOT_PREFIX = "registry/sqlite-snapshots/"
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def snapshot_sqlite(
    db_path: Path, target: BackupTarget, now: datetime, retention: timedelta
) -> str:
    """Copy the database as it is now to the target; returns the key. Copies older than
    `retention` are then deleted (the newest always stays). Raises BackupError."""
    key = f"{SNAPSHOT_PREFIX}{now.astimezone(UTC).strftime(STAMP_FORMAT)}.db"
    with tempfile.TemporaryDirectory(prefix="demigod-sqlite-") as folder:
        copy = Path(folder) / "registry.db"
        copy_database(db_path, copy)
        target.put_file(key, copy)
    for old in snapshot_keys(target)[:-1]:
        if now - _time(old) > retention:
            target.delete(old)
    return key


def copy_database(source: Path, dest: Path) -> None:
    """A consistent copy of `source` at `dest` through the online backup API. Raises
    BackupError when `source` is not a readable SQLite database."""
    try:
        reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            writer = sqlite3.connect(dest)
            try:
                reader.backup(writer)
            finally:
                writer.close()
        finally:
            reader.close()
    except sqlite3.Error as exc:
        raise BackupError(f"copying {source} failed: {exc}") from exc


def snapshot_keys(target: BackupTarget) -> list[str]:
    """Every whole copy, oldest first."""
    return sorted(key for key in target.keys(SNAPSHOT_PREFIX) if key.endswith(".db"))


def restore_snapshot(target: BackupTarget, db_path: Path, to_time: datetime | None) -> str:
    """Write the newest copy taken at or before `to_time` (default: the newest) to
    `db_path`; returns its key. Raises BackupError when there is none."""
    if db_path.exists():
        raise BackupError(f"{db_path} exists: restore into a fresh data dir")
    keys = [k for k in snapshot_keys(target) if to_time is None or _time(k) <= to_time]
    if not keys:
        raise BackupError(f"no SQLite registry copy in {target.description}")
    target.get_file(keys[-1], db_path)
    return keys[-1]


def _time(key: str) -> datetime:
    stamp = key.removeprefix(SNAPSHOT_PREFIX).removesuffix(".db")
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)
