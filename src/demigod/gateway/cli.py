"""`demigod worker` (one model, one process) and `demigod gateway` (routes to replicas)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from fastapi import FastAPI

from demigod.config import ModelConfig, Settings, UpstreamConfig

# How `gateway --workers N` hands the resolved settings to uvicorn's worker processes.
SETTINGS_HANDOFF_ENV = "_DEMIGOD_GATEWAY_SETTINGS_JSON"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config file (default: $DEMIGOD_CONFIG or ./mesh.yaml)"
    ),
]
HostOption = Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")]


def _fail(message: str) -> typer.Exit:
    from demigod.cli import console

    console.print(f"[red]{message}[/red]")
    return typer.Exit(2)


def _worker_model(settings: Settings, model: str) -> tuple[ModelConfig, dict[str, str]]:
    """The model to serve and its registry aliases (alias -> version label)."""
    from demigod.cli import _registry_model_configs, parse_model_option

    if "=" in model:
        return parse_model_option(model), {}
    for entry in settings.models:  # configured: no registry to open (a worker container's case)
        if entry.name == model:
            return entry, {}
    served, aliases = _registry_model_configs(settings)
    for entry in served:
        if entry.name == model:
            return entry, aliases.get(model, {})
    known = ", ".join(entry.name for entry in served) or "none"
    raise _fail(f"unknown model {model!r}; configured or registered: {known} (or NAME=FILE.gguf)")


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
    import uvicorn

    from demigod.cli import _settings
    from demigod.gateway.app import create_app
    from demigod.observability.logging import configure_logging

    settings = _settings(config, host=host, port=port)
    configure_logging(settings.log_level, settings.log_json)
    served, aliases = _worker_model(settings, model)
    if not served.path.is_file():
        raise _fail(f"model {served.name!r}: file not found: {served.path}")
    uvicorn.run(
        create_app(settings, [served], aliases={served.name: aliases}, upstreams=[]),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def parse_upstream_options(values: list[str]) -> list[UpstreamConfig]:
    """`NAME=URL` options; a NAME given again adds a replica. Raises typer.BadParameter."""
    from pydantic import ValidationError

    urls: dict[str, list[str]] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise typer.BadParameter(f"expected NAME=URL, got {value!r}")
        urls.setdefault(name, []).append(url)
    try:
        return [UpstreamConfig(name=name, urls=replicas) for name, replicas in urls.items()]
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
            "add replicas; replaces the config's `upstreams:`",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="gateway processes (uvicorn workers) sharing the port")
    ] = 1,
    host: HostOption = None,
    port: Annotated[int | None, typer.Option(help="port to listen on [default: 8080]")] = None,
    config: ConfigOption = None,
) -> None:
    """Route OpenAI requests to remote replicas: balancing, health checks, breakers,
    retries and fallback (docs/gateway.md). Loads no model itself."""
    import uvicorn

    from demigod.cli import _settings
    from demigod.observability.logging import configure_logging

    settings = _settings(config, host=host, port=port)
    configure_logging(settings.log_level, settings.log_json)
    upstreams = parse_upstream_options(upstream) if upstream else settings.upstreams
    if not upstreams:
        raise _fail("no upstreams: pass --upstream NAME=URL or list `upstreams:` in the config")
    settings = settings.model_copy(update={"upstreams": upstreams, "models": []})
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        uvicorn.run(gateway_app(settings), **options)  # type: ignore[arg-type]
        return
    os.environ[SETTINGS_HANDOFF_ENV] = settings.model_dump_json()
    uvicorn.run(
        "demigod.gateway.cli:gateway_app_from_handoff",
        factory=True,
        workers=workers,
        **options,  # type: ignore[arg-type]
    )


def gateway_app(settings: Settings) -> FastAPI:
    from demigod.gateway.app import create_app

    return create_app(settings, [], upstreams=settings.upstreams)


def gateway_app_from_handoff() -> FastAPI:
    """The app of one `--workers` process, from the settings its parent resolved."""
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
