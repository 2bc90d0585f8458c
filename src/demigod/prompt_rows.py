"""The input of the batch CLIs (`route classify`, `waf scan`): JSON lines with a "prompt"."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console


def prompt_rows(jsonl: Path, console: Console) -> Iterator[tuple[dict[str, Any], str]]:
    """Each non-blank line of `jsonl` (`-`: stdin) as (the object, its "prompt").

    An unreadable file or a bad line (not an object, no string "prompt") prints where and
    why on `console` and exits with status 2, so a batch never silently skips a prompt.
    """
    try:
        text = sys.stdin.read() if str(jsonl) == "-" else jsonl.read_text(encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]cannot read {jsonl}:[/red] {exc.strerror}")
        raise typer.Exit(2) from exc
    # Lines end at "\n" only: str.splitlines() would also cut at U+2028, U+0085 and other
    # separators that JSON strings may hold unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError("each line must be a JSON object")
            prompt = row.get("prompt")
            if not isinstance(prompt, str):
                raise TypeError('"prompt" must be a string')
        except (ValueError, TypeError) as exc:
            console.print(f"[red]{jsonl}:{number}: bad line:[/red] {exc}")
            raise typer.Exit(2) from exc
        yield row, prompt
