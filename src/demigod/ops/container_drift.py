"""Drift of kind `container`: the workloads a rendered deployment declares against those
that run, on one Podman host (`podman pod ps` + `podman container inspect`) or in a
Kubernetes namespace (`kubectl get`).

Both sides are reduced to `Workload`s (a Pod on Podman, a Deployment or StatefulSet in a
cluster): per container its image, arguments and the environment the render set, and how
many replicas are ready. A declared workload that is missing, not ready or runs other
values is reported, and so is a DemiGod workload nothing declares (a model's worker left
behind). Environment values are compared by digest, as configuration drift does: a
report never prints them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from demigod.deploy.podman import PART_OF
from demigod.ops.drift import ABSENT, Drift

WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet")
COMMAND_TIMEOUT_SECONDS = 60
DIGEST_HEX = 12


class RuntimeUnreachableError(Exception):
    """Podman or the cluster did not answer; the message says why."""


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    args: tuple[str, ...]
    env: Mapping[str, str]  # the variables the render sets (Kubernetes `value`s only)


@dataclass(frozen=True)
class Workload:
    """A Pod (Podman) or a Deployment/StatefulSet (Kubernetes), keyed `Kind/name`."""

    kind: str
    name: str
    containers: Mapping[str, ContainerSpec]
    replicas: int = 1
    ready: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def _container(spec: Mapping[str, Any]) -> ContainerSpec:
    env = {item["name"]: str(item["value"]) for item in spec.get("env", []) if "value" in item}
    return ContainerSpec(spec["image"], tuple(spec.get("args", [])), env)


def declared_workloads(objects: Iterable[Mapping[str, Any]]) -> dict[str, Workload]:
    """The Pods, Deployments and StatefulSets among rendered `objects`, by `Kind/name`."""
    found: dict[str, Workload] = {}
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
        replicas = 1 if obj["kind"] == "Pod" else int(obj["spec"].get("replicas", 1))
        workload = Workload(
            obj["kind"],
            obj["metadata"]["name"],
            {c["name"]: _container(c) for c in spec["containers"]},
            replicas=replicas,
            ready=replicas,
            labels=obj["metadata"].get("labels", {}),
        )
        found[workload.key] = workload
    return found


def _digest(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:DIGEST_HEX]


def _container_drift(
    subject: str, want: ContainerSpec, have: ContainerSpec, where: str
) -> list[Drift]:
    found = []
    if want.image != have.image:
        found.append(Drift("container", f"{subject} image", want.image, have.image, where))
    if want.args != have.args:
        found.append(
            Drift("container", f"{subject} args", " ".join(want.args), " ".join(have.args), where)
        )
    for name, value in sorted(want.env.items()):
        running = have.env.get(name)
        if running != value:
            shown = ABSENT if running is None else _digest(running)
            found.append(Drift("container", f"{subject} env {name}", _digest(value), shown, where))
    return found


def workload_drift(
    declared: Mapping[str, Workload], running: Mapping[str, Workload], where: str
) -> list[Drift]:
    """Declared workloads (by `Kind/name`) against running ones: missing, not ready,
    unexpected, and each container's image, arguments and rendered environment."""
    found: list[Drift] = []
    for key in sorted(set(declared) | set(running)):
        want, have = declared.get(key), running.get(key)
        if have is None:
            found.append(Drift("container", key, "running", ABSENT, where))
            continue
        if want is None:
            found.append(Drift("container", key, ABSENT, f"{have.ready} ready", where))
            continue
        if have.ready < have.replicas or have.replicas == 0:
            found.append(
                Drift(
                    "container",
                    key,
                    f"{have.replicas or want.replicas} ready",
                    f"{have.ready} ready",
                    where,
                )
            )
        for name, spec in sorted(want.containers.items()):
            subject = f"{key} {name}"
            if name not in have.containers:
                found.append(Drift("container", subject, "running", ABSENT, where))
            else:
                found += _container_drift(subject, spec, have.containers[name], where)
    return found


def _run_json(command: Sequence[str], env: Mapping[str, str] | None = None) -> Any:
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnreachableError(f"{command[0]}: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeUnreachableError(
            f"`{' '.join(command[:3])} ...` exited {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return json.loads(done.stdout or "null")


def podman_workloads(
    part_of: str, podman: str = "podman", env: Mapping[str, str] | None = None
) -> dict[str, Workload]:
    """The pods labelled `app.kubernetes.io/part-of=part_of` that Podman has (running or
    not), their containers (infra left out) read with `podman container inspect`. Raises
    RuntimeUnreachableError when Podman fails."""
    pods = _run_json(
        [podman, "pod", "ps", "--format", "json", "--filter", f"label={PART_OF}={part_of}"], env
    )
    found: dict[str, Workload] = {}
    for pod in pods or []:
        ids = [c["Id"] for c in pod.get("Containers", []) if not c["Names"].endswith("-infra")]
        inspect = [podman, "container", "inspect", "--format", "json", *ids]
        containers, running = {}, 0
        for container in _run_json(inspect, env) if ids else []:
            env_pairs = (item.partition("=") for item in container["Config"].get("Env") or [])
            # `podman kube play` names a container POD-NAME.
            name = container["Name"].removeprefix(f"{pod['Name']}-")
            containers[name] = ContainerSpec(
                container["ImageName"],
                tuple(container.get("Args") or []),
                {key: value for key, _, value in env_pairs},
            )
            running += bool(container["State"]["Running"])
        workload = Workload(
            "Pod",
            pod["Name"],
            containers,
            ready=int(bool(containers) and running == len(containers)),
            labels=pod.get("Labels") or {},
        )
        found[workload.key] = workload
    return found


def kubernetes_workloads(
    namespace: str,
    part_of: str,
    kubectl: str = "kubectl",
    context: str | None = None,
) -> dict[str, Workload]:
    """The Deployments and StatefulSets labelled `app.kubernetes.io/part-of=part_of` in
    `namespace`, as the cluster reports them (`kubectl get -o json`; KUBECONFIG and
    `context` choose the cluster). Raises RuntimeUnreachableError when kubectl fails."""
    command = [kubectl, "get", "deployments,statefulsets", "--namespace", namespace]
    command += ["--selector", f"{PART_OF}={part_of}", "--output", "json"]
    if context is not None:
        command += ["--context", context]
    listed = _run_json(command)
    found: dict[str, Workload] = {}
    for obj in (listed or {}).get("items", []):
        [workload] = declared_workloads([obj]).values()
        status = obj.get("status", {})
        replicas = int(obj["spec"].get("replicas", 1))  # as the autoscaler set it
        found[workload.key] = Workload(
            workload.kind,
            workload.name,
            workload.containers,
            replicas=replicas,
            ready=int(status.get("readyReplicas", 0)),
            labels=workload.labels,
        )
    return found
