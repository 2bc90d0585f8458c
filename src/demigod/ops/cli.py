"""`demigod ops ...`: operating a deployed mesh. One module per concept beside this one
(drift, ...); each adds its commands to `ops_app` here."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from demigod.cli_support import ConfigOption, JsonOption, console, settings_or_exit

if TYPE_CHECKING:
    from demigod.config import Settings
    from demigod.ops.drift_check import DriftReport
    from demigod.ops.model_files import ModelFilesReport

ops_app = typer.Typer(
    help="Operate a deployed mesh: smoke tests, drift between git and what runs, backups and "
    "restore drills, one-host autoscaling.",
    no_args_is_help=True,
)

LockOption = Annotated[
    Path | None,
    typer.Option("--lock", help="models lock file (default: ops.drift.lock_file)"),
]
EXIT_DRIFT = 1


@ops_app.command("lock")
def lock_command(
    out: LockOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the models lock file from the registry: each model's `stable` and `candidate`
    version and sha256. Commit it with mesh.yaml; `ops drift` checks against it."""
    from demigod.ops.lockfile import lock_from_registry, write_lock
    from demigod.registry import Registry, RegistryError

    settings = settings_or_exit(config)
    path = out or settings.ops.drift.lock_file
    try:
        with Registry.open(settings.database_url, settings.data_dir, actor="demigod ops") as reg:
            lock = lock_from_registry(reg)
    except RegistryError as exc:
        console.print(f"[red]registry:[/red] {exc}")
        raise typer.Exit(2) from exc
    write_lock(path, lock)
    if as_json:
        typer.echo(json.dumps({"lock_file": str(path), **lock.model_dump()}))
    else:
        console.print(f"wrote {path}: {len(lock.models)} models")


