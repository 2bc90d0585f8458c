"""`demigod registry ...`: the registry database itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

registry_app = typer.Typer(help="The model registry's database.", no_args_is_help=True)


@registry_app.command("upgrade")
def upgrade_command(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Apply pending schema migrations (opening the registry does this too)."""
    from sqlalchemy.exc import SQLAlchemyError

    from demigod.lifecycle.cli import console, load
    from demigod.registry import Registry
    from demigod.registry.migrate import current_revision

    settings = load(config)
    try:
        with Registry.open(settings.database_url, settings.data_dir) as registry:
            revision = current_revision(registry.engine)
            url = registry.engine.url.render_as_string(hide_password=True)
    except SQLAlchemyError as exc:
        console.print(f"[red]registry database error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps({"database": url, "revision": revision}))
    else:
        typer.echo(f"{url}: at revision {revision}")
