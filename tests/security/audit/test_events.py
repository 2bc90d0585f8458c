"""Admin and lifecycle events land in the admin chain, sealed, and verify."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from demigod.cli import app
from demigod.config import Settings
from demigod.registry.registry import Registry, default_database_url
from demigod.security.audit.events import admin_node, subscribe_registry
from demigod.security.audit.verify import verify_chain


def kinds(chain: Path) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [
        (r["kind"], r["data"])
        for segment in sorted(chain.glob("records-*.jsonl"))
        for r in map(json.loads, segment.read_text().splitlines())
    ]


def test_registry_lifecycle_events_are_audited(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with Registry(default_database_url(tmp_path), actor="alice") as registry:
        subscribe_registry(registry, settings)
        registry.ensure_model("mamba-chat")
        registry.record_event("mamba-chat", "promotion.refused", reason="gate failed")
    chain = tmp_path / "audit" / admin_node()
    recorded = kinds(chain)
    assert [k for k, _ in recorded] == ["lifecycle.model.created", "lifecycle.promotion.refused"]
    assert recorded[0][1]["actor"] == "alice" and recorded[1][1]["reason"] == "gate failed"
    report = verify_chain(chain)
    assert report.ok and report.sealed_through == 1  # each event sealed at once


def test_api_key_create_and_revoke_are_audited(tmp_path: Path) -> None:
    env = {"DEMIGOD_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    created = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--name", "ci", "--json"], env=env
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    revoked = runner.invoke(app, ["keys", "revoke", key["id"]], env=env)
    assert revoked.exit_code == 0, revoked.output
    recorded = kinds(tmp_path / "audit" / admin_node())
    assert [k for k, _ in recorded] == ["key.create", "key.revoke"]
    assert recorded[0][1]["tenant"] == "acme" and recorded[1][1]["id"] == key["id"]
    # The key itself (shown once) and its hash are never in the audit log.
    text = json.dumps(recorded)
    assert key["key"] not in text and "sha256" not in text


def test_canary_decisions_are_audited(tmp_path: Path) -> None:
    from demigod.canary.store import CanaryEvent, CanaryState, FileCanaryStore
    from demigod.security.audit.events import AuditedCanaryStore

    settings = Settings(data_dir=tmp_path)
    store = AuditedCanaryStore(FileCanaryStore(tmp_path / "canary.json"), settings)
    state = CanaryState("mamba", "v1", "v2", 5.0, "running", "started")
    store.put(state, CanaryEvent("mamba", "start", 5.0, "v1", "v2", "candidate v2 at 5%"))
    assert store.states()["mamba"].weight == 5.0  # the decision is stored as before
    ((kind, data),) = kinds(tmp_path / "audit" / admin_node())
    assert kind == "canary.start"
    assert (data["model"], data["candidate"], data["weight"], data["status"]) == (
        "mamba", "v2", 5.0, "running",
    )  # fmt: skip
