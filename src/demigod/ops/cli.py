"""`demigod ops ...`: operating a deployed mesh. One module per concept beside this one
(drift, ...); each adds its commands to `ops_app` here."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from demigod.cli_support import ConfigOption, JsonOption, console, settings_or_exit

if TYPE_CHECKING:
    from demigod.ops.drift_check import DriftReport

ops_app = typer.Typer(
    help="Operate a deployed mesh: smoke tests, drift between git and what runs.",
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
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare what git declares (mesh.yaml, the models lock file) with the registry and
    the running mesh (the gateway's /admin/state and its workers'); print each difference.

    Kinds: alias, model_version, model_missing, model_unexpected, canary_weight, config,
    replica, unreachable (docs/operations.md#drift). Exit status: 0 no drift, 1 drift,
    2 bad usage (config or lock file).
    """
    from demigod.ops.drift_check import check_drift
    from demigod.ops.lockfile import LockError

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
            watch_drift(settings, lock, show, threading.Event())
        except KeyboardInterrupt:
            return
        return
    try:
        report = check_drift(settings, lock)
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
