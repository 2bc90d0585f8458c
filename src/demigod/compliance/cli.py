"""`demigod compliance`: EU AI Act documentation inputs (docs/audit.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from demigod.cli_support import console, settings_or_exit

compliance_app = typer.Typer(
    help="EU AI Act documentation: what the system knows about its models, evaluations, "
    "lifecycle and record-keeping.",
    no_args_is_help=True,
)


@compliance_app.command("report")
def report(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of Markdown")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="write to this file instead of stdout")
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="also verify the audit chains (slower on large logs)")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="YAML config file (default: $DEMIGOD_CONFIG or ./mesh.yaml)"
        ),
    ] = None,
) -> None:
    """Annex IV inputs: models and versions served (config and registry), evaluations and
    promotion gates, lifecycle events, Article 12 logging coverage, retention. Parts that
    are not set up are named as gaps (e.g. "registry not configured")."""
    from demigod.compliance.report import build_report, to_markdown

    settings = settings_or_exit(config)
    built = build_report(settings, verify=verify)
    text = json.dumps(built.to_json(), indent=2) + "\n" if as_json else to_markdown(built)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]cannot write {out}:[/red] {exc.strerror}")
        raise typer.Exit(2) from exc
    console.print(f"wrote {out} ({len(built.gaps)} gap(s) listed)")
