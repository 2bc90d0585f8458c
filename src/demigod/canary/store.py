"""Where canary state lives: per model, its stable and candidate versions, the candidate's
weight and the rollout's status, plus an append-only log of every decision (the events).

`CanaryStore` is the interface the gateway (reads) and the controller (writes) share.
`FileCanaryStore` keeps it in one JSON file and a JSON-lines event log beside it, written
atomically under an advisory lock, so several gateway processes on one host agree.
`RegistryCanaryStore` keeps it in the model registry (table `canary_rollouts`, alembic
revision 0002) with each decision a `canary.<action>` lifecycle event, so gateways on
several hosts sharing one PostgreSQL registry agree.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from demigod.config import Settings

if TYPE_CHECKING:
    from demigod.registry import Registry

Status = Literal["idle", "running", "rolled_back", "promoted", "aborted"]


@dataclass(frozen=True)
class CanaryState:
    """One model's rollout. `weight` is the candidate's share in percent (0-100)."""

    model: str
    stable: str
    candidate: str
    weight: float = 0.0
    status: Status = "idle"
    reason: str = ""
    updated: float = field(default_factory=time.time)

    def with_(self, **changes: object) -> CanaryState:
        return replace(self, updated=time.time(), **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CanaryEvent:
    """One decision, as the event log and the logs record it."""

    model: str
    action: str  # start, advance, hold, rollback, complete, promote, abort
    weight: float
    stable: str
    candidate: str
    reason: str
    at: float = field(default_factory=time.time)


class CanaryStore(Protocol):
    def states(self) -> dict[str, CanaryState]:
        """Every model's rollout state, by model name."""
        ...

    def put(self, state: CanaryState, event: CanaryEvent) -> None:
        """Record `state` and its `event` together."""
        ...

    def events(self, model: str | None = None) -> list[CanaryEvent]:
        """Recorded events, oldest first; only `model`'s when given."""
        ...


class FileCanaryStore:
    """`path` holds `{model: state}`; `path` + `.events.jsonl` the events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events_path = path.with_name(path.name + ".events.jsonl")

    def states(self) -> dict[str, CanaryState]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        return {name: CanaryState(**state) for name, state in raw.items()}

    def put(self, state: CanaryState, event: CanaryEvent) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            states = self.states()
            states[state.model] = state
            with tempfile.NamedTemporaryFile(
                "w", dir=self.path.parent, prefix=".canary-", delete=False, encoding="utf-8"
            ) as handle:
                json.dump({name: asdict(s) for name, s in states.items()}, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, self.path)
            with self.events_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(asdict(event)) + "\n")

    def events(self, model: str | None = None) -> list[CanaryEvent]:
        try:
            lines = self.events_path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = [CanaryEvent(**json.loads(line)) for line in lines if line.strip()]
        return [e for e in found if model is None or e.model == model]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self.path.with_name(self.path.name + ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class RegistryCanaryStore:
    """The canary store in the model registry (`canary.store: registry`)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def states(self) -> dict[str, CanaryState]:
        return {row["model"]: CanaryState(**row) for row in self._registry.canary_rows()}

    def put(self, state: CanaryState, event: CanaryEvent) -> None:
        details = {"weight": event.weight, "stable": event.stable, "candidate": event.candidate}
        self._registry.put_canary(asdict(state), event.action, event.reason, details)

    def events(self, model: str | None = None) -> list[CanaryEvent]:
        found = []
        for event in self._registry.events(model, limit=1000):
            if not event.action.startswith("canary."):
                continue
            details = event.details
            found.append(
                CanaryEvent(
                    model=event.model,
                    action=event.action.removeprefix("canary."),
                    weight=float(details.get("weight", 0.0)),
                    stable=str(details.get("stable", "")),
                    candidate=str(details.get("candidate", event.version or "")),
                    reason=event.reason or "",
                    at=event.created_at.timestamp(),
                )
            )
        return found


def open_store(settings: Settings) -> CanaryStore:
    """The store `canary.store` names: the JSON file, or the registry at `database_url`
    (migrated to its latest revision). Raises what opening the registry raises."""
    if settings.canary.store == "registry":
        from demigod.registry import Registry

        return RegistryCanaryStore(
            Registry.open(settings.database_url, settings.data_dir, actor="demigod canary")
        )
    return FileCanaryStore(settings.canary.state_file)
