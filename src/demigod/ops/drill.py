"""The restore drill: lose a running mesh for real and measure what it cost.

A throwaway primary (its own data dir, registry — SQLite, or a PostgreSQL cluster it
starts — and audit chain) serves a model from its registry while the backup agent runs
beside it, exactly as deployed. For `duration` seconds the drill writes continuously:
registry events (one transaction each) and completions (each audited before it is
answered), noting when each was acknowledged. Then it destroys the primary: the mesh and
the agent are killed (SIGKILL, with their children), the PostgreSQL server stopped
immediately, and every data directory deleted. It restores into a fresh location, starts
the mesh there, and keeps asking until a completion succeeds.

Reported, measured rather than configured:
- RPO: how old the oldest acknowledged write that the restore lacks was at the moment of
  destruction (0 when nothing was lost);
- MTTR: destruction → first successful completion on the restored mesh;
- what was lost (registry events and audited requests, by id), whether the restored audit
  log verifies, and whether the restore recorded its gap in the chain.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from demigod.config import BackupConfig, Settings, load_settings
from demigod.ops.audit_backup import RESTORE_KIND
from demigod.ops.backup_agent import MANIFEST_KEY, BackupAgent
from demigod.ops.backup_target import BackupError, open_target
from demigod.ops.postgres_backup import WAL_PREFIX, archive_settings
from demigod.ops.postgres_cluster import PostgresCluster
from demigod.ops.restore import restore
from demigod.processes import ServerNotReadyError, free_port, wait_until_ready
from demigod.security.audit.layout import list_segments
from demigod.security.audit.records import AuditRecord
from demigod.security.audit.store import audit_root
from demigod.security.audit.verify import verify_directory

log = logging.getLogger(__name__)

DRILL_NODE = "drill-gateway"
DRILL_MODEL = "drill"
EVENT_ACTION = "drill.write"
TARGET_RPO_SECONDS = 15 * 60  # the seed's phase-4 KPI
TARGET_MTTR_SECONDS = 30 * 60  # the seed's phase-1 KPI
START_TIMEOUT_SECONDS = 180.0
AGENT_FIRST_PASS_TIMEOUT_SECONDS = 120.0
REQUEST_TIMEOUT_SECONDS = 30.0
REQUEST_PREFIX = "drill-"
COMPLETION = {"model": DRILL_MODEL, "prompt": "once upon", "max_tokens": 2}
PG_DATABASE = "registry"


@dataclass(frozen=True)
class Child:
    """A process the drill started, killed with its whole session (Litestream included)."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Acknowledged:
    """Writes the primary confirmed: id -> wall-clock time of the confirmation."""

    registry_events: dict[int, float] = field(default_factory=dict)
    requests: dict[str, float] = field(default_factory=dict)
    failures: int = 0


@dataclass
class DrillReport:
    registry: str
    destination: str
    write_seconds: float
    written: dict[str, int]
    lost: dict[str, list[Any]]
    lost_is_newest: bool  # per kind, every lost write is newer than every kept one
    rpo_seconds: float
    mttr_seconds: float
    restore: dict[str, Any]
    audit_verified: bool
    gap_recorded: bool
    write_failures: int

    @property
    def ok(self) -> bool:
        return (
            self.rpo_seconds <= TARGET_RPO_SECONDS
            and self.mttr_seconds <= TARGET_MTTR_SECONDS
            and self.audit_verified
            and self.gap_recorded
            and self.lost_is_newest
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rpo_seconds": round(self.rpo_seconds, 3),
            "mttr_seconds": round(self.mttr_seconds, 3),
            "targets": {"rpo_seconds": TARGET_RPO_SECONDS, "mttr_seconds": TARGET_MTTR_SECONDS},
            "registry": self.registry,
            "destination": self.destination,
            "write_seconds": round(self.write_seconds, 1),
            "written": self.written,
            "lost": self.lost,
            "lost_is_newest": self.lost_is_newest,
            "audit_verified": self.audit_verified,
            "gap_recorded": self.gap_recorded,
            "write_failures": self.write_failures,
            "restore": self.restore,
        }


