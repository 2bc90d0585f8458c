"""The models lock file: per model, the version and sha256 each served alias (`stable`,
`candidate`) points at. Committed beside mesh.yaml, it is git's word on which model bytes
the mesh runs; `demigod ops lock` writes it from the registry, `demigod ops drift`
compares the registry and the running mesh with it."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from demigod.registry import CANDIDATE, STABLE, Registry

# The aliases `demigod serve` turns into served versions (lifecycle.serving).
SERVED_ALIASES = (STABLE, CANDIDATE)
HEADER = (
    "# The model versions this mesh serves, per alias. Written by `demigod ops lock` from\n"
    "# the registry; commit it with mesh.yaml. `demigod ops drift` checks the mesh against it.\n"
)


class LockError(Exception):
    """The lock file is missing or malformed; the message names the file and the field."""


class LockedVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelsLock(BaseModel):
    """`models: {NAME: {ALIAS: {version, sha256}}}`."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, dict[str, LockedVersion]] = Field(default_factory=dict)


def read_lock(path: Path) -> ModelsLock:
    """The lock at `path`. Raises LockError when it is missing or invalid."""
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise LockError(f"no models lock file at {path} (`demigod ops lock` writes one)") from exc
    except yaml.YAMLError as exc:
        raise LockError(f"{path}: not YAML: {exc}") from exc
    try:
        return ModelsLock.model_validate(raw or {})
    except ValidationError as exc:
        raise LockError(f"{path}: {exc}") from exc


def write_lock(path: Path, lock: ModelsLock) -> None:
    """Write `lock` as YAML, models and aliases sorted, so diffs stay small."""
    body = {
        "models": {
            name: {alias: locked.model_dump() for alias, locked in sorted(aliases.items())}
            for name, aliases in sorted(lock.models.items())
        }
    }
    path.write_text(HEADER + yaml.safe_dump(body, sort_keys=False), "utf-8")


def lock_from_registry(registry: Registry) -> ModelsLock:
    """The served aliases of every registered model, as the registry has them now."""
    models: dict[str, dict[str, LockedVersion]] = {}
    for model in registry.list_models():
        aliases = registry_aliases(registry, model.name)
        if aliases:
            models[model.name] = aliases
    return ModelsLock(models=models)


def registry_aliases(registry: Registry, model: str) -> dict[str, LockedVersion]:
    """`model`'s served aliases and the version and sha256 each points at."""
    found: dict[str, LockedVersion] = {}
    for alias in registry.aliases(model):
        if alias in SERVED_ALIASES:
            version = registry.get_version(model, alias)
            found[alias] = LockedVersion(version=version.label, sha256=version.sha256)
    return found
