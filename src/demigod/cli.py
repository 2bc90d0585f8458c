"""The `demigod` command line: the first-class interface to the mesh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from demigod import __version__
from demigod.canary.cli import canary_app
from demigod.cli_support import (
    ConfigOption,
    ModelOption,
    console,
    fail,
    parse_model_option,
    settings_or_exit,
)
from demigod.compliance.cli import compliance_app
from demigod.config import ModelConfig
from demigod.config_cli import config_app
from demigod.deploy.cli import deploy_app
from demigod.gateway.cli import gateway, serve, worker
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


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"demigod {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    pass


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
app.command("serve")(serve)
app.command("worker")(worker)
app.command("gateway")(gateway)
route_app = typer.Typer(help="Inspect routing decisions offline.", no_args_is_help=True)
app.add_typer(route_app, name="route")


def _demo_model_configs() -> list[ModelConfig]:
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

    settings = settings_or_exit(config)
    configs = [parse_model_option(value) for value in model or []] or settings.models
    if not configs:
        configs = _demo_model_configs()
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
        fail(f"configuration error: {exc}")
    for row, prompt in prompt_rows(jsonl, console):
        decision = policy.resolve("auto", prompt, tenant)
        row.update(
            category=decision.category,
            model=decision.model.name,
            reason=decision.reason,
            confidence=round(decision.confidence or 0.0, 4),
        )
        typer.echo(json.dumps(row, ensure_ascii=False))


def main() -> None:
    """The `demigod` command: the app, with a missing optional dependency said in one line
    (which extra to install) instead of a traceback."""
    from demigod.extras import MissingExtraError

    try:
        app()
    except MissingExtraError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from exc


@app.command()
def version() -> None:
    """Print the demigod and llama.cpp (llama-cpp-python) versions."""
    import llama_cpp

    typer.echo(f"demigod {__version__}\nllama-cpp-python {llama_cpp.__version__}")
