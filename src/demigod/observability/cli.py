"""`demigod top` and `demigod report energy` (in the `report` group of demigod.reports.cli):
a running mesh's metrics, read from a terminal."""

from __future__ import annotations

import json
import time
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from demigod.cli_support import console
from demigod.observability.scrape import (
    EnergyStats,
    ModelStats,
    Snapshot,
    energy_stats,
    model_stats,
    scrape,
)

UrlOption = Annotated[str, typer.Option(help="the gateway's base URL")]


def _scrape_or_exit(url: str) -> Snapshot:
    """One scrape of `url`; exits 1 with a message when the mesh does not answer."""
    try:
        return scrape(url)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot read {url}/metrics:[/red] {exc}")
        raise typer.Exit(1) from exc


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _top_table(rows: list[ModelStats], url: str) -> Table:
    table = Table(
        "model",
        "req/s",
        "p95",
        "queue",
        "in flight",
        "5xx",
        "cache hits",
        "probe",
        "canary weights",
        title=f"demigod top — {url}",
    )
    for row in rows:
        table.add_row(
            row.model,
            f"{row.rps:.2f}",
            _fmt(row.p95_seconds, "{:.3f}s"),
            f"{row.queue_depth:g}",
            f"{row.inflight:g}",
            _fmt(row.error_ratio, "{:.1%}"),
            _fmt(row.state_cache_hit_ratio, "{:.0%}"),
            "-" if row.probe_ok is None else ("ok" if row.probe_ok else "[red]failing[/red]"),
            " ".join(f"{v}={w:.0%}" for v, w in sorted(row.canary_weights.items())) or "-",
        )
    return table


def top(
    url: UrlOption = "http://127.0.0.1:8080",
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between refreshes")] = 2.0,
    once: Annotated[bool, typer.Option(help="print one refresh and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="with --once: print JSON")] = False,
) -> None:
    """A live view of the mesh, what htop is to processes.

    Per model: requests/s, p95 latency, queue depth, requests in flight, 5xx ratio,
    state-cache hit ratio, deep-probe status and canary weights. Rates are over each
    refresh interval; p95 too when the model had traffic, else since the mesh started.
    """
    before = _scrape_or_exit(url)
    if once:
        time.sleep(interval)
        rows = model_stats(before, _scrape_or_exit(url))
        if as_json:
            typer.echo(json.dumps([row.as_dict() for row in rows]))
        else:
            Console().print(_top_table(rows, url))
        return
    with Live(_top_table([], url), console=Console(), screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                after = _scrape_or_exit(url)
                live.update(_top_table(model_stats(before, after), url))
                before = after
        except KeyboardInterrupt:
            pass


def _energy_table(rows: list[EnergyStats], url: str) -> Table:
    table = Table(
        "model",
        "source",
        "joules",
        "output tokens",
        "J/token",
        "decode tok/s",
        "requests",
        title=f"energy per token since start — {url}",
    )
    for row in rows:
        table.add_row(
            row.model,
            ",".join(row.sources) or "-",
            f"{row.joules:.2f}",
            f"{row.output_tokens:g}",
            _fmt(row.joules_per_token, "{:.4f}"),
            _fmt(row.decode_tokens_per_second, "{:.1f}"),
            f"{row.requests:g}",
        )
    return table


def report_energy(
    url: UrlOption = "http://127.0.0.1:8080",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Joules per output token and decode tokens/s per model.

    From a running mesh's counters since it started. The source column says where the
    joules come from: rapl, nvml or estimate (see docs/operations.md#energy).
    """
    rows = energy_stats(_scrape_or_exit(url))
    if as_json:
        typer.echo(json.dumps([row.as_dict() for row in rows]))
        return
    Console().print(_energy_table(rows, url))
