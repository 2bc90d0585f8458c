"""Strict configuration: unknown keys anywhere are errors; `demigod config check` shows what
a file and the DEMIGOD_* variables give; mesh.schema.json is the models' JSON Schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from demigod.config import Settings, load_settings, settings_json_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "mesh.schema.json"
EXAMPLE_FILE = ROOT / "mesh.example.yaml"

TYPOS = {
    "engine.n_ctxx": "engine:\n  n_ctxx: 4096\n",
    "security.auht": "security:\n  auht: off\n",
    "engine.state_cache.enabeld": "engine:\n  state_cache:\n    enabeld: false\n",
    "models.0.categores": "models:\n  - {name: m, path: m.gguf, categores: [code]}\n",
    "security.tenants.acme.request_per_minute": (
        "security:\n  tenants:\n    acme: {request_per_minute: 5}\n"
    ),
}


def demigod(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEMIGOD_")}
    return subprocess.run(
        [sys.executable, "-m", "demigod", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**clean, "COLUMNS": "200", **(env or {})},
    )


@pytest.mark.parametrize("key", TYPOS)
def test_an_unknown_nested_key_is_an_error_naming_it(tmp_path: Path, key: str) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text(TYPOS[key])
    with pytest.raises(ValidationError) as error:
        load_settings(config)
    assert [".".join(map(str, e["loc"])) for e in error.value.errors()] == [key]
    assert error.value.errors()[0]["type"] == "extra_forbidden"


def test_an_unknown_nested_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMIGOD_ENGINE__N_CTXX", "4096")
    with pytest.raises(ValidationError, match="n_ctxx"):
        load_settings()


def _models_in(annotation: object) -> typing.Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def test_every_section_forbids_unknown_keys() -> None:
    """Walks the whole tree, so a section added later without the strict base fails here."""
    seen: set[type[BaseModel]] = set()
    pending: list[type[BaseModel]] = [Settings]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        assert model.model_config.get("extra") == "forbid", f"{model.__name__} accepts any key"
        for field in model.model_fields.values():
            pending.extend(_models_in(field.annotation))
    assert len(seen) > 15  # the walk reached the nested sections


def test_config_check_prints_the_effective_settings_and_their_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mesh.yaml").write_text("port: 9001\nengine:\n  n_ctx: 4096\n")
    env = {"DEMIGOD_ENGINE__SLOTS": "3"}
    table = demigod("config", "check", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    rows = {
        cells[0]: cells[1:]
        for line in table.stdout.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 3
    }
    assert rows["port"] == ["9001", "file"]
    assert rows["engine.n_ctx"] == ["4096", "file"]
    assert rows["engine.slots"] == ["3", "env"]
    assert rows["engine.queue_size"] == ["32", "default"]
    assert rows["security.auth"] == ['"required"', "default"]

    as_json = demigod("config", "check", "--json", "mesh.yaml", cwd=tmp_path, env=env)
    assert as_json.returncode == 0, as_json.stderr
    effective = json.loads(as_json.stdout)
    assert effective["port"] == 9001 and effective["engine"]["slots"] == 3
    monkeypatch.setenv("DEMIGOD_ENGINE__SLOTS", "3")
    assert effective == load_settings(tmp_path / "mesh.yaml").model_dump(mode="json")


def test_config_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "prot: 80\nengine:\n  n_ctxx: 1\n  slots: 0\nsecurity:\n  auht: off\n"
    )
    checked = demigod("config", "check", "bad.yaml", cwd=tmp_path)
    assert checked.returncode == 2
    for problem in ("prot:", "engine.n_ctxx:", "engine.slots:", "security.auht:"):
        assert problem in checked.stderr, checked.stderr
    missing = demigod("config", "check", "missing.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_the_committed_schema_is_the_models_schema() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == settings_json_schema(), (
        "mesh.schema.json is stale: .venv/bin/demigod config schema > mesh.schema.json"
    )


def test_the_schema_accepts_the_example_and_refuses_typos() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(yaml.safe_load(EXAMPLE_FILE.read_text())))
    for key, text in TYPOS.items():
        errors = list(validator.iter_errors(yaml.safe_load(text)))
        assert errors, f"the schema accepts {key}"
        assert key.rsplit(".", 1)[-1] in errors[0].message


def test_the_example_points_editors_at_the_schema() -> None:
    assert EXAMPLE_FILE.read_text().splitlines()[0] == (
        "# yaml-language-server: $schema=mesh.schema.json"
    )
