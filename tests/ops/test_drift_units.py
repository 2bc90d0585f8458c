"""The drift comparisons and the config fingerprint, on plain values."""

from __future__ import annotations

from demigod.config import Settings
from demigod.mesh_state import ServedVersion, UpstreamReplica, config_fingerprint
from demigod.ops.drift import (
    DeclaredVersion,
    alias_drift,
    config_drift,
    replica_drift,
    served_drift,
)
from demigod.ops.drift_check import declared_versions
from demigod.ops.lockfile import LockedVersion, ModelsLock

SHA_A, SHA_B = "a" * 64, "b" * 64


def served(model: str, version: str, sha: str | None, role: str = "stable", weight: float = 100):
    return ServedVersion(model=model, version=version, sha256=sha, role=role, weight_percent=weight)  # type: ignore[arg-type]


def test_an_alias_moved_in_the_registry_is_named_with_both_versions() -> None:
    lock = {"chat": {"stable": LockedVersion(version="v1", sha256=SHA_A)}}
    moved = {"chat": {"stable": LockedVersion(version="v2", sha256=SHA_B)}}
    (drift,) = alias_drift(lock, moved, "registry")
    assert (drift.kind, drift.subject) == ("alias", "chat@stable")
    assert drift.declared.startswith("v1 (aaaa") and drift.running.startswith("v2 (bbbb")
    assert alias_drift(lock, lock, "registry") == []
    (extra,) = alias_drift({}, moved, "registry")
    assert (extra.declared, extra.running[:2]) == ("(absent)", "v2")


def test_served_versions_against_the_declared_ones() -> None:
    declared = {
        ("chat", "stable"): DeclaredVersion("v1", SHA_A),
        ("chat", "candidate"): DeclaredVersion("v2", SHA_B),
        ("code", "stable"): DeclaredVersion("v7", None),
    }
    running = [
        ("http://w1", served("chat", "v1", SHA_A, weight=75)),
        ("http://w1", served("chat", "v2", SHA_B, "candidate", weight=25)),
        ("http://w2", served("code", "v7", SHA_B)),  # not locked: any bytes of v7 will do
    ]
    kinds = [(d.kind, d.subject) for d in served_drift(declared, running, {"chat": 25})]
    assert kinds == []
    # other bytes under the same label, a weight nobody declared, a model nobody declared
    running[0] = ("http://w1", served("chat", "v1", SHA_B, weight=90))
    running[1] = ("http://w1", served("chat", "v2", SHA_B, "candidate", weight=10))
    running.append(("http://w3", served("eval", "v1", None)))
    found = {(d.kind, d.subject, d.where) for d in served_drift(declared, running, {"chat": 25})}
    assert found == {
        ("model_version", "chat@stable", "http://w1"),
        ("canary_weight", "chat@candidate", "http://w1"),
        ("model_unexpected", "eval@stable", "http://w3"),
    }
    # a declared version nobody serves
    (missing,) = served_drift(declared, running[1:3], {"chat": 10})
    assert (missing.kind, missing.subject) == ("model_missing", "chat@stable")


def test_config_drift_names_the_field_not_its_value() -> None:
    declared = config_fingerprint(Settings())
    running = config_fingerprint(Settings(engine={"queue_size": 8}, host="0.0.0.0", port=9))
    (drift,) = config_drift(declared, running, "http://gw")
    assert (drift.kind, drift.subject) == ("config", "engine.queue_size")
    assert "8" not in drift.running and len(drift.running) == 16  # a digest, not the value
    # the listening address and the API key of the drift checker are not configuration drift
    same = Settings(host="0.0.0.0", port=1, ops={"api_key": "dgk_x"})
    assert config_drift(declared, config_fingerprint(same), "http://gw") == []


def test_replicas_down_missing_or_undeclared() -> None:
    declared = {"chat": ["http://a", "http://b"]}
    running = [
        UpstreamReplica(model="chat", url="http://a", up=True),
        UpstreamReplica(model="chat", url="http://c", up=True),
    ]
    found = {(d.subject, d.declared, d.running) for d in replica_drift(declared, running, "gw")}
    assert found == {("chat http://b", "up", "(absent)"), ("chat http://c", "(absent)", "up")}
    running = [
        UpstreamReplica(model="chat", url=url, up=url == "http://a") for url in declared["chat"]
    ]
    (down,) = replica_drift(declared, running, "gw")
    assert (down.kind, down.subject, down.running) == ("replica", "chat http://b", "down")


def test_declared_versions_come_from_the_config_else_the_lock() -> None:
    settings = Settings(models=[{"name": "code", "path": "/m/code.gguf", "version": "2026-11-01"}])
    lock = ModelsLock(
        models={
            "code": {"stable": LockedVersion(version="v9", sha256=SHA_A)},  # the config wins
            "chat": {
                "stable": LockedVersion(version="v1", sha256=SHA_A),
                "candidate": LockedVersion(version="v1", sha256=SHA_A),  # same: no canary
            },
            "eval": {
                "stable": LockedVersion(version="v1", sha256=SHA_A),
                "candidate": LockedVersion(version="v2", sha256=SHA_B),
            },
        }
    )
    assert declared_versions(settings, lock) == {
        ("code", "stable"): DeclaredVersion("2026-11-01", None),
        ("chat", "stable"): DeclaredVersion("v1", SHA_A),
        ("eval", "stable"): DeclaredVersion("v1", SHA_A),
        ("eval", "candidate"): DeclaredVersion("v2", SHA_B),
    }
