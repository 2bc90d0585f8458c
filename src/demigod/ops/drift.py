"""Drift: each way the running mesh differs from what git declares. Pure comparisons;
reading the running side is demigod.ops.running, the command demigod.ops.cli.

Kinds (the `kind` label of `demigod_drift`):
- `alias`: a registry alias (stable, candidate) points elsewhere than the lock file says.
- `model_version`: a process serves another version (or other bytes) than declared.
- `model_missing`: a declared version is served by no reachable process.
- `model_unexpected`: a process serves a version nothing declares.
- `canary_weight`: a candidate gets another share of traffic than mesh.yaml's
  canary.weights (a rollout in progress shows here until it ends and git follows).
- `config`: a process runs with a configuration field that differs from mesh.yaml.
- `replica`: an upstream replica is down, or the gateway's replicas are not mesh.yaml's.
- `manifest`: a committed rendered manifest differs from a fresh render of mesh.yaml (a
  render nobody re-ran, or an edit by hand): demigod.ops.manifest_drift.
- `container`: a container or workload the rendered deployment declares is missing, not
  ready or runs another image, arguments or environment, or one runs that nothing
  declares (Podman on this host, or the cluster): demigod.ops.container_drift.
- `unreachable`: the gateway (or a worker it lists), the registry, Podman or the cluster
  did not answer: nothing can be compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from demigod.mesh_state import ConfigFingerprint, ServedVersion, UpstreamReplica
from demigod.ops.lockfile import LockedVersion

DriftKind = Literal[
    "alias",
    "model_version",
    "model_missing",
    "model_unexpected",
    "canary_weight",
    "config",
    "replica",
    "manifest",
    "container",
    "unreachable",
]
DRIFT_KINDS: tuple[DriftKind, ...] = get_args(DriftKind)
ABSENT = "(absent)"


@dataclass(frozen=True)
class Drift:
    """One difference. `subject` names what differs (`chat@stable`, `engine.n_ctx`, a
    replica URL); `where` names the place the running value was read."""

    kind: DriftKind
    subject: str
    declared: str
    running: str
    where: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeclaredVersion:
    """A version git says is served under `role`; sha256 None: the file is not locked."""

    version: str
    sha256: str | None


def _describe(version: str, sha256: str | None) -> str:
    return f"{version} ({sha256[:12]})" if sha256 else version


def alias_drift(
    lock: Mapping[str, Mapping[str, LockedVersion]],
    registry: Mapping[str, Mapping[str, LockedVersion]],
    where: str,
) -> list[Drift]:
    """Locked aliases against the registry's (same shape: model -> alias -> version)."""
    found: list[Drift] = []
    for model in sorted(set(lock) | set(registry)):
        declared, running = lock.get(model, {}), registry.get(model, {})
        for alias in sorted(set(declared) | set(running)):
            want, have = declared.get(alias), running.get(alias)
            if want == have:
                continue
            found.append(
                Drift(
                    "alias",
                    f"{model}@{alias}",
                    _describe(want.version, want.sha256) if want else ABSENT,
                    _describe(have.version, have.sha256) if have else ABSENT,
                    where,
                )
            )
    return found


def served_drift(
    declared: Mapping[tuple[str, str], DeclaredVersion],
    served: Iterable[tuple[str, ServedVersion]],
    declared_weights: Mapping[str, float],
) -> list[Drift]:
    """Declared (model, role) versions against what each process (`where`) serves, and
    each served candidate's traffic share against `declared_weights` (percent, default 0)."""
    found: list[Drift] = []
    seen: set[tuple[str, str]] = set()
    for where, version in served:
        key = (version.model, version.role)
        subject = f"{version.model}@{version.role}"
        running = _describe(version.version, version.sha256)
        want = declared.get(key)
        if want is None:
            found.append(Drift("model_unexpected", subject, ABSENT, running, where))
            continue
        seen.add(key)
        same_bytes = want.sha256 is None or version.sha256 in (None, want.sha256)
        if version.version != want.version or not same_bytes:
            declared_text = _describe(want.version, want.sha256)
            found.append(Drift("model_version", subject, declared_text, running, where))
        if version.role == "candidate":
            weight = declared_weights.get(version.model, 0.0)
            if abs(version.weight_percent - weight) > 1e-9:
                found.append(
                    Drift(
                        "canary_weight",
                        subject,
                        f"{weight:g}%",
                        f"{version.weight_percent:g}%",
                        where,
                    )
                )
    for (model, role), want in sorted(declared.items()):
        if (model, role) not in seen:
            found.append(
                Drift(
                    "model_missing",
                    f"{model}@{role}",
                    _describe(want.version, want.sha256),
                    "not served by any reachable process",
                    "mesh",
                )
            )
    return found


def config_drift(
    declared: ConfigFingerprint, running: ConfigFingerprint, where: str
) -> list[Drift]:
    """One drift per configuration field whose digest differs (values stay private)."""
    if declared.sha256 == running.sha256:
        return []
    found = []
    for field in sorted(set(declared.fields) | set(running.fields)):
        want, have = declared.fields.get(field, ABSENT), running.fields.get(field, ABSENT)
        if want != have:
            found.append(Drift("config", field, want, have, where))
    return found


def replica_drift(
    declared: Mapping[str, list[str]], running: Iterable[UpstreamReplica], where: str
) -> list[Drift]:
    """mesh.yaml's upstream replicas (model -> URLs) against the gateway's, and each one
    the gateway reports down."""
    found: list[Drift] = []
    have: set[tuple[str, str]] = set()
    for replica in running:
        have.add((replica.model, replica.url))
        subject = f"{replica.model} {replica.url}"
        if replica.url not in declared.get(replica.model, []):
            found.append(Drift("replica", subject, ABSENT, "up" if replica.up else "down", where))
        elif not replica.up:
            found.append(Drift("replica", subject, "up", "down", where))
    for model, urls in sorted(declared.items()):
        for url in urls:
            if (model, url) not in have:
                found.append(Drift("replica", f"{model} {url}", "up", ABSENT, where))
    return found
