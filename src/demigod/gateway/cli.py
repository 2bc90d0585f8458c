"""The commands that run the HTTP app: `demigod serve` (the mesh in one process), `demigod
worker` (one model, one process) and `demigod gateway` (routes to remote replicas)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from demigod.cli_support import (
    ConfigOption,
    HostOption,
    ModelOption,
    PortOption,
    console,
    fail,
    parse_model_option,
    run_server,
    settings_or_exit,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from demigod.config import ModelConfig, Settings, UpstreamConfig
    from demigod.lifecycle.serving import RegistryServing

# How `gateway --workers N` hands the resolved settings to uvicorn's worker processes.
SETTINGS_HANDOFF_ENV = "_DEMIGOD_GATEWAY_SETTINGS_JSON"


def server_settings(config: Path | None, **overrides: object) -> Settings:
    """The settings of a serving command, with its logging configured (JSON lines)."""
    from demigod.observability.logging import configure_logging

    settings = settings_or_exit(config, **overrides)
    configure_logging(settings.log_level, settings.log_json)
    return settings


def registered_models(settings: Settings) -> RegistryServing:
    """What `serve` and `worker` serve when not told: the configured models, the registry's
    stable (and candidate) versions, else the demo models, built first. A registry or
    artefact failure exits 2 with its reason."""
    from demigod.errors import UnknownModelError, UnknownVersionError
    from demigod.lifecycle.artefacts import ArtefactError
    from demigod.lifecycle.serving import models_to_serve
    from demigod.registry import RegistryError

    try:
        return models_to_serve(settings, progress=console.print, console=console)
    except (RegistryError, UnknownModelError, UnknownVersionError, ArtefactError) as exc:
        fail(f"registry: {exc}")


def serve(
    host: HostOption = None,
    port: PortOption = None,
    model: ModelOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the mesh: OpenAI-compatible API, health probes and Prometheus metrics.

    Models come from --model, else from the config file's `models:`, else the demo
    models are built (first run, a few minutes) and served.
    """
    from demigod.gateway.app import create_app

    settings = server_settings(config, host=host, port=port)
    served = [parse_model_option(value) for value in model or []]
    aliases: dict[str, dict[str, str]] = {}
    if not served:
        found = registered_models(settings)
        served, aliases = found.models, found.aliases
    for entry in served:
        if not (entry.path.is_dir() if entry.backend == "transformers" else entry.path.is_file()):
            fail(f"model {entry.name!r}: file not found: {entry.path}")
    run_server(create_app(settings, served, aliases=aliases), settings)


def worker(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="a model named in the config or the registry (its stable version), or "
            "NAME=FILE.gguf[:category]",
        ),
    ],
    port: Annotated[int, typer.Option(help="port to listen on")],
    host: HostOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve ONE model as its own process: the unit a container runs behind `demigod gateway`.

    The same app as `demigod serve` (OpenAI API, /readyz, /metrics), with one model and
    no upstreams of its own.
    """
    from demigod.gateway.app import create_app

    settings = server_settings(config, host=host, port=port)
    served, aliases = _worker_model(settings, model)
    if not served.path.is_file():
        fail(f"model {served.name!r}: file not found: {served.path}")
    run_server(
        create_app(settings, [served], aliases={served.name: aliases}, upstreams=[]), settings
    )


def _worker_model(settings: Settings, model: str) -> tuple[ModelConfig, dict[str, str]]:
    """The model to serve and its registry aliases (alias -> version label)."""
    if "=" in model:
        return parse_model_option(model), {}
    for entry in settings.models:  # configured: no registry to open (a worker container's case)
        if entry.name == model:
            return entry, {}
    found = registered_models(settings)
    for entry in found.models:
        if entry.name == model:
            return entry, found.aliases.get(model, {})
    known = ", ".join(entry.name for entry in found.models) or "none"
    fail(f"unknown model {model!r}; configured or registered: {known} (or NAME=FILE.gguf)")


def parse_upstream_options(values: list[str]) -> list[UpstreamConfig]:
    """`NAME=URL` or `NAME@VERSION=URL` options; the same NAME (and VERSION) again adds a
    replica. The first version given of a NAME is its stable, a second its canary
    candidate. Raises typer.BadParameter."""
    from pydantic import ValidationError

    from demigod.config import UpstreamConfig
    from demigod.routing.versions import split_pinned

    urls: dict[tuple[str, str | None], list[str]] = {}
    for value in values:
        key, sep, url = value.partition("=")
        name, version = split_pinned(key)
        if not sep or not name or not url:
            raise typer.BadParameter(f"expected NAME=URL or NAME@VERSION=URL, got {value!r}")
        urls.setdefault((name, version), []).append(url)
    try:
        return [
            UpstreamConfig.model_validate(
                {"name": name, "urls": replicas, **({"version": version} if version else {})}
            )
            for (name, version), replicas in urls.items()
        ]
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from exc


def gateway(
    upstream: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream",
            "-u",
            help="NAME=URL of an OpenAI-compatible replica (demigod worker, vLLM, "
            "llama-server, TGI, Ollama, trtllm-serve), base URL without /v1; repeat a NAME to "
            "add replicas; NAME@VERSION=URL names the version, and a second VERSION of a NAME "
            "is its canary candidate (`demigod canary start NAME`); replaces the config's "
            "`upstreams:`",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="gateway processes (uvicorn workers) sharing the port")
    ] = 1,
    host: HostOption = None,
    port: PortOption = None,
    config: ConfigOption = None,
) -> None:
    """Route OpenAI requests to remote replicas: balancing, health checks, breakers,
    retries and fallback (docs/gateway.md). Loads no model itself."""
    settings = server_settings(config, host=host, port=port)
    from demigod.routing.versions import split_versions

    upstreams = parse_upstream_options(upstream) if upstream else settings.upstreams
    if not upstreams:
        fail("no upstreams: pass --upstream NAME=URL or list `upstreams:` in the config")
    try:
        split_versions(upstreams)  # one stable and at most one candidate per name
    except ValueError as exc:
        fail(f"upstreams: {exc}")
    settings = settings.model_copy(update={"upstreams": upstreams, "models": []})
    if workers == 1:
        run_server(gateway_app(settings), settings)
        return
    os.environ[SETTINGS_HANDOFF_ENV] = settings.model_dump_json()
    run_server(
        "demigod.gateway.cli:gateway_app_from_handoff", settings, factory=True, workers=workers
    )


def gateway_app(settings: Settings) -> FastAPI:
    from demigod.gateway.app import create_app

    return create_app(settings, [], upstreams=settings.upstreams)


def gateway_app_from_handoff() -> FastAPI:
    """The app of one `--workers` process, from the settings its parent resolved."""
    from demigod.config import Settings
    from demigod.observability.logging import configure_logging
    from demigod.security.audit.store import default_node

    settings = Settings.model_validate_json(os.environ[SETTINGS_HANDOFF_ENV])
    if settings.audit.node is None:  # one audit chain per process: each locks its own
        node = f"{default_node(settings)}-pid{os.getpid()}"
        settings = settings.model_copy(
            update={"audit": settings.audit.model_copy(update={"node": node})}
        )
    configure_logging(settings.log_level, settings.log_json)
    return gateway_app(settings)
