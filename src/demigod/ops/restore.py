"""Restore a mesh's state from a backup into a fresh location, in dependency order:

1. state files (the audit signing key first: the restored chains must keep their signer),
2. the registry (Litestream for SQLite; for PostgreSQL a data directory that recovers
   when started, by the caller's `start_postgres`),
3. the audit log, each chain then continued by an `audit.restore` record naming the gap,
4. model files, verified against the registry's sha256 and fetched when missing or corrupt,
5. one `ops.restore` admin audit record with this report.

A canary that was running when the backup was taken comes back at its weight with no
controller steering it; the report's `pending` says so.

`settings` describe the new location (data_dir, audit.dir, database_url); nothing that
exists there is overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from demigod.canary.store import FileCanaryStore, RegistryCanaryStore
from demigod.config import Settings
from demigod.ops.audit_backup import RestoredChain, record_gap, restore_chains
from demigod.ops.backup_target import BackupError, BackupTarget
from demigod.ops.model_files import ModelFilesReport, restore_model_files
from demigod.ops.postgres_backup import (
    PostgresRestore,
    is_postgres,
    restore_postgres,
    wait_until_promoted,
)
from demigod.ops.sqlite_replication import has_replica, restore_sqlite, sqlite_path
from demigod.ops.sqlite_snapshots import restore_snapshot
from demigod.ops.state_files import restore_state
from demigod.registry import Registry
from demigod.security.audit.events import record_admin_event
from demigod.security.audit.store import AuditLogUnavailableError, audit_root

RESTORE_EVENT = "ops.restore"
RECOVERY_TIMEOUT_SECONDS = 600.0  # WAL replay of a long archive


@dataclass
class RestoreReport:
    source: str
    to_time: datetime | None
    state_files: list[str] = field(default_factory=list)
    registry: dict[str, Any] = field(default_factory=dict)
    audit_chains: list[RestoredChain] = field(default_factory=list)
    models: ModelFilesReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per step
    pending: list[str] = field(default_factory=list)  # what the operator still has to do

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "to_time": None if self.to_time is None else self.to_time.isoformat(),
            "state_files": self.state_files,
            "registry": self.registry,
            "audit_chains": [chain.to_json() for chain in self.audit_chains],
            "models": None if self.models is None else self.models.to_json(),
            "seconds": {step: round(value, 3) for step, value in self.seconds.items()},
            "pending": self.pending,
        }


def restore(
    settings: Settings,
    target: BackupTarget,
    *,
    to_time: datetime | None = None,
    pg_data: Path | None = None,
    pg_owner: str | None = None,
    start_postgres: Callable[[PostgresRestore], None] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RestoreReport:
    """Restore everything the backup holds into the location `settings` describe.

    For a PostgreSQL registry, `pg_data` is the empty data directory to recover into and
    `start_postgres` starts the server on it and returns once it accepts connections at
    `settings.database_url`; without it the registry and model steps are left `pending`.
    Raises BackupError (missing backup, a non-fresh destination, a failed step)."""
    report = RestoreReport(target.description, to_time)

    def step(name: str, action: Callable[[], None]) -> None:
        progress(name)
        started = time.perf_counter()
        action()
        report.seconds[name] = time.perf_counter() - started

    def state() -> None:
        report.state_files = restore_state(settings, target)

    step("state files", state)
    registry_ready = _restore_registry(
        settings, target, report, step, to_time, pg_data, pg_owner, start_postgres
    )

    def audit() -> None:
        report.audit_chains = restore_chains(target, audit_root(settings))
        details = {
            "backup": target.description,
            "registry_to_time": None if to_time is None else to_time.isoformat(),
        }
        for chain in report.audit_chains:
            record_gap(settings, chain, details)

    step("audit log", audit)
    if registry_ready:

        def models() -> None:
            with Registry.open(
                settings.database_url, settings.data_dir, actor="demigod restore"
            ) as registry:
                report.models = restore_model_files(registry, settings, target)

        step("model files", models)
    report.pending += _unsteered_canaries(settings, registry_ready)
    try:
        record_admin_event(settings, RESTORE_EVENT, report.to_json())
    except AuditLogUnavailableError as exc:
        report.pending.append(f"record the restore in the audit log by hand: {exc}")
    return report


def _restore_registry(
    settings: Settings,
    target: BackupTarget,
    report: RestoreReport,
    step: Callable[[str, Callable[[], None]], None],
    to_time: datetime | None,
    pg_data: Path | None,
    pg_owner: str | None,
    start_postgres: Callable[[PostgresRestore], None] | None,
) -> bool:
    """Restore the registry; True when it is open for the model step."""
    db_path = sqlite_path(settings)
    if db_path is not None:

        def sqlite() -> None:
            if has_replica(target):
                restore_sqlite(target, settings.ops.backup, db_path, to_time)
                source = "litestream replica"
            else:  # no agent ran: the newest scheduled whole copy
                source = restore_snapshot(target, db_path, to_time)
            report.registry = {"kind": "sqlite", "path": str(db_path), "from": source}

        step("registry", sqlite)
        return True
    if not is_postgres(settings):
        raise BackupError(f"cannot restore a registry at {settings.database_url!r}")
    if pg_data is None:
        report.pending.append("restore the PostgreSQL registry: pass --pg-data DIR")
        return False
    prepared: list[PostgresRestore] = []

    def postgres() -> None:
        prepared.append(restore_postgres(target, pg_data, to_time=to_time, owner=pg_owner))
        report.registry = {"kind": "postgresql", "data": str(pg_data), **prepared[0].to_json()}

    step("registry", postgres)
    if start_postgres is None:
        report.pending.append(
            f"start PostgreSQL on {pg_data} (it replays the WAL, then promotes); then "
            "`demigod ops restore --models-only` checks the model files"
        )
        return False
    step("registry recovery", lambda: _wait_for_registry(settings, start_postgres, prepared[0]))
    return True


def _unsteered_canaries(settings: Settings, registry_ready: bool) -> list[str]:
    """A pending line per rollout restored as `running`: its controller (`demigod canary
    start`) died with the host, so the weight stays where it was until someone acts."""
    if settings.canary.store == "registry":
        if not registry_ready:
            return []
        with Registry.open(settings.database_url, settings.data_dir) as registry:
            states = RegistryCanaryStore(registry).states()
    else:
        states = FileCanaryStore(settings.canary.state_file).states()
    return [
        f"the canary of {state.model} was running ({state.candidate} at {state.weight:g}%) "
        f"and nothing steers it now: `demigod canary abort {state.model}` then "
        f"`demigod canary start {state.model}` to follow it again, or "
        f"`demigod canary promote {state.model}`"
        for state in states.values()
        if state.status == "running"
    ]


def _wait_for_registry(
    settings: Settings, start_postgres: Callable[[PostgresRestore], None], prepared: PostgresRestore
) -> None:
    start_postgres(prepared)
    assert settings.database_url is not None
    wait_until_promoted(settings.database_url, RECOVERY_TIMEOUT_SECONDS)


def restore_models_only(settings: Settings, target: BackupTarget) -> ModelFilesReport:
    """The model-file step alone, once a restored PostgreSQL registry is up."""
    with Registry.open(
        settings.database_url, settings.data_dir, actor="demigod restore"
    ) as registry:
        return restore_model_files(registry, settings, target)