@ops_app.command("drift")
def drift_command(
    lock: LockOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="check every ops.drift.interval_seconds and export demigod_drift{kind} on "
            "ops.drift.metrics_port until interrupted",
        ),
    ] = False,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check",
            help="only these parts (repeat): registry, mesh, manifest, containers (default: "
            "all; manifest and containers where ops.drift names what to compare)",
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare what git declares (mesh.yaml, the models lock file, the committed rendered
    manifests) with the registry, the running mesh (the gateway's /admin/state and its
    workers') and the containers running it (Podman or the cluster); print each
    difference.

    Kinds: alias, model_version, model_missing, model_unexpected, canary_weight, config,
    replica, manifest, container, unreachable (docs/operations.md#drift). Exit status: 0
    no drift, 1 drift, 2 bad usage (config or lock file).
    """
    from demigod.ops.drift_check import CHECKS, check_drift
    from demigod.ops.lockfile import LockError

    if unknown := sorted(set(check or []) - set(CHECKS)):
        raise typer.BadParameter(f"unknown check {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    checks = [name for name in CHECKS if name in check] if check else CHECKS
    settings = settings_or_exit(config)

    def show(report: DriftReport) -> None:
        if as_json:
            typer.echo(json.dumps(report.to_json()))
        else:
            _print_report(report)

    if watch:
        from demigod.ops.drift_watch import watch as watch_drift

        console.print(
            f"checking every {settings.ops.drift.interval_seconds:g}s; metrics on "
            f"http://{settings.host}:{settings.ops.drift.metrics_port}/metrics"
        )
        try:
            watch_drift(settings, lock, show, threading.Event(), checks)
        except KeyboardInterrupt:
            return
        return
    try:
        report = check_drift(settings, lock, checks)
    except LockError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    show(report)
    if report.drifts:
        raise typer.Exit(EXIT_DRIFT)


@ops_app.command("smoke")
def smoke_command(
    url: Annotated[
        str | None, typer.Option(help="the gateway (default: ops.gateway_url, else host:port)")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Smoke-test a deployed gateway: one chat completion (model auto) and the deep probe
    (a generation through every model). Exit status 0 pass, 1 fail."""
    from demigod.ops.smoke import smoke_test
    from demigod.ops.target import api_key, gateway_url

    settings = settings_or_exit(config)
    target = url or gateway_url(settings)
    with console.status(f"smoke-testing {target}…", spinner="dots"):
        result = smoke_test(target, api_key(settings), settings.ops.timeout_seconds)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    elif result.passed:
        console.print(f"[green]pass[/green] {target}: chat {result.chat_text!r}, deep probe ok")
    else:
        console.print(f"[red]fail[/red] {target}: " + "; ".join(result.errors))
    if not result.passed:
        raise typer.Exit(1)


def _print_report(report: DriftReport) -> None:
    checked = ", ".join(report.nodes) or "no running process"
    if not report.drifts:
        console.print(f"[green]no drift[/green] ({report.lock_file}; checked {checked})")
        return
    table = Table("kind", "subject", "declared", "running", "where", title="drift")
    for drift in report.drifts:
        table.add_row(drift.kind, drift.subject, drift.declared, drift.running, drift.where)
    Console().print(table)
    console.print(f"[red]{len(report.drifts)} differences[/red] (checked {checked})")


@ops_app.command("backup")
def backup_command(
    continuous: Annotated[
        bool,
        typer.Option(
            "--continuous",
            help="keep copying until stopped (SIGTERM, Ctrl-C): Litestream for a SQLite "
            "registry, new audit records and changed state files every "
            "ops.backup.interval_seconds; the sidecar / service mode",
        ),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the mesh's state off the host: the registry (Litestream replica of SQLite, or a
    PostgreSQL base backup), the audit log, the signing and API keys, canary state and the
    model files, to ops.backup.dir or the snapshots bucket (docs/operations.md#backups).

    Without --continuous: one complete copy, then exit (0 ok, 1 failed)."""
    import signal

    from demigod.ops.backup_agent import BackupAgent, BackupPass
    from demigod.ops.backup_target import BackupError, open_target

    settings = settings_or_exit(config)
    try:
        agent = BackupAgent(settings, open_target(settings), work_dir=settings.data_dir / "backup")
        if not continuous:
            with console.status("copying"):
                done = agent.run_once()
            _print_json_or(as_json, done.to_json(), f"backed up to {agent.target.description}")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

        def show(done: BackupPass) -> None:
            if as_json and (done.audit_bytes or done.state_files or done.errors):
                typer.echo(json.dumps(done.to_json()))

        console.print(
            f"backing up to {agent.target.description} every "
            f"{settings.ops.backup.interval_seconds:g}s; Ctrl-C stops"
        )
        try:
            agent.run(stop, show)
        except KeyboardInterrupt:
            stop.set()
    except BackupError as exc:
        console.print(f"[red]backup:[/red] {exc}")
        raise typer.Exit(1) from exc


@ops_app.command("restore")
def restore_command(
    to_time: Annotated[
        datetime | None,
        typer.Option(
            "--to-time",
            help="registry state at this moment (ISO 8601, UTC unless it says otherwise); "
            "default: the newest. The audit log is always restored whole",
        ),
    ] = None,
    pg_data: Annotated[
        Path | None,
        typer.Option(help="PostgreSQL registry: the empty data directory to recover into"),
    ] = None,
    pg_start: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL registry: shell command that starts the server on --pg-data "
            "(e.g. 'systemctl start postgresql@16-main'); the restore waits for it to open"
        ),
    ] = None,
    pg_owner: Annotated[
        str | None, typer.Option(help="OS user the restored files are given to (postgres)")
    ] = None,
    models_only: Annotated[
        bool,
        typer.Option("--models-only", help="only verify and refetch model files (after --pg-data)"),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore from the backup into the location the config describes (a fresh data_dir;
    nothing there is overwritten): keys and state, the registry, the audit log (each chain
    continued by an `audit.restore` record naming the gap), then every model file checked
    against the registry's sha256 and refetched when missing or corrupt, from the backup
    else the snapshot store (docs/operations.md#disaster-recovery-runbook). Exit 1 when a
    model file could not be brought back; stderr says why, per source.
    """
    import subprocess

    from demigod.ops.backup_target import BackupError, open_target
    from demigod.ops.restore import restore, restore_models_only

    settings = settings_or_exit(config)
    when = None if to_time is None else _aware(to_time)

    def start_postgres(_: object) -> None:
        assert pg_start is not None
        subprocess.run(pg_start, shell=True, check=True)

    try:
        target = open_target(settings)
        if models_only:
            models = restore_models_only(settings, target)
            _print_json_or(as_json, models.to_json(), f"model files: {models.to_json()}")
            _print_model_problems(models)
            raise typer.Exit(1 if models.missing else 0)
        report = restore(
            settings,
            target,
            to_time=when,
            pg_data=pg_data,
            pg_owner=pg_owner,
            start_postgres=start_postgres if pg_start else None,
            progress=lambda step: console.print(f"restoring {step}"),
        )
    except (BackupError, subprocess.CalledProcessError) as exc:
        console.print(f"[red]restore:[/red] {exc}")
        raise typer.Exit(1) from exc
    _print_json_or(as_json, report.to_json(), f"restored from {report.source}")
    for pending in report.pending:
        console.print(f"[yellow]still to do:[/yellow] {pending}")
    if report.models is not None:
        _print_model_problems(report.models)
        if report.models.missing:
            raise typer.Exit(1)


def _print_model_problems(models: ModelFilesReport) -> None:
    """What an operator must act on after the model step, on stderr beside the JSON."""
    for bad in models.bad_copies:
        console.print(f"[yellow]bad copy:[/yellow] {bad}")
    for missing in models.missing:
        console.print(f"[red]model file missing:[/red] {missing}")


@ops_app.command("drill")
def drill_command(
    duration: Annotated[
        float, typer.Option(min=1, help="seconds of continuous writes before the loss")
    ] = 20.0,
    postgres: Annotated[
        bool,
        typer.Option(
            "--postgres", help="a PostgreSQL registry (a throwaway cluster) instead of SQLite"
        ),
    ] = False,
    model: Annotated[
        Path | None,
        typer.Option(help="GGUF file the drill's mesh serves; default: a tiny model, built once"),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="keep the drill's files here (default: a temp folder)")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rehearse a disaster with throwaway data: run a mesh and the backup agent, write
    registry events and audited requests continuously, destroy the primary (processes
    killed, data deleted), restore into a fresh location, start the mesh there. Reports
    the measured RPO and MTTR and what was lost. Backs up to a fresh `drill-<time>` part
    of the configured destination. Exit 0 when the targets (RPO <= 15 min, MTTR <= 30 min)
    are met and the restored audit log verifies with its gap recorded."""
    from demigod.ops.drill import run_drill

    settings = settings_or_exit(config)
    gguf = model or _drill_model(settings)
    try:
        with console.status("drill") as status:
            report = run_drill(
                settings,
                gguf,
                postgres=postgres,
                duration=duration,
                work_dir=work_dir,
                progress=lambda step: status.update(f"drill: {step}"),
            )
    except RuntimeError as exc:
        console.print(f"[red]drill failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        table = Table("measure", "value", title=f"restore drill ({report.registry} registry)")
        table.add_row("RPO (oldest lost acknowledged write)", f"{report.rpo_seconds:.2f} s")
        table.add_row("MTTR (loss -> first completion)", f"{report.mttr_seconds:.2f} s")
        for kind, count in report.written.items():
            table.add_row(f"{kind} written / lost", f"{count} / {len(report.lost[kind])}")
        table.add_row("audit log verifies", str(report.audit_verified))
        table.add_row("gap recorded in the chain", str(report.gap_recorded))
        Console().print(table)
    if not report.ok:
        raise typer.Exit(1)


@ops_app.command("pg-archive-settings")
def pg_archive_settings_command(config: ConfigOption = None) -> None:
    """Print the postgresql.conf lines that archive the PostgreSQL registry's WAL to the
    backup destination (archive_timeout = ops.backup.pg_archive_timeout_seconds: the RPO).
    """
    import sys

    from demigod.ops.postgres_backup import archive_settings

    settings = settings_or_exit(config)
    for name, value in archive_settings(settings, sys.executable, config).items():
        quoted = value.replace("'", "''")
        typer.echo(f"{name} = '{quoted}'")


def _drill_model(settings: Settings) -> Path:
    """A tiny random-weights model, built once under the data dir (seconds)."""
    from demigod.lifecycle.demo import build_test_model

    folder = settings.data_dir / "drill-model"
    built = folder / "demigod-test.Q4_0.gguf"
    if not built.is_file():
        with console.status("building the drill's tiny model"):
            build_test_model(folder, data_dir=settings.data_dir)
    return built


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _print_json_or(as_json: bool, data: object, summary: str) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        console.print(summary)


@ops_app.command("autoscale")
def autoscale_command(
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="the model whose `demigod worker` processes are scaled"),
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run MODEL's workers on this host and scale them between ops.autoscale's
    min_replicas and max_replicas with the Kubernetes HPA algorithm, on the workers' queue
    depth (and memory, GPU memory when targeted). The replica set is published to
    ops.autoscale.replicas_dir for gateways with that gateway.replicas_dir; a replica
    leaves the set and finishes its requests before it stops (docs/operations.md#autoscaling).
    Ctrl-C or SIGTERM drains and stops every worker."""
    import signal

    from demigod.scaling.autoscaler import Autoscaler, Tick
    from demigod.scaling.replicas import WorkerProcesses

    settings = settings_or_exit(config)
    scaling = settings.ops.autoscale
    extra = ["--config", str(config.resolve())] if config is not None else []
    processes = WorkerProcesses(model, settings.data_dir / "autoscale", extra_args=extra)
    scaler = Autoscaler(model, scaling, processes)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def show(tick: Tick) -> None:
        if as_json:
            typer.echo(json.dumps(tick.to_json()), nl=True)
        else:
            console.print(
                f"{tick.replicas} replicas ({tick.ready} ready) -> {tick.desired}: {tick.reason}"
            )

    console.print(
        f"scaling {model} between {scaling.min_replicas} and {scaling.max_replicas} workers; "
        f"replica set in {scaling.replicas_dir}"
    )
    try:
        scaler.run(stop, show)
    except KeyboardInterrupt:
        stop.set()
