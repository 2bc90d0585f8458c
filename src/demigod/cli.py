"""The `demigod` command line: the first-class interface to the mesh.

The commands live in their packages and are imported when one is used: `demigod --help`
lists them from COMMANDS below, so it starts without importing the registry, the web
framework or the engines. tests/test_cli.py keeps each summary equal to its command's own.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from demigod import __version__
from demigod.cli_support import (
    ConfigOption,
    ModelOption,
    console,
    fail,
    parse_model_option,
    settings_or_exit,
)

if TYPE_CHECKING:
    from demigod.config import ModelConfig


@dataclass(frozen=True)
class Lazy:
    """A command imported when used: `target` is "module:attribute", a typer.Typer group
    or a command function; `summary` is what `demigod --help` lists."""

    target: str
    summary: str


COMMANDS: dict[str, Lazy] = {
    "serve": Lazy(
        "demigod.gateway.cli:serve",
        "Serve the mesh: OpenAI-compatible API, health probes and Prometheus metrics.",
    ),
    "worker": Lazy(
        "demigod.gateway.cli:worker",
        "Serve ONE model as its own process: the unit a container runs behind `demigod gateway`.",
    ),
    "gateway": Lazy(
        "demigod.gateway.cli:gateway",
        "Route OpenAI requests to remote replicas: balancing, health checks, breakers, "
        "retries and fallback (docs/gateway.md). Loads no model itself.",
    ),
    "top": Lazy(
        "demigod.observability.cli:top", "A live view of the mesh, what htop is to processes."
    ),
    "models": Lazy(
        "demigod.lifecycle.cli:models_app",
        "The model lifecycle: pull -> convert -> quantize -> validate -> promote -> retire, "
        "recorded in the registry (docs/lifecycle.md).",
    ),
    "registry": Lazy("demigod.registry.cli:registry_app", "The model registry's database."),
    "deploy": Lazy("demigod.deploy.cli:deploy_app", "Render deployment artefacts from mesh.yaml."),
    "canary": Lazy(
        "demigod.canary.cli:canary_app",
        "Canary rollouts between a model's stable and candidate versions (two `models` or "
        "`upstreams` entries with the same name; docs/routing.md). `start` steps the "
        "candidate's weight after each healthy analysis window and rolls it back to 0 % "
        "when it is worse.",
    ),
    "report": Lazy(
        "demigod.reports.cli:report_app",
        "Reports from a running mesh's metrics: energy per token, the one-pager.",
    ),
    "keys": Lazy(
        "demigod.security.cli:keys_app",
        "API keys: the simple alternative to OIDC tokens. A key is shown once, stored only as "
        "its sha256, and revocable; running gateways see changes on the next request.",
    ),
    "audit": Lazy(
        "demigod.security.audit.cli:audit_app",
        "The tamper-evident audit log: verify its chain, signatures and RFC 3161 timestamps; "
        "export a time range for auditors (docs/audit.md).",
    ),
    "waf": Lazy("demigod.security.waf.cli:waf_app", "The prompt-injection screen (WAF), offline."),
    "compliance": Lazy(
        "demigod.compliance.cli:compliance_app",
        "EU AI Act documentation: what the system knows about its models, evaluations, "
        "lifecycle and record-keeping.",
    ),
    "ops": Lazy(
        "demigod.ops.cli:ops_app",
        "Operate a deployed mesh: smoke tests, drift between git and what runs, backups and "
        "restore drills, one-host autoscaling.",
    ),
    "config": Lazy(
        "demigod.config_cli:config_app",
        "Check a config file (mesh.yaml) and print the effective settings; its JSON Schema.",
    ),
}

_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s")


def unwrapped(text: str) -> str:
    """`text` with each paragraph on one line (list items keep theirs): docstrings are
    wrapped for the source, and typer would print those line breaks mid-sentence."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines: list[str] = []
        for line in paragraph.split("\n"):
            if lines and line.strip() and not _LIST_ITEM.match(line):
                lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def readable(command: Any) -> Any:
    """Unwrap the help of a typer command, its parameters and its subcommands (in place)."""
    if command.help:
        command.help = unwrapped(command.help)
    for parameter in command.params:
        if getattr(parameter, "help", None):
            parameter.help = unwrapped(parameter.help)
    for subcommand in getattr(command, "commands", {}).values():
        readable(subcommand)
    return command


def load(name: str, lazy: Lazy) -> TyperCommand | TyperGroup:
    """Import the command `lazy` names and build it, help unwrapped."""
    module, _, attribute = lazy.target.partition(":")
    target = getattr(importlib.import_module(module), attribute)
    command: TyperCommand | TyperGroup
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)  # a group even of one command
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)  # type: ignore[assignment]  # a TyperCommand
    command.name = name
    return readable(command)


class DeferredCommand(TyperCommand):
    """What `demigod --help` lists for a lazy command; used, it hands over to the real one."""

    def __init__(self, name: str, lazy: Lazy) -> None:
        super().__init__(name, help=lazy.summary)
        self.lazy = lazy

    @cached_property
    def loaded(self) -> TyperCommand | TyperGroup:
        assert self.name is not None
        return load(self.name, self.lazy)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return self.loaded.make_context(info_name, args, parent, **extra)


class LazyGroup(TyperGroup):
    """The root group: COMMANDS first, deferred; then the few defined here."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS:
            return DeferredCommand(cmd_name, COMMANDS[cmd_name])
        command = super().get_command(ctx, cmd_name)
        return readable(command) if command is not None else None


app = typer.Typer(
    cls=LazyGroup,
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


route_app = typer.Typer(help="Inspect routing decisions offline.", no_args_is_help=True)
app.add_typer(route_app, name="route")


def _demo_model_configs() -> list[ModelConfig]:
    """The demo models' names and categories, without building them."""
    from demigod.config import ModelConfig
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

    Out: the input line's fields plus "category", "model", "reason" and "confidence". An
    input field of one of those names (a labelled file's own "category") is kept as
    "input_category" (etc.), never overwritten. Models come from --model, else the config,
    else the demo catalogue (nothing is loaded).
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
        found = {
            "category": decision.category,
            "model": decision.model.name,
            "reason": decision.reason,
            "confidence": round(decision.confidence or 0.0, 4),
        }
        # The input's own fields of these names (a label) survive under input_NAME.
        kept = {f"input_{name}": row.pop(name) for name in found if name in row}
        typer.echo(json.dumps({**row, **kept, **found}, ensure_ascii=False))


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
