"""The `demigod` command line: the first-class interface to the mesh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from demigod import __version__
from demigod.canary.cli import canary_app
from demigod.compliance.cli import compliance_app
from demigod.config import ModelConfig, Settings, load_settings
from demigod.config_cli import config_app
from demigod.deploy.cli import deploy_app
from demigod.gateway.cli import gateway, worker
from demigod.lifecycle.cli import models_app
from demigod.observability.cli import report_app, top
from demigod.ops.cli import ops_app
from demigod.registry.cli import registry_app
from demigod.security.audit.cli import audit_app
from demigod.security.cli import keys_app
from demigod.security.waf.cli import waf_app

app = typer.Typer(
    help=(
        "Phoenix DemiGod: an inference mesh for attention-free language models (Mamba, RWKV, "
        "hybrids) served from GGUF files through llama.cpp, behind one OpenAI-compatible API.\n\n"
        "Start with `demigod serve` (builds and serves the demo models), or "
        "`demigod serve --model NAME=FILE.gguf` to serve your own files."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(models_app, name="models")
app.add_typer(registry_app, name="registry")
app.add_typer(deploy_app, name="deploy")
app.add_typer(canary_app, name="canary")
app.add_typer(report_app, name="report")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(waf_app, name="waf")
app.add_typer(compliance_app, name="compliance")
app.add_typer(ops_app, name="ops")
app.add_typer(config_app, name="config")
app.command("top")(top)
app.command("worker")(worker)
app.command("gateway")(gateway)
route_app = typer.Typer(help="Inspect routing decisions offline.", no_args_is_help=True)
app.add_typer(route_app, name="route")

console = Console(stderr=True)

ModelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        "-m",
        help=(
            "serve a GGUF file directly, as NAME=FILE.gguf[:category,...] (repeatable; a "
            "Hugging Face folder instead of a file is served by transformers); "
            "replaces the configured and demo models"
        ),
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config file (default: $DEMIGOD_CONFIG or ./mesh.yaml)"
    ),
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except (FileNotFoundError, ValidationError) as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def parse_model_option(value: str) -> ModelConfig:
    """`NAME=FILE.gguf` or `NAME=FILE.gguf:category[,category]`. Raises typer.BadParameter."""
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest:
        raise typer.BadParameter(f"expected NAME=FILE.gguf, got {value!r}")
    path, _, categories = rest.partition(":")
    try:
        return ModelConfig(
            name=name,
            path=Path(path),
            categories=[c for c in categories.split(",") if c] or ["chat"],
            backend="transformers" if Path(path).is_dir() else "llama.cpp",
        )
    except ValidationError as exc:
        raise typer.BadParameter(f"{value!r}: {exc.errors()[0]['msg']}") from exc


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on [default: 8080]")] = None,
    model: ModelOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the mesh: OpenAI-compatible API, health probes and Prometheus metrics.

    Models come from --model, else from the config file's `models:`, else the demo
    models are built (first run, a few minutes) and served.
    """
    import uvicorn

    from demigod.gateway.app import create_app
    from demigod.observability.logging import configure_logging

    settings = _settings(config, host=host, port=port)
    configure_logging(settings.log_level, settings.log_json)
    served = [parse_model_option(value) for value in model or []]
    aliases: dict[str, dict[str, str]] = {}
    if not served:
        served, aliases = _registry_model_configs(settings)
    for entry in served:
        if not (entry.path.is_dir() if entry.backend == "transformers" else entry.path.is_file()):
            console.print(f"[red]model {entry.name!r}: file not found:[/red] {entry.path}")
            raise typer.Exit(2)
    uvicorn.run(
        create_app(settings, served, aliases=aliases),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _registry_model_configs(
    settings: Settings,
) -> tuple[list[ModelConfig], dict[str, dict[str, str]]]:
    """The config's models plus the `stable` version of each registered model; with
    neither, the demo models, built and put through the registry first."""
    from demigod.lifecycle.artefacts import ArtefactError
    from demigod.lifecycle.cli import demo_stable_versions, open_registry
    from demigod.lifecycle.serving import stable_models
    from demigod.registry import RegistryError

    try:
        with open_registry(settings) as registry:
            found = stable_models(registry, exclude={m.name for m in settings.models})
        if not settings.models and not found.models:
            demo_stable_versions(settings, progress=lambda step: console.print(step))
            with open_registry(settings) as registry:
                found = stable_models(registry)
    except (RegistryError, ArtefactError) as exc:
        console.print(f"[red]registry:[/red] {exc}")
        raise typer.Exit(2) from exc
    return [*settings.models, *found.models], found.aliases


def _demo_model_configs(settings: Settings) -> list[ModelConfig]:
    """The demo models' names and categories, without building them."""
    from demigod.lifecycle.demo import DEMO_RECIPES

    return [
        ModelConfig(name=r.name, path=Path(r.name), categories=[r.category]) for r in DEMO_RECIPES
    ]


@route_app.command("classify")
def route_classify(
    jsonl: Annotated[
        Path,
        typer.Option("--jsonl", help='input: one JSON object per line with a "prompt"; - is stdin'),
    ],
    model: ModelOption = None,
    config: ConfigOption = None,
    tenant: Annotated[
        str, typer.Option(help="the tenant routing.rules see for every prompt")
    ] = "anonymous",
) -> None:
    """Classify prompts and name the model `auto` would pick, one JSON line out per line in.

    Out: the input line's fields plus "category", "model", "reason" and "confidence".
    Models come from --model, else the config, else the demo catalogue (nothing is loaded).
    """
    from demigod.prompt_rows import prompt_rows
    from demigod.routing.classifier import RequestClassifier
    from demigod.routing.policy import RoutingPolicy
    from demigod.routing.versions import split_versions

    settings = _settings(config)
    configs = [parse_model_option(value) for value in model or []] or settings.models
    if not configs:
        configs = _demo_model_configs(settings)
    classifier = RequestClassifier.from_config(settings.routing)
    try:
        policy = RoutingPolicy(
            {c.name: c for c in split_versions(configs)[0]},
            classifier,
            settings.default_model,
            rules=settings.routing.rules,
            chars_per_token=settings.routing.chars_per_token,
        )
    except ValueError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    for row, prompt in prompt_rows(jsonl, console):
        decision = policy.resolve("auto", prompt, tenant)
        row.update(
            category=decision.category,
            model=decision.model.name,
            reason=decision.reason,
            confidence=round(decision.confidence or 0.0, 4),
        )
        typer.echo(json.dumps(row, ensure_ascii=False))


@app.command()
def version() -> None:
    """Print the demigod and llama.cpp (llama-cpp-python) versions."""
    import llama_cpp

    typer.echo(f"demigod {__version__}\nllama-cpp-python {llama_cpp.__version__}")
