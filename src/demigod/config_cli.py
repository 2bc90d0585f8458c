"""`demigod config ...`: validate a config file and show the settings it gives; its schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from demigod.cli_support import console
from demigod.config import load_settings, resolve_config_file, settings_json_schema

config_app = typer.Typer(
    help="Check a config file (mesh.yaml) and print the effective settings; its JSON Schema.",
    no_args_is_help=True,
)

ENV_PREFIX = "DEMIGOD_"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (`engine.state_cache.enabled`); lists stay values."""
    if not isinstance(tree, dict) or (prefix and not tree):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def source_of(key: str, file_keys: set[str]) -> str:
    """Where a dotted setting came from: env (DEMIGOD_A__B), the file, or the default."""
    parts = key.split(".")
    # A variable may set a whole section (DEMIGOD_ENGINE='{...}') or one leaf.
    for depth in range(len(parts), 0, -1):
        if ENV_PREFIX + "__".join(parts[:depth]).upper() in os.environ:
            return "env"
    if any(key == k or key.startswith(k + ".") or k.startswith(key + ".") for k in file_keys):
        return "file"
    return "default"


def _problem_lines(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
        for error in exc.errors()
    ]


@config_app.command("check")
def check(
    file: Annotated[
        Path | None,
        typer.Argument(help="config file [default: $DEMIGOD_CONFIG, else ./mesh.yaml if present]"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the effective settings as JSON")
    ] = False,
) -> None:
    """Validate a config file together with the DEMIGOD_* variables and print the effective
    settings, each with where it came from (env, file or default).

    Every problem is listed with its dotted key (an unknown key such as `engine.n_ctxx` is
    one); the exit status is 2 when there is any.
    """
    try:
        path = resolve_config_file(file)
        settings = load_settings(path)
    except FileNotFoundError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        problems = _problem_lines(exc)
        console.print(f"[red]{len(problems)} configuration problem(s)[/red] in {file or path}:")
        for line in problems:
            console.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    effective = settings.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(effective, indent=2))
        return
    file_tree = yaml.safe_load(path.read_text(encoding="utf-8")) if path else None
    file_keys = set(flatten(file_tree or {}))
    table = Table(title=f"effective settings ({path or 'no config file'})")
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("from")
    for key, value in flatten(effective).items():
        table.add_row(key, json.dumps(value), source_of(key, file_keys))
    Console().print(table)


@config_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of mesh.yaml (the repository's mesh.schema.json), for editors:
    `# yaml-language-server: $schema=mesh.schema.json` at the top of a mesh.yaml."""
    typer.echo(json.dumps(settings_json_schema(), indent=2))
