"""The backup agent: everything a lost host would take with it, copied off continuously.

`run` is the long-running `demigod ops backup --continuous` (a sidecar container, a
systemd service): Litestream replicates a SQLite registry as it runs (and takes its own
full snapshot every `full_every_hours`), and every `interval_seconds` the audit log's new
records and any changed state file are shipped; model files are checked once a minute and
copied once per content. A PostgreSQL registry archives its own WAL (archive_command);
its base backups are `run_once`, scheduled (a CronJob, a systemd timer) every
`full_every_hours`. For SQLite, `run_once` makes a whole copy with the online backup API,
independent of Litestream's replica (a second, simpler way back); it is also the one-shot
copy of everything for a host without the agent.

A failed pass is logged and retried on the next one; `manifest.json` in the destination
says when the agent last completed a pass, which is what a monitor should watch.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demigod.config import Settings
from demigod.ops.audit_backup import AuditShipper
from demigod.ops.backup_target import BackupError, BackupTarget
from demigod.ops.model_files import ModelFilesReport, ModelShipper
from demigod.ops.postgres_backup import base_backup, is_postgres
from demigod.ops.sqlite_replication import LitestreamReplicator, sqlite_path
from demigod.ops.sqlite_snapshots import snapshot_sqlite
from demigod.ops.state_files import StateShipper
from demigod.registry import Registry, RegistryError
from demigod.security.audit.store import audit_root

log = logging.getLogger(__name__)

MANIFEST_KEY = "manifest.json"
MODEL_PASS_SECONDS = 60.0
MANIFEST_EVERY_SECONDS = 60.0


@dataclass
class BackupPass:
    """What one pass copied."""

    audit_bytes: int = 0
    state_files: list[str] = field(default_factory=list)
    models: ModelFilesReport | None = None
    registry: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "audit_bytes": self.audit_bytes,
            "state_files": self.state_files,
            "models": None if self.models is None else self.models.to_json(),
            "registry": self.registry,
            "errors": self.errors,
        }


class BackupAgent:
    """Copies one mesh's state (as `settings` locate it) to `target`."""

    def __init__(self, settings: Settings, target: BackupTarget, *, work_dir: Path) -> None:
        self.settings = settings
        self.target = target
        self.work_dir = work_dir
        self.audit = AuditShipper(audit_root(settings), target)
        self.state = StateShipper(settings, target)
        self.models = ModelShipper(target) if settings.ops.backup.models else None
        self.sqlite = sqlite_path(settings)
        self.postgres = is_postgres(settings)

    def run_once(self) -> BackupPass:
        """A complete copy now: the registry (a whole SQLite copy through the online backup
        API, or a PostgreSQL base backup), the audit log, the state files and the model
        files. Raises BackupError."""
        done = BackupPass()
        now = datetime.now(UTC)
        if self.sqlite is not None and self.sqlite.is_file():
            retention = timedelta(hours=self.settings.ops.backup.retention_hours)
            done.registry = snapshot_sqlite(self.sqlite, self.target, now, retention)
        elif self.postgres:
            done.registry = (
                f"postgresql base backup {base_backup(self.settings, self.target, now).stamp}"
            )
        self._ship_files(done, with_models=True)
        if done.errors:
            raise BackupError("; ".join(done.errors))
        self._write_manifest(done)
        return done

    def run(
        self, stop: threading.Event, on_pass: Callable[[BackupPass], None] | None = None
    ) -> None:
        """Copy continuously until `stop` is set. Raises BackupError only when the
        registry's replication cannot start (Litestream missing)."""
        interval = self.settings.ops.backup.interval_seconds
        replicator = None
        if self.sqlite is not None:
            # Litestream follows an existing database: create (migrate) it first.
            Registry.open(self.settings.database_url, self.settings.data_dir).close()
            replicator = LitestreamReplicator(
                self.sqlite, self.target, self.settings.ops.backup, self.work_dir / "litestream.log"
            )
            replicator.start()
        next_models = next_manifest = time.monotonic()
        try:
            while not stop.is_set():
                started = time.monotonic()
                done = BackupPass()
                if replicator is not None and not replicator.running():
                    done.errors.append("litestream exited; restarting it (see litestream.log)")
                    replicator.start()
                with_models = started >= next_models
                self._ship_files(done, with_models=with_models)
                if with_models:
                    next_models = started + MODEL_PASS_SECONDS
                for error in done.errors:
                    log.error("backup pass: %s", error)
                if started >= next_manifest or done.audit_bytes or done.state_files:
                    self._write_manifest(done)
                    next_manifest = started + MANIFEST_EVERY_SECONDS
                if on_pass is not None:
                    on_pass(done)
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
        finally:
            if replicator is not None:
                replicator.stop()

    def _ship_files(self, done: BackupPass, *, with_models: bool) -> None:
        for name, step in (("audit log", self._ship_audit), ("state files", self._ship_state)):
            try:
                step(done)
            except (BackupError, OSError) as exc:
                done.errors.append(f"{name}: {exc}")
        if with_models and self.models is not None:
            try:
                with Registry.open(
                    self.settings.database_url, self.settings.data_dir, actor="demigod backup"
                ) as registry:
                    done.models = self.models.ship(registry)
            except (BackupError, RegistryError, OSError) as exc:
                done.errors.append(f"model files: {exc}")

    def _ship_audit(self, done: BackupPass) -> None:
        done.audit_bytes = self.audit.ship()

    def _ship_state(self, done: BackupPass) -> None:
        done.state_files = self.state.ship()

    def _write_manifest(self, done: BackupPass) -> None:
        manifest = {
            "updated": datetime.now(UTC).isoformat(),
            "host": socket.gethostname(),
            "registry": "postgresql" if self.postgres else "sqlite",
            "interval_seconds": self.settings.ops.backup.interval_seconds,
            "last_pass": done.to_json(),
        }
        try:
            self.target.put_bytes(MANIFEST_KEY, json.dumps(manifest, indent=2).encode())
        except BackupError as exc:
            log.error("backup manifest not written: %s", exc)
