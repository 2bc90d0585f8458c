"""What the registry hands out: plain frozen dataclasses, never live ORM rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# Version statuses. `ready`: its file is on local disk; `retired`: snapshotted and deleted
# locally (restore brings it back).
READY = "ready"
RETIRED = "retired"

BACKENDS = ("llama.cpp", "transformers")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    architecture: str | None
    family: str | None
    parameter_count: int | None
    licence: str | None
    categories: list[str]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


@dataclass(frozen=True)
class VersionInfo:
    """One version of a model. `label` (`v1`, `v2`, ...) is what users type after `@`."""

    model: str
    label: str
    sha256: str
    quantization: str
    size_bytes: int
    storage_uri: str
    backend: str
    status: str
    source_uri: str | None
    revision: str | None
    reference: str | None
    snapshot_uri: str | None
    created_at: datetime
    last_used_at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.label}"

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


@dataclass(frozen=True)
class AliasInfo:
    """`name` -> `version`; `row_version` is what a move must expect (optimistic locking)."""

    model: str
    name: str
    version: str
    row_version: int
    updated_at: datetime
    updated_by: str

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


@dataclass(frozen=True)
class EvaluationRecord:
    model: str
    version: str
    suite: str
    metric: str
    value: float
    threshold: float | None
    passed: bool | None
    tool_versions: dict[str, str]
    details: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


@dataclass(frozen=True)
class LifecycleEvent:
    """Who did what to which model (and version), when and why. Hooks receive these."""

    model: str
    version: str | None
    action: str
    actor: str
    reason: str | None
    details: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


def _json(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in data.items()
    }
