"""`demigod registry ...`: the registry database itself."""

from __future__ import annotations

import json

import typer

from demigod.cli_support import ConfigOption, JsonOption, console, settings_or_exit

registry_app = typer.Typer(help="The model registry's database.", no_args_is_help=True)


@registry_app.command("upgrade")
def upgrade_command(
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply pending schema migrations (opening the registry does this too)."""
    from sqlalchemy.exc import SQLAlchemyError

    from demigod.registry import Registry
    from demigod.registry.migrate import current_revision

    settings = settings_or_exit(config)
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
