"""What every `demigod` command shares: the console for messages, the common options,
loading the settings (or exiting with the reason), and serving an app with uvicorn.

Import-light on purpose: `demigod --help` imports every command module, and so this one;
the config, pydantic and uvicorn are imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from demigod.config import ModelConfig, Settings

# Messages and progress go to stderr; stdout carries what a command prints as its result.
console = Console(stderr=True)

# Exit status of a command refused for its input (a bad config, an unknown name).
USAGE_ERROR = 2

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config file (default: $DEMIGOD_CONFIG or ./mesh.yaml)"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
HostOption = Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")]
PortOption = Annotated[int | None, typer.Option(help="port to listen on [default: 8080]")]
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


def fail(message: str, *, code: int = USAGE_ERROR) -> NoReturn:
    """Print `message` in red and exit with `code`."""
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(code)


def settings_or_exit(config: Path | None, **overrides: object) -> Settings:
    """The settings from `config` (else $DEMIGOD_CONFIG or ./mesh.yaml), the environment
    and `overrides`; a missing file or an invalid value prints the reason and exits 2."""
    from pydantic import ValidationError

    from demigod.config import load_settings

    try:
        return load_settings(config, **overrides)
    except (FileNotFoundError, ValidationError) as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(USAGE_ERROR) from exc


def parse_model_option(value: str) -> ModelConfig:
    """`NAME=FILE.gguf` or `NAME=FILE.gguf:category[,category]` (a folder: served by
    transformers). Raises typer.BadParameter."""
    from pydantic import ValidationError

    from demigod.config import ModelConfig

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


def run_server(app: ASGIApp | str, settings: Settings, **options: object) -> None:
    """Run `app` (or an import string with `factory=True`, `workers=N`) under uvicorn on
    the settings' host and port, with demigod's logging (no uvicorn access log) and 10 s
    for requests in flight at shutdown."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        **options,  # type: ignore[arg-type]
    )
