"""`demigod keys create|list|revoke`: API keys for tenants (docs/security.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from demigod.cli_support import ConfigOption, JsonOption, console, settings_or_exit
from demigod.config import Settings
from demigod.security.api_keys import APIKeyRecord, APIKeyStore, KeyNotFoundError
from demigod.security.audit.events import record_admin_event
from demigod.security.authenticate import api_keys_path

keys_app = typer.Typer(
    help=(
        "API keys: the simple alternative to OIDC tokens. A key is shown once, stored only "
        "as its sha256, and revocable; running gateways see changes on the next request."
    ),
    no_args_is_help=True,
)


def _store(config: Path | None) -> tuple[Settings, APIKeyStore]:
    settings = settings_or_exit(config)
    return settings, APIKeyStore(api_keys_path(settings.security, settings.data_dir))


def _public(record: APIKeyRecord) -> dict[str, object]:
    row = asdict(record)
    del row["sha256"]
    return row


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="the tenant the key acts as (quotas, models)")],
    name: Annotated[str, typer.Option(help="what the key is for, e.g. ci-pipeline")],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="restrict the key to this model (repeatable)"),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it. It is shown only this once: store it now."""
    settings, store = _store(config)
    if not tenant.strip() or not name.strip():
        console.print("[red]--tenant and --name must not be empty[/red]")
        raise typer.Exit(2)
    if settings.security.tenants and tenant not in settings.security.tenants:
        console.print(
            f"[yellow]note:[/yellow] tenant {tenant!r} is not in security.tenants; "
            "it gets security.default_tenant's limits"
        )
    key, record = store.create(name=name, tenant=tenant, models=model or None)
    record_admin_event(settings, "key.create", _public(record))
    if as_json:
        typer.echo(json.dumps({"key": key, **_public(record)}))
        return
    console.print(f"created key [bold]{record.id}[/bold] for tenant {tenant!r}; shown only once:")
    typer.echo(key)


@keys_app.command("list")
def list_keys(
    include_revoked: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List keys (never the keys themselves: only their ids)."""
    _, store = _store(config)
    records = [r for r in store.list() if include_revoked or r.active]
    if as_json:
        typer.echo(json.dumps([_public(r) for r in records]))
        return
    table = Table("id", "name", "tenant", "models", "created", "revoked")
    for r in records:
        table.add_row(
            r.id, r.name, r.tenant, ",".join(r.models or ["*"]), r.created, r.revoked or ""
        )
    Console().print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (demigod keys list)")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Revoke a key: gateways refuse it from their next request on."""
    settings, store = _store(config)
    try:
        record = store.revoke(key_id)
    except KeyNotFoundError as exc:
        console.print(f"[red]no key with id {key_id!r}[/red] (see demigod keys list --all)")
        raise typer.Exit(1) from exc
    record_admin_event(settings, "key.revoke", _public(record))
    if as_json:
        typer.echo(json.dumps(_public(record)))
        return
    console.print(f"revoked key {record.id} ({record.name}, tenant {record.tenant})")
