"""`demigod audit`: verify the tamper-evident log and export it for auditors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from demigod.cli_support import ConfigOption, console, settings_or_exit

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify its chain, signatures and RFC 3161 "
    "timestamps; export a time range for auditors (docs/audit.md).",
    no_args_is_help=True,
)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="a chain folder, or a folder of chains (one per node) [default: audit.dir, "
        "else <data_dir>/audit]",
    ),
]


def _directory(directory: Path | None, config: Path | None) -> Path:
    from demigod.security.audit.store import audit_root

    folder = directory or audit_root(settings_or_exit(config))
    if not folder.is_dir():
        console.print(f"[red]no audit log at {folder}[/red]")
        raise typer.Exit(2)
    return folder


def _date(value: str, name: str) -> datetime:
    from demigod.security.audit.records import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date or time", param_hint=name
        ) from exc


@audit_app.command("verify")
def verify(
    directory: DirOption = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="pin the checkpoint key(s) (PEM, repeatable); default: the keys stored "
            "beside the log, with a warning",
        ),
    ] = None,
    tsa_cert: Annotated[
        list[Path] | None,
        typer.Option(
            "--tsa-cert",
            help="trusted TSA certificate or CA (PEM, repeatable) [default: audit.tsa_cert_path]",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="fail on checkpoints without a timestamp, too")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the reports as JSON")] = False,
    config: ConfigOption = None,
) -> None:
    """Check every record's hash and link, every checkpoint's Merkle root, Ed25519 signature
    and RFC 3161 timestamp; name the first bad record. Exit 1 when anything fails."""
    from demigod.security.audit.signing import SigningKeyError, load_public_key
    from demigod.security.audit.timestamping import load_certificates
    from demigod.security.audit.verify import reports_json, verify_directory

    folder = _directory(directory, config)
    try:
        keys = [load_public_key(path.read_bytes()) for path in public_key or []] or None
        tsa_paths = tsa_cert or []
        if not tsa_paths and (configured := settings_or_exit(config).audit.tsa_cert_path):
            tsa_paths = [configured]
        trusted = [c for path in tsa_paths for c in load_certificates(path.read_bytes())]
    except (OSError, SigningKeyError, ValueError) as exc:
        console.print(f"[red]cannot load a key or certificate:[/red] {exc}")
        raise typer.Exit(2) from exc
    reports = verify_directory(
        folder, public_keys=keys, trusted_tsa=trusted, require_timestamps=strict
    )
    if not reports:
        console.print(f"[red]no audit chain in {folder}[/red]")
        raise typer.Exit(2)
    if as_json:
        typer.echo(reports_json(reports))
    else:
        table = Table("chain", "records", "checkpoints", "timestamped", "unsealed", "result")
        for report in reports:
            first = report.first_bad
            unsealed = 0 if report.last_seq is None else report.last_seq - report.sealed_through
            table.add_row(
                report.directory.name,
                str(report.records),
                str(report.checkpoints),
                str(report.timestamped),
                str(unsealed),
                "[green]ok[/green]" if first is None else f"[red]FAILED at {first.seq}[/red]",
            )
        Console().print(table)
        for report in reports:
            if (first := report.first_bad) is not None:
                typer.echo(f"{report.directory.name}: FIRST BAD RECORD {first.seq}: {first.reason}")
        for report in reports:
            for problem in report.problems:
                colour = "red" if problem.severity == "error" else "yellow"
                console.print(f"[{colour}]{report.directory.name}: {problem.reason}[/{colour}]")
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    since: Annotated[str, typer.Option(help="first record time, ISO 8601 (UTC if no zone)")],
    out: Annotated[Path, typer.Option(help="folder to write the export into")],
    until: Annotated[
        str | None, typer.Option(help="end (exclusive), ISO 8601 [default: now]")
    ] = None,
    directory: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    config: ConfigOption = None,
) -> None:
    """Copy the records of a time range (widened to whole checkpoints), all checkpoints,
    the public keys and TSA certificates into OUT, verifiable offline with `audit verify`."""
    from demigod.security.audit.export import ExportError, export_chain
    from demigod.security.audit.layout import find_chains

    start = _date(since, "--since")
    end = _date(until, "--until") if until else None
    folder = _directory(directory, config)
    configured = settings_or_exit(config).audit.tsa_cert_path
    summaries = []
    for chain in find_chains(folder):
        try:
            summaries.append(
                export_chain(chain, out, start, end, [configured] if configured else None)
            )
        except ExportError as exc:
            console.print(f"[yellow]{exc}[/yellow]")
    if not summaries:
        console.print(f"[red]nothing to export from {folder} since {start.isoformat()}[/red]")
        raise typer.Exit(1)
    rows = [
        {
            "node": s.node,
            "directory": str(s.directory),
            "first_seq": s.first_seq,
            "last_seq": s.last_seq,
            "records": s.records,
            "checkpoints": s.checkpoints,
        }
        for s in summaries
    ]
    if as_json:
        typer.echo(json.dumps({"exported_at": datetime.now(UTC).isoformat(), "chains": rows}))
        return
    table = Table("node", "records", "seq range", "checkpoints", "folder")
    for row in rows:
        table.add_row(
            str(row["node"]),
            str(row["records"]),
            f"{row['first_seq']}..{row['last_seq']}",
            str(row["checkpoints"]),
            str(row["directory"]),
        )
    Console().print(table)
