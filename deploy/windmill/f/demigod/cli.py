"""Shared by the DemiGod Windmill scripts: run the `demigod` command line (the product's
first-class interface) and read its JSON. The scripts run on a Windmill worker whose
image has demigod installed (the project's image), with the deployment's DEMIGOD_*
environment (DEMIGOD_DATABASE_URL, DEMIGOD_OPS__API_KEY, ...)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any


class DemigodCommandError(RuntimeError):
    """A `demigod` command failed; the message holds its exit status and stderr."""


def run_demigod(
    *args: str,
    config: str = "",
    ok_codes: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
) -> str:
    """Run `demigod ARGS [--config CONFIG]` (with `env` added to the environment); its
    stdout. Raises DemigodCommandError when the exit status is not in `ok_codes`."""
    command = [shutil.which("demigod") or "demigod", *args]
    if config:
        command += ["--config", config]
    environment = {**os.environ, **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if done.returncode not in ok_codes:
        raise DemigodCommandError(
            f"`demigod {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def demigod_json(*args: str, config: str = "", ok_codes: tuple[int, ...] = (0,)) -> Any:
    """`run_demigod` with --json; the parsed output."""
    return json.loads(run_demigod(*args, "--json", config=config, ok_codes=ok_codes))


def demigod_json_lines(*args: str, config: str = "", ok_codes: tuple[int, ...] = (0,)) -> Any:
    """`run_demigod` with --json for commands that print one JSON object per line."""
    out = run_demigod(*args, "--json", config=config, ok_codes=ok_codes)
    return [json.loads(line) for line in out.splitlines() if line.strip()]
