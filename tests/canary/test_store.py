"""Both canary stores keep states and events alike: the JSON file and the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demigod.canary.store import (
    CanaryEvent,
    CanaryState,
    CanaryStore,
    FileCanaryStore,
    RegistryCanaryStore,
    open_store,
)
from demigod.config import Settings


@pytest.fixture(params=["file", "registry"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CanaryStore]:
    settings = Settings(
        data_dir=tmp_path,
        canary={"store": request.param, "state_file": tmp_path / "canary.json"},  # type: ignore[arg-type]
    )
    opened = open_store(settings)
    assert isinstance(opened, FileCanaryStore if request.param == "file" else RegistryCanaryStore)
    yield opened


def test_states_and_events_round_trip(store: CanaryStore) -> None:
    assert store.states() == {} and store.events() == []
    started = CanaryState("chat", "v1", "v2", 5.0, "running", "started")
    store.put(started, CanaryEvent("chat", "start", 5.0, "v1", "v2", "candidate v2 at 5%"))
    other = CanaryState("code", "a", "b", 25.0, "running", "started")
    store.put(other, CanaryEvent("code", "start", 25.0, "a", "b", "go"))
    rolled = started.with_(weight=0.0, status="rolled_back", reason="p95 1.2s > 0.1s")
    store.put(rolled, CanaryEvent("chat", "rollback", 0.0, "v1", "v2", "p95 1.2s > 0.1s"))
    states = store.states()
    assert states["chat"] == rolled and states["code"] == other
    chat = store.events("chat")
    assert [(e.action, e.weight, e.reason) for e in chat] == [
        ("start", 5.0, "candidate v2 at 5%"),
        ("rollback", 0.0, "p95 1.2s > 0.1s"),
    ]
    assert {e.model for e in store.events()} == {"chat", "code"}


def test_the_registry_store_writes_lifecycle_events(tmp_path: Path) -> None:
    from demigod.registry import Registry

    registry = Registry.open(None, tmp_path)
    store = RegistryCanaryStore(registry)
    state = CanaryState("chat", "v1", "v2", 50.0, "running", "advanced")
    store.put(state, CanaryEvent("chat", "advance", 50.0, "v1", "v2", "healthy at 25%"))
    (event,) = registry.events("chat")
    assert (event.action, event.version, event.reason) == ("canary.advance", "v2", "healthy at 25%")
    assert event.details["weight"] == 50.0
