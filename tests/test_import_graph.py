"""The import graph's rules (pyproject.toml, [tool.importlinter]): no cycle between
demigod's packages, and every import points down the layers. Run as a user would:
`lint-imports`, which names each import that breaks a rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_imports_point_down_and_never_cycle() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", str(PROJECT / "pyproject.toml")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout
