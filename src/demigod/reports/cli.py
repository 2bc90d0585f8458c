"""`demigod report`: energy per token from a running mesh, and the one-pager."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from demigod.cli_support import ConfigOption, console, fail, settings_or_exit
from demigod.observability.cli import UrlOption, report_energy

report_app = typer.Typer(
    help="Reports from a running mesh's metrics: energy per token, the one-pager.",
    no_args_is_help=True,
)
report_app.command("energy")(report_energy)

FORMATS = (".pdf", ".html")


@report_app.command("one-pager")
def one_pager(
    out: Annotated[Path, typer.Option("--out", help="FILE.pdf or FILE.html")],
    url: UrlOption = "http://127.0.0.1:8080",
    prometheus: Annotated[
        str | None,
        typer.Option(help="read the mesh's figures from this Prometheus instead of --url"),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            help="with --prometheus: a PromQL range (30d) to take the figures over; "
            "default: since each process started"
        ),
    ] = None,
    energy: Annotated[
        Path | None,
        typer.Option(
            help="an energy comparison recorded by bench/energy.py --record; "
            "default: the one shipped with this version"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="also print the figures used, as JSON")
    ] = False,
    config: ConfigOption = None,
) -> None:
    # A raw docstring: typer reads help as rich markup, where "[report]" needs its backslash.
    r"""The seed's one-pager for funding applications: p95 latency, energy saved by Mamba
    against Transformers, EU AI Act policies, and a figure.

    Latency and the mesh's own energy come from a running gateway's /metrics (--url) or
    from a Prometheus that scrapes it (--prometheus); the Mamba/Transformer comparison
    from the recorded bench/energy.py run; the policies from `demigod compliance report`
    on this host's config, registry and audit log. Needs the report extra
    (pip install 'demigod\[report]').
    """
    from demigod.compliance.report import build_report
    from demigod.reports.energy import EnergyComparison, EnergyRecordError
    from demigod.reports.mesh import PrometheusError, mesh_figures, read_gateway, read_prometheus
    from demigod.reports.one_pager import OnePager
    from demigod.reports.plot import figure_png
    from demigod.reports.policies import policies
    from demigod.reports.render import to_html, to_pdf

    if out.suffix.lower() not in FORMATS:
        fail(f"--out must end in {' or '.join(FORMATS)}: {out}")
    if window is not None and prometheus is None:
        fail("--window needs --prometheus (a gateway's counters run since it started)")
    settings = settings_or_exit(config)
    where = prometheus or url
    try:
        snapshot, source = read_prometheus(prometheus, window) if prometheus else read_gateway(url)
    except (httpx.HTTPError, PrometheusError) as exc:
        fail(f"cannot read the mesh's metrics from {where}: {exc}", code=1)
    try:
        comparison = EnergyComparison.load(energy) if energy else EnergyComparison.load()
    except (OSError, EnergyRecordError) as exc:
        fail(f"cannot read the energy comparison: {exc}")
    page = OnePager.of(
        mesh_figures(snapshot, source, window),
        comparison,
        policies(build_report(settings), settings),
    )
    png = figure_png(page.energy, page.mesh)
    try:
        if out.suffix.lower() == ".pdf":
            out.write_bytes(to_pdf(page, png))
        else:
            out.write_text(to_html(page, png), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    if as_json:
        typer.echo(json.dumps(page.to_json()))
    console.print(f"wrote {out}")
