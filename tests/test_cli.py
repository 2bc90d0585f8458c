"""The command line's shape: `--help` imports no command's dependencies, lists every
command with its own summary, and no help text breaks a sentence across lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from demigod import __version__
from demigod.cli import COMMANDS, app, load, unwrapped

# What no command list needs: the registry's database layer, the web stack, the engine,
# the settings models. (The speed is measured in bench/cli_startup.py, not asserted here.)
HEAVY = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "llama_cpp", "httpx", "demigod.config")


def test_help_and_version_import_no_command_dependencies() -> None:
    script = (
        "import sys, json\n"
        "from demigod.cli import main\n"
        "sys.argv = ['demigod', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    for option in ("--help", "--version"):
        ran = subprocess.run(
            [sys.executable, "-c", script, option], capture_output=True, text=True, check=True
        )
        imported = set(json.loads(ran.stderr.strip().splitlines()[-1]))
        assert not {m for m in imported if m.split(".")[0] in HEAVY or m in HEAVY}, option
    version = subprocess.run(
        [sys.executable, "-m", "demigod", "--version"], capture_output=True, text=True
    )
    assert version.stdout == f"demigod {__version__}\n"


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _walk(sub, (*path, name))
    return found


ALL = [item for name, lazy in COMMANDS.items() for item in _walk(load(name, lazy), (name,))]


@pytest.mark.parametrize("name", COMMANDS)
def test_the_listed_summary_is_the_commands_own(name: str) -> None:
    command = load(name, COMMANDS[name])
    assert unwrapped(COMMANDS[name].summary) == (command.help or "").split("\n\n")[0]


def test_every_command_is_listed_and_runs_its_help() -> None:
    listed = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "300"})
    assert all(f"│ {name} " in listed.output for name in COMMANDS), listed.output
    assert len(ALL) > 40  # the walk reached the subcommands
    runner = CliRunner()
    for path, command in ALL:
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "300"})
        assert shown.exit_code == 0, (path, shown.output)
        # Help is rich markup: an unescaped "[report]" (pip install 'demigod[report]')
        # would be taken for a style tag and vanish from the output.
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        output = " ".join(shown.output.replace("│", " ").split())
        for bracketed in re.findall(r"\\?\[[^\]\s]+\]", " ".join(texts)):
            assert bracketed.lstrip("\\") in output, (path, bracketed)


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_no_help_breaks_a_sentence(path: tuple[str, ...], command: Any) -> None:
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    for text in texts:
        for paragraph in text.split("\n\n"):
            lines = paragraph.split("\n")
            assert all(line.lstrip()[:1] in "-*•0123456789" for line in lines[1:]), paragraph


def test_a_long_paragraph_prints_on_one_line_when_the_terminal_allows() -> None:
    shown = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "300"})
    assert "else from the config file's `models:`, else the demo models are built" in shown.output
