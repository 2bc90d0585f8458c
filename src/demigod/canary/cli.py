"""`demigod canary start|status|promote|abort MODEL`: run and steer canary rollouts."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from demigod.canary.controller import CanaryController, CanaryError, WindowReport, end_rollout
from demigod.canary.decision import WindowStats
from demigod.canary.store import CanaryStore, open_store
from demigod.cli_support import ConfigOption, JsonOption, console, fail, settings_or_exit
from demigod.config import Settings
from demigod.errors import UnknownModelError
from demigod.evaluation.hemlock import Case
from demigod.routing.versions import split_versions

canary_app = typer.Typer(
    help=(
        "Canary rollouts between a model's stable and candidate versions (two `models` or "
        "`upstreams` entries with the same name; docs/routing.md). `start` steps the "
        "candidate's weight after each healthy analysis window and rolls it back to 0 % "
        "when it is worse."
    ),
    no_args_is_help=True,
)

ModelArgument = Annotated[str, typer.Argument(help="the model name with two versions")]
EXIT_ROLLED_BACK = 1


def _store(settings: Settings) -> CanaryStore:
    from demigod.security.audit.events import AuditedCanaryStore

    # Every canary decision is also an audit record (docs/audit.md).
    return AuditedCanaryStore(open_store(settings), settings)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _describe(report: WindowReport) -> str:
    def one(name: str, stats: WindowStats) -> str:
        p95 = "-" if stats.p95_seconds is None else f"{stats.p95_seconds:.3f}s"
        return (
            f"{name}: {stats.requests} req, {_percent(stats.error_rate)} err, p95 {p95}, "
            f"probes {stats.probes_passed}/{stats.probes}"
        )

    decision = report.decision
    return (
        f"[bold]{decision.action}[/bold] at {report.weight:g}% -> {decision.weight:g}%: "
        f"{decision.reason}\n  {one('stable', report.stable)}\n  "
        f"{one('candidate', report.candidate)}"
    )


def _versions(settings: Settings, model: str) -> tuple[str, str]:
    """MODEL's (stable, candidate) version labels: from the config's `models` or
    `upstreams` (first and second entry of the name: embedded, or workers behind the
    gateway), else from the registry's `stable` and `candidate` aliases."""
    with_candidates: list[str] = []
    for entries in (settings.models, settings.upstreams):
        stable, found = split_versions(entries)
        with_candidates += [c.name for c in found]
        candidate = next((c for c in found if c.name == model), None)
        if candidate is not None:
            return next(c.version for c in stable if c.name == model), candidate.version
    from demigod.registry import CANDIDATE, STABLE, Registry, RegistryError

    try:
        with Registry.open(settings.database_url, settings.data_dir) as registry:
            aliases = registry.aliases(model)
    except (RegistryError, UnknownModelError):
        aliases = {}
    labels = {alias: info.version for alias, info in aliases.items()}
    if {STABLE, CANDIDATE} <= labels.keys() and labels[STABLE] != labels[CANDIDATE]:
        return labels[STABLE], labels[CANDIDATE]
    fail(
        f"model {model!r} has no candidate version (a second `models` or `upstreams` entry, "
        f"or the registry's `candidate` alias); with one: "
        f"{', '.join(with_candidates) or 'none in the config'}"
    )


def _probe_cases(settings: Settings) -> list[Case]:
    from demigod.evaluation.hemlock import HemlockError, load_suite

    try:
        return load_suite(settings.lifecycle.hemlock_suite).probe_cases()
    except HemlockError as exc:
        fail(str(exc))


@canary_app.command("start")
def start(
    model: ModelArgument,
    url: Annotated[
        str | None,
        typer.Option(help="the gateway to analyse [default: http://HOST:PORT from the config]"),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start MODEL's canary and follow it to the end (promoted or rolled back).

    Each `canary.window_seconds` the gateway's /metrics are compared per version (5xx
    rate, p95 latency) together with deep probes sent to each version; the weight then
    steps through `canary.steps`, holds, or goes back to 0 %. Exit status: 0 promoted,
    1 rolled back or aborted, 2 bad usage.
    """
    settings = settings_or_exit(config)
    stable_version, candidate_version = _versions(settings, model)
    controller = CanaryController(
        _store(settings),
        settings.canary,
        url or f"http://{settings.host}:{settings.port}",
        model,
        stable=stable_version,
        candidate=candidate_version,
        probe_cases=_probe_cases(settings),
    )

    def report(window: WindowReport) -> None:
        if as_json:
            typer.echo(json.dumps({"event": "window", **asdict(window)}))
        else:
            console.print(_describe(window))

    console.print(
        f"canary of {model}: {stable_version} (stable) vs {candidate_version} (candidate), "
        f"steps {settings.canary.steps}, windows of {settings.canary.window_seconds:g}s"
    )
    try:
        with console.status(f"analysing {model}…", spinner="dots"):
            final = controller.run(report)
    except CanaryError as exc:
        fail(str(exc))
    except httpx.HTTPError as exc:
        fail(f"cannot read the gateway's metrics: {exc}")
    if as_json:
        typer.echo(json.dumps({"event": "end", **asdict(final)}))
    else:
        colour = "green" if final.status == "promoted" else "red"
        console.print(f"[{colour}]{model}: {final.status} at {final.weight:g}%[/{colour}]")
    if final.status != "promoted":
        raise typer.Exit(EXIT_ROLLED_BACK)


@canary_app.command("status")
def status(
    model: Annotated[str | None, typer.Argument(help="one model; default: all")] = None,
    events: Annotated[int, typer.Option(help="recent events to show per model")] = 5,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each rollout's versions, candidate weight, status and recent events."""
    store = _store(settings_or_exit(config))
    states = {n: s for n, s in store.states().items() if model is None or n == model}
    if model is not None and not states:
        fail(f"no canary of {model!r} in the store")
    recent = {name: store.events(name)[-events:] if events else [] for name in states}
    if as_json:
        rows = [
            {**asdict(state), "events": [asdict(e) for e in recent[name]]}
            for name, state in states.items()
        ]
        typer.echo(json.dumps(rows))
        return
    table = Table("model", "stable", "candidate", "weight %", "status", "reason")
    for state in states.values():
        table.add_row(
            state.model,
            state.stable,
            state.candidate,
            f"{state.weight:g}",
            state.status,
            state.reason,
        )
    Console().print(table)
    for name, found in recent.items():
        for event in found:
            Console().print(f"  {name}: {event.action} -> {event.weight:g}%: {event.reason}")


def _end(model: str, action: str, config: Path | None, as_json: bool) -> None:
    try:
        state = end_rollout(_store(settings_or_exit(config)), model, action)
    except CanaryError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(asdict(state)))
    else:
        console.print(f"{model}: {state.status}, candidate {state.candidate} at {state.weight:g}%")


@canary_app.command("promote")
def promote(model: ModelArgument, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Send all of MODEL's traffic to its candidate now (ends a running `start`).

    With the static config, make the candidate the first `models` entry afterwards."""
    _end(model, "promote", config, as_json)


@canary_app.command("abort")
def abort(model: ModelArgument, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Send all of MODEL's traffic back to stable now (ends a running `start`)."""
    _end(model, "abort", config, as_json)