class Drill:
    """One drill in `work_dir`, backing up to a fresh `drill-<stamp>` part of the
    configured destination (a directory in `work_dir` when none is configured)."""

    def __init__(
        self,
        settings: Settings,
        work_dir: Path,
        model: Path,
        *,
        postgres: bool = False,
        duration: float = 20.0,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.settings = settings
        self.work = work_dir
        self.model = model
        self.postgres = postgres
        self.duration = duration
        self.progress = progress
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = settings.ops.backup
        # The configured intervals and timeouts, rehearsed in a part of their own.
        self.backup_config: dict[str, Any] = backup.model_dump(mode="json", exclude={"dir"})
        if backup.dir is not None:
            self.backup_config["dir"] = str(backup.dir / f"drill-{stamp}")
        elif settings.snapshots.bucket:
            self.backup_config["prefix"] = f"{backup.prefix}drill-{stamp}/"
        else:
            self.backup_config["dir"] = str(work_dir / "backup")
        self.children: list[Child] = []
        self.clusters: list[PostgresCluster] = []

    # --- the steps -----------------------------------------------------------------------

    def run(self) -> DrillReport:
        """The whole drill; everything it started is stopped when it returns or raises."""
        try:
            return self._run()
        finally:
            for child in self.children:
                child.kill()
            for cluster in self.clusters:
                cluster.remove()
            self._remove_backup()

    def _remove_backup(self) -> None:
        """Delete the drill's copy from the configured destination: its own fresh folder,
        or its keys under its own prefix."""
        backup = self._backup()
        if backup.dir is not None:
            shutil.rmtree(backup.dir, ignore_errors=True)
            return
        settings = self.settings.model_copy(
            update={"ops": self.settings.ops.model_copy(update={"backup": backup})}
        )
        try:
            target = open_target(settings)
            for key in target.keys(""):
                target.delete(key)
        except BackupError as exc:  # never hide why the drill itself failed
            log.error("the drill's backup copy was not removed: %s", exc)

    def _backup(self) -> BackupConfig:
        return BackupConfig.model_validate(self.backup_config)

    def _run(self) -> DrillReport:
        primary = self._location("primary")
        self.progress("registering the model in the primary's registry")
        self._register(primary)
        if self.postgres:
            self.progress("base backup of the primary's PostgreSQL")
            BackupAgent(primary, open_target(primary), work_dir=self.work).run_once()
        self.progress("starting the backup agent and the mesh")
        agent = self._spawn("backup-agent", ["ops", "backup", "--continuous"], "primary")
        self._wait_for_first_pass(primary, agent)
        mesh_url = self._serve("primary")
        self.progress(f"writing for {self.duration:g}s")
        acks, write_seconds = self._write(primary, mesh_url)

        self.progress("destroying the primary")
        destroyed_at = time.time()
        for child in self.children:
            child.kill()
        self.children.clear()
        if self.postgres:
            self.clusters[0].stop(immediate=True)
            shutil.rmtree(self.clusters[0].data)
        shutil.rmtree(primary.data_dir)

        self.progress("restoring into a fresh location")
        restored = self._location("restored")
        report = restore(
            restored,
            open_target(restored),
            pg_data=self.clusters[1].data if self.postgres else None,
            pg_owner=self.clusters[1].owner if self.postgres else None,
            start_postgres=(lambda _: self.clusters[1].start()) if self.postgres else None,
            progress=lambda step: self.progress(f"restore: {step}"),
        )
        self.progress("starting the restored mesh")
        restored_url = self._serve("restored", wait=False)
        self._first_completion(restored_url)
        mttr = time.time() - destroyed_at
        return self._report(restored, acks, destroyed_at, mttr, write_seconds, report.to_json())

    def _location(self, name: str) -> Settings:
        """Settings of one side: its own data dir, registry, audit chain; the shared backup."""
        config: dict[str, Any] = {
            "data_dir": str(self.work / name),
            "log_json": True,
            "engine": {"n_threads": 1, "slots": 2},
            "security": {"auth": "off"},
            "audit": {"node": DRILL_NODE, "checkpoint_every_seconds": 5.0},
            "canary": {"state_file": str(self.work / name / "canary.json")},
            "snapshots": self.settings.snapshots.model_dump(mode="json"),
            "ops": {"backup": self.backup_config},
        }
        path = self._config_file(name)
        cluster = None
        if self.postgres:
            cluster = PostgresCluster(self.work / f"pg-{name}")
            self.clusters.append(cluster)
            config["database_url"] = cluster.url(PG_DATABASE)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        settings = load_settings(path)
        if cluster is not None and name == "primary":
            self._start_primary_postgres(cluster, settings, path)
        return settings

    def _start_primary_postgres(
        self, cluster: PostgresCluster, settings: Settings, config_file: Path
    ) -> None:
        """initdb and start with WAL archiving to the backup; the server's own OS user
        writes the archive, so a drill directory's WAL folder is handed to it."""
        backup_dir = settings.ops.backup.dir
        if backup_dir is not None and cluster.owner is not None:
            wal = backup_dir / WAL_PREFIX
            wal.mkdir(parents=True, exist_ok=True)
            shutil.chown(wal, cluster.owner, cluster.owner)
        cluster.init()
        cluster.start(archive_settings(settings, sys.executable, config_file))
        cluster.create_database(PG_DATABASE)

    def _config_file(self, name: str) -> Path:
        return self.work / f"{name}.yaml"

    def _register(self, settings: Settings) -> None:
        from demigod.lifecycle.promote import promote
        from demigod.lifecycle.register import register_artefact
        from demigod.registry import Registry

        with Registry.open(settings.database_url, settings.data_dir, actor="drill") as registry:
            version = register_artefact(
                registry, settings.data_dir, DRILL_MODEL, self.model, categories=["chat"]
            )
            promote(
                registry,
                settings.data_dir,
                settings.lifecycle.gates,
                DRILL_MODEL,
                version.label,
                force=True,
                reason="restore drill: a throwaway registry",
            )

    def _wait_for_first_pass(self, settings: Settings, agent: Child) -> None:
        target = open_target(settings)
        deadline = time.monotonic() + AGENT_FIRST_PASS_TIMEOUT_SECONDS
        while target.keys(MANIFEST_KEY) != [MANIFEST_KEY]:
            if agent.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the backup agent did not complete a pass:\n{agent.tail()}")
            time.sleep(0.2)

    def _write(self, settings: Settings, mesh_url: str) -> tuple[Acknowledged, float]:
        from demigod.registry import Registry

        acks = Acknowledged()
        stop = threading.Event()

        def registry_events() -> None:
            with Registry.open(settings.database_url, settings.data_dir, actor="drill") as reg:
                n = 0
                while not stop.is_set():
                    reg.record_event(DRILL_MODEL, EVENT_ACTION, details={"n": n})
                    acks.registry_events[n] = time.time()
                    n += 1
                    stop.wait(0.05)

        def requests() -> None:
            with httpx.Client(base_url=mesh_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
                n = 0
                while not stop.is_set():
                    request_id = f"{REQUEST_PREFIX}{n}"
                    try:
                        response = client.post(
                            "/v1/completions", json=COMPLETION, headers={"x-request-id": request_id}
                        )
                    except httpx.HTTPError:
                        response = None
                    if response is not None and response.status_code == 200:
                        acks.requests[request_id] = time.time()
                    else:
                        acks.failures += 1
                    n += 1

        threads = [threading.Thread(target=t, daemon=True) for t in (registry_events, requests)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        stop.wait(self.duration)
        stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS)
        return acks, time.monotonic() - started

    def _serve(self, name: str, *, wait: bool = True) -> str:
        port = free_port()
        child = self._spawn(f"{name}-mesh", ["serve", "--port", str(port)], name)
        url = f"http://127.0.0.1:{port}"
        if wait:
            try:
                wait_until_ready(child.process, f"{url}/readyz", timeout=START_TIMEOUT_SECONDS)
            except ServerNotReadyError as exc:
                raise RuntimeError(f"the {name} mesh {exc}:\n{child.tail()}") from exc
        return url

    def _first_completion(self, url: str) -> None:
        mesh = self.children[-1]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if mesh.process.poll() is not None:
                raise RuntimeError(f"the restored mesh exited:\n{mesh.tail()}")
            try:
                if (
                    httpx.post(f"{url}/v1/completions", json=COMPLETION, timeout=5).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the restored mesh never answered:\n{mesh.tail()}")

    def _spawn(self, name: str, args: list[str], location: str) -> Child:
        log = self.work / f"{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "demigod", *args, "--config", str(self._config_file(location))],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so it is killed with its children (Litestream)
            cwd=self.work,
        )
        child = Child(process, log)
        self.children.append(child)
        return child

    # --- measuring -----------------------------------------------------------------------

    def _report(
        self,
        restored: Settings,
        acks: Acknowledged,
        destroyed_at: float,
        mttr: float,
        write_seconds: float,
        restore_json: dict[str, Any],
    ) -> DrillReport:
        from demigod.registry import Registry

        with Registry.open(restored.database_url, restored.data_dir, migrate=False) as registry:
            kept_events = {
                int(event.details["n"])
                for event in registry.events(DRILL_MODEL, limit=10**7)
                if event.action == EVENT_ACTION
            }
        records = [
            AuditRecord.from_line(line)
            for _, path in list_segments(audit_root(restored) / DRILL_NODE)
            for line in path.read_bytes().splitlines()
        ]
        kept_requests = {r.data.get("request_id") for r in records if r.kind == "request"}
        lost_events = sorted(set(acks.registry_events) - kept_events)
        lost_requests = sorted(
            set(acks.requests) - kept_requests, key=lambda i: int(i.removeprefix(REQUEST_PREFIX))
        )
        lost_times = [acks.registry_events[n] for n in lost_events] + [
            acks.requests[i] for i in lost_requests
        ]
        # Each store is shipped on its own, so "no holes" holds per kind of write.
        no_holes = _lost_are_newest(acks.registry_events, kept_events) and _lost_are_newest(
            acks.requests, kept_requests
        )
        reports = verify_directory(audit_root(restored))
        return DrillReport(
            registry="postgresql" if self.postgres else "sqlite",
            destination=open_target(restored).description,
            write_seconds=write_seconds,
            written={
                "registry_events": len(acks.registry_events),
                "audited_requests": len(acks.requests),
            },
            lost={"registry_events": lost_events, "audited_requests": lost_requests},
            lost_is_newest=no_holes,
            rpo_seconds=destroyed_at - min(lost_times) if lost_times else 0.0,
            mttr_seconds=mttr,
            restore=restore_json,
            audit_verified=bool(reports) and all(r.ok for r in reports),
            gap_recorded=any(r.kind == RESTORE_KIND for r in records),
            write_failures=acks.failures,
        )


def run_drill(
    settings: Settings,
    model: Path,
    *,
    postgres: bool = False,
    duration: float = 20.0,
    work_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> DrillReport:
    """Run one drill (see the module docstring); `work_dir` is kept when given, else a
    temporary folder is used and removed. Raises RuntimeError when a step fails."""

    def drill(folder: Path) -> DrillReport:
        return Drill(
            settings, folder, model, postgres=postgres, duration=duration, progress=progress
        ).run()

    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        return drill(work_dir)
    with tempfile.TemporaryDirectory(prefix="demigod-drill-") as folder:
        os.chmod(folder, 0o755)  # the PostgreSQL server's own user works in it too
        return drill(Path(folder))


def _lost_are_newest(acknowledged: dict[Any, float], kept: set[Any]) -> bool:
    """Every acknowledged write the restore lacks came after every one it has."""
    lost = [when for key, when in acknowledged.items() if key not in kept]
    survived = [when for key, when in acknowledged.items() if key in kept]
    return not lost or not survived or min(lost) >= max(survived)
