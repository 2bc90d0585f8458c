"""One drift check: the declared state (mesh.yaml, the models lock file, the committed
rendered manifests) against the registry, the running mesh, and the containers that run
it, as a list of demigod.ops.drift.Drift.

The parts (`CHECKS`) can run alone: `manifest` needs nothing running, so the deploy
workflow runs it before it applies anything."""

from __future__ import annotations

import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import yaml

from demigod.config import Settings
from demigod.deploy.kubernetes.names import APP
from demigod.mesh_state import config_fingerprint
from demigod.ops.container_drift import (
    PART_OF,
    RuntimeUnreachableError,
    declared_workloads,
    kubernetes_workloads,
    podman_workloads,
    workload_drift,
)
from demigod.ops.drift import (
    DeclaredVersion,
    Drift,
    alias_drift,
    config_drift,
    replica_drift,
    served_drift,
)
from demigod.ops.lockfile import LockedVersion, ModelsLock, read_lock, registry_aliases
from demigod.ops.manifest_drift import manifest_drift
from demigod.ops.running import AdminClient, RunningMesh, read_running_mesh
from demigod.ops.target import api_key, gateway_url
from demigod.registry import CANDIDATE, STABLE, Registry, RegistryError
from demigod.routing.versions import split_versions

# `where` of drifts found in the registry.
REGISTRY = "registry"
# The parts of a check: the lock file against the registry's aliases; the running
# gateway and workers against mesh.yaml and the lock; the committed render against a fresh
# one; the running containers against the rendered deployment (where configured).
Check = Literal["registry", "mesh", "manifest", "containers"]
CHECKS: tuple[Check, ...] = get_args(Check)
KUSTOMIZE_TIMEOUT_SECONDS = 120


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


def check_drift(
    settings: Settings, lock_file: Path | None = None, checks: Collection[Check] = CHECKS
) -> DriftReport:
    """Compare once, the parts in `checks` (`manifest` and `containers` only where
    ops.drift configures them). Raises LockError when the lock file is missing or invalid
    (only read for `registry` and `mesh`)."""
    lock_path = lock_file or settings.ops.drift.lock_file
    lock = read_lock(lock_path) if {"registry", "mesh"} & set(checks) else ModelsLock()
    drifts: list[Drift] = []
    if "registry" in checks:
        drifts += _registry_drift(settings, lock)
    url = gateway_url(settings)
    nodes: list[str] = []
    if "mesh" in checks:
        client = AdminClient(api_key(settings), settings.ops.timeout_seconds)
        try:
            running = read_running_mesh(url, client)
        finally:
            client.close()
        drifts += _running_drift(settings, lock, running)
        nodes = [node.url for node in running.nodes]
    if "manifest" in checks and settings.ops.drift.manifests is not None:
        drifts += _manifest_drift(settings, settings.ops.drift.manifests)
    if "containers" in checks:
        drifts += _container_drift(settings)
    return DriftReport(url, lock_path, drifts, nodes)


def _manifest_drift(settings: Settings, committed: Path) -> list[Drift]:
    """The committed `deploy render k8s` tree against a fresh render of `settings`."""
    from demigod.deploy.footprint import FootprintUnknownError, place_models
    from demigod.deploy.kubernetes import render_files
    from demigod.deploy.placement import PlacementError
    from demigod.lifecycle.state_size import StateSizeError

    try:
        rendered = render_files(settings, place_models(settings))
    except (FootprintUnknownError, PlacementError, StateSizeError) as exc:
        return [Drift("manifest", str(committed), "renders", f"cannot render: {exc}", "mesh.yaml")]
    return manifest_drift(rendered, committed)


def _container_drift(settings: Settings) -> list[Drift]:
    """The Podman host's pods against the rendered Pod YAML, and the cluster's workloads
    against the committed overlay, each where ops.drift names it."""
    drift = settings.ops.drift
    found: list[Drift] = []
    if drift.podman_deployment is not None:
        where = f"podman ({drift.podman_deployment})"
        try:
            pods = [p for p in yaml.safe_load_all(drift.podman_deployment.read_text()) if p]
            declared = declared_workloads(pods)
            part_of = {w.labels.get(PART_OF, "") for w in declared.values()}
            running = {}
            for name in sorted(part_of):
                running.update(podman_workloads(name))
        except OSError as exc:
            path = str(drift.podman_deployment)
            found.append(Drift("manifest", path, "rendered Pod YAML", f"unreadable: {exc}", where))
        except RuntimeUnreachableError as exc:
            found.append(Drift("unreachable", "podman", "answers", str(exc), where))
        else:
            found += workload_drift(declared, running, where)
    if drift.kubernetes_overlay is not None and drift.manifests is not None:
        found += _cluster_drift(settings, drift.manifests / "overlays" / drift.kubernetes_overlay)
    return found


def _cluster_drift(settings: Settings, overlay: Path) -> list[Drift]:
    """The overlay's Deployments and StatefulSets (`kubectl kustomize`) against the
    cluster's, in the overlay's namespace."""
    drift = settings.ops.drift
    environment = settings.kubernetes.environments.get(drift.kubernetes_overlay or "")
    context = drift.kube_context or "the current context"
    where = f"kubernetes ({context})"
    if environment is None:
        known = ", ".join(settings.kubernetes.environments)
        why = f"no environment {drift.kubernetes_overlay!r} (kubernetes.environments: {known})"
        return [Drift("manifest", str(overlay), "an overlay", why, where)]
    try:
        built = subprocess.run(
            ["kubectl", "kustomize", str(overlay)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Drift("unreachable", "kubectl", "runs", str(exc), where)]
    if built.returncode != 0:
        return [Drift("manifest", str(overlay), "builds", built.stderr.strip()[-300:], where)]
    declared = declared_workloads(o for o in yaml.safe_load_all(built.stdout) if o)
    try:
        running = kubernetes_workloads(environment.namespace, APP, context=drift.kube_context)
    except RuntimeUnreachableError as exc:
        return [Drift("unreachable", "kubernetes", "answers", str(exc), where)]
    return workload_drift(declared, running, where)


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
