"""One drift check: the declared state (mesh.yaml, the models lock file) against the
registry and the running mesh, as a list of demigod.ops.drift.Drift."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demigod.config import Settings
from demigod.mesh_state import config_fingerprint
from demigod.ops.drift import (
    DeclaredVersion,
    Drift,
    alias_drift,
    config_drift,
    replica_drift,
    served_drift,
)
from demigod.ops.lockfile import LockedVersion, ModelsLock, read_lock, registry_aliases
from demigod.ops.running import AdminClient, RunningMesh, read_running_mesh
from demigod.ops.target import api_key, gateway_url
from demigod.registry import CANDIDATE, STABLE, Registry, RegistryError
from demigod.routing.versions import split_versions

# `where` of drifts found in the registry.
REGISTRY = "registry"


@dataclass(frozen=True)
class DriftReport:
    gateway_url: str
    lock_file: Path
    drifts: list[Drift]
    nodes: list[str]  # the processes that reported their state

    def to_json(self) -> dict[str, object]:
        return {
            "gateway": self.gateway_url,
            "lock_file": str(self.lock_file),
            "nodes": self.nodes,
            "drift": [d.to_json() for d in self.drifts],
        }


def check_drift(settings: Settings, lock_file: Path | None = None) -> DriftReport:
    """Compare once. Raises LockError when the lock file is missing or invalid."""
    lock_path = lock_file or settings.ops.drift.lock_file
    lock = read_lock(lock_path)
    drifts = _registry_drift(settings, lock)
    url = gateway_url(settings)
    client = AdminClient(api_key(settings), settings.ops.timeout_seconds)
    try:
        running = read_running_mesh(url, client)
    finally:
        client.close()
    drifts += _running_drift(settings, lock, running)
    return DriftReport(url, lock_path, drifts, [node.url for node in running.nodes])


def _registry_drift(settings: Settings, lock: ModelsLock) -> list[Drift]:
    try:
        with Registry.open(settings.database_url, settings.data_dir, actor="demigod ops") as reg:
            registered = {model.name for model in reg.list_models()}
            current: dict[str, dict[str, LockedVersion]] = {
                name: registry_aliases(reg, name) for name in sorted(registered)
            }
    except RegistryError as exc:
        return [Drift("unreachable", REGISTRY, "readable", str(exc), REGISTRY)]
    return alias_drift(lock.models, current, REGISTRY)


def declared_versions(
    settings: Settings, lock: ModelsLock
) -> dict[tuple[str, str], DeclaredVersion]:
    """(model, role) -> version: mesh.yaml's `models` (first entry of a name stable, second
    candidate), and the lock file's aliases for every other model."""
    declared: dict[tuple[str, str], DeclaredVersion] = {}
    stable, candidates = split_versions(settings.models)
    for role, configs in (("stable", stable), ("candidate", candidates)):
        for config in configs:
            declared[(config.name, role)] = DeclaredVersion(config.version, None)
    configured = {config.name for config in settings.models}
    for model, aliases in lock.models.items():
        if model in configured:
            continue
        stable_alias = aliases.get(STABLE)
        for alias, locked in aliases.items():
            if alias == CANDIDATE and stable_alias is not None and locked == stable_alias:
                continue  # a candidate that is the stable version is not served twice
            declared[(model, alias)] = DeclaredVersion(locked.version, locked.sha256)
    return declared


def _running_drift(settings: Settings, lock: ModelsLock, running: RunningMesh) -> list[Drift]:
    drifts = [
        Drift("unreachable", url, "answers", why, url) for url, why in running.unreachable.items()
    ]
    if not running.nodes:
        return drifts  # nothing answered: versions and config cannot be compared
    fingerprint = config_fingerprint(settings)
    for node in running.nodes:
        drifts += config_drift(fingerprint, node.state.config, node.url)
    gateway = running.nodes[0]
    declared_upstreams: dict[str, list[str]] = {}
    for upstream in settings.upstreams:  # a canary's stable and candidate share a name
        declared_upstreams.setdefault(upstream.name, []).extend(upstream.urls)
    drifts += replica_drift(declared_upstreams, gateway.state.upstreams, gateway.url)
    served = [(node.url, version) for node in running.nodes for version in node.state.models]
    drifts += served_drift(declared_versions(settings, lock), served, settings.canary.weights)
    return drifts
