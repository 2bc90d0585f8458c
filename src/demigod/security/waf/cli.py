"""`demigod waf ...`: the prompt-injection screen offline, for evaluations and triage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from demigod.cli_support import console, settings_or_exit
from demigod.prompt_rows import prompt_rows

waf_app = typer.Typer(help="The prompt-injection screen (WAF), offline.", no_args_is_help=True)


@waf_app.command("scan")
def scan(
    jsonl: Annotated[
        Path,
        typer.Option("--jsonl", help='input: one JSON object per line with a "prompt"; - is stdin'),
    ],
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="model score that flags [default: waf.threshold]"),
    ] = None,
    block_threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="model score that blocks alone [default: waf.block_threshold]"
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="YAML config file (default: $DEMIGOD_CONFIG or ./mesh.yaml)"
        ),
    ] = None,
) -> None:
    """Screen prompts as the gateway would, one JSON line out per line in.

    Out: the input line's fields plus "verdict" ("block": a rule matched or the model's
    score reached the block threshold; "flag": the score reached the threshold, served
    with x-demigod-waf where the tenant's action is block; "allow"), "score" (1.0 when a
    rule matched, else the model's probability of injection) and "rules" (matched ids).
    """
    from demigod.security.waf.screen import PromptScreen

    settings = settings_or_exit(config)
    screen = PromptScreen(
        threshold=settings.waf.threshold if threshold is None else threshold,
        block_threshold=(
            settings.waf.block_threshold if block_threshold is None else block_threshold
        ),
        max_chars=settings.waf.max_chars,
    )
    for row, prompt in prompt_rows(jsonl, console):
        verdict = screen.screen_text(prompt)
        row.update(verdict=verdict.verdict, score=verdict.score, rules=list(verdict.rules))
        typer.echo(json.dumps(row, ensure_ascii=False))
