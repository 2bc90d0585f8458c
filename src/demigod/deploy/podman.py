"""The mesh on one host as Podman runs it: the shared workloads (demigod.deploy.workloads)
as Pods for `podman kube play`, Quadlet units for Podman >= 4.4, and the systemd recipe for
Podman 4.3 (Debian 12), whose `podman-kube@.service` template plays the same file.

One Pod per worker replica and one for the gateway, all on the host's network: workers
listen on loopback ports, the gateway on the configured address. Writable state lives in
named volumes (Podman creates them owned by the containers' user, and `podman kube down`
keeps them): the gateway's data (audit log, its signing key, API keys, canary state) and
each worker's state cache. Each worker mounts its model file's folder read-only.

With backups configured (demigod.deploy.backup_workloads), the gateway's pod also runs the
backup agent on its data volume, and `systemd/` holds the timer taking a full copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from demigod.config import Settings
from demigod.deploy.backup_workloads import (
    BACKUPS_VOLUME,
    backup_configured,
    backup_sidecar,
    full_backup_units,
)
from demigod.deploy.placement import Placement
from demigod.deploy.served import ServedModel
from demigod.deploy.workloads import (
    DATA_VOLUME,
    MODELS_VOLUME,
    RUN_AS_UID,
    STATE_CACHE_VOLUME,
    TMP_VOLUME,
    JSONObject,
    gateway_container,
    pod_spec,
    worker_container,
    worker_upstream,
)

POD_FILE = "demigod.yaml"
SYSTEMD_NOTES = "SYSTEMD.md"
BACKUP_UNITS_DIR = "systemd"
LOOPBACK = "127.0.0.1"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
MODEL_LABEL = "demigod.io/model"
# Podman runs httpGet probes with curl, which the images leave out: the images' Python
# makes the same request instead.
PROBE_SCRIPT = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)"
_PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
_NOT_DNS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class PodmanTarget:
    """Images, ports and replica counts of one host's deployment."""

    gateway_image: str
    worker_image: str
    gpu_worker_image: str
    gateway_port: int
    first_worker_port: int
    replicas: Mapping[str, int] = field(default_factory=dict)
    name: str = "demigod"  # prefix of every pod and volume name


def dns_label(text: str) -> str:
    """`text` as a DNS label (pod, volume and label values): lowercase letters, digits, -."""
    return _NOT_DNS.sub("-", text.lower()).strip("-")


def podman_container(container: JSONObject, port: int, scratch: str) -> JSONObject:
    """A workload container as Podman 4.3's `kube play` takes it on the host network: no
    port declarations (it refuses them there), probes as commands (see PROBE_SCRIPT), and
    its emptyDir scratch volume named `scratch` (Podman makes an emptyDir a named volume
    of the same name, which every pod mounting a `tmp` would share)."""
    adapted = {key: value for key, value in container.items() if key != "ports"}
    adapted["volumeMounts"] = [
        {**mount, "name": scratch} if mount["name"] == TMP_VOLUME else mount
        for mount in container["volumeMounts"]
    ]
    for probe in _PROBES:
        if probe in container:
            timing = {k: v for k, v in container[probe].items() if k != "httpGet"}
            url = f"http://{LOOPBACK}:{port}{container[probe]['httpGet']['path']}"
            adapted[probe] = {"exec": {"command": ["python", "-c", PROBE_SCRIPT, url]}, **timing}
    return adapted


def _pod(name: str, labels: Mapping[str, str], spec: JSONObject) -> JSONObject:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": spec,
    }


def _claim(name: str) -> JSONObject:
    return {"persistentVolumeClaim": {"claimName": name}}


def render_pods(
    settings: Settings,
    served: Sequence[ServedModel],
    placements: Mapping[str, Placement],
    target: PodmanTarget,
) -> list[JSONObject]:
    """The Pods of the deployment: each model's worker replicas on consecutive loopback
    ports from `target.first_worker_port`, then the gateway in front of them. Raises
    ValueError when two model names make one pod name, or when the gateway would need a
    registry no container can reach (canary.store registry without database_url)."""
    if settings.canary.store == "registry" and settings.database_url is None:
        # The containers never see the host's SQLite registry (docs/containers.md): the
        # gateway would keep its rollouts in an empty registry of its own.
        raise ValueError(
            "canary.store: registry needs database_url (a PostgreSQL registry the gateway "
            "container and `demigod canary` share); use canary.store: file on one host"
        )
    slugs = [dns_label(model.worker.name) for model in served]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"model names collide as pod names: {sorted(slugs)}")
    pods: list[JSONObject] = []
    upstreams = []
    port = target.first_worker_port
    for model, slug in zip(served, slugs, strict=True):
        placement = placements.get(model.worker.name)
        on_gpu = placement is not None and placement.on_gpu
        urls = []
        for replica in range(target.replicas.get(model.worker.name, 1)):
            pod_name = f"{target.name}-worker-{slug}-{replica}"
            container = worker_container(
                settings,
                model.worker,
                image=target.gpu_worker_image if on_gpu else target.worker_image,
                host=LOOPBACK,
                port=port,
                resources=placement.resources if placement is not None else None,
            )
            volumes = {
                MODELS_VOLUME: {"hostPath": {"path": str(model.host_folder), "type": "Directory"}},
                STATE_CACHE_VOLUME: _claim(f"{pod_name}-state-cache"),
                f"{pod_name}-tmp": {"emptyDir": {}},
            }
            labels = {PART_OF: target.name, COMPONENT: "worker", MODEL_LABEL: slug}
            adapted = podman_container(container, port, f"{pod_name}-tmp")
            spec = pod_spec([adapted], volumes, host_network=True)
            pods.append(_pod(pod_name, labels, spec))
            urls.append(f"http://{LOOPBACK}:{port}")
            port += 1
        upstreams.append(worker_upstream(model.worker, urls))
    gateway = gateway_container(
        settings, upstreams, image=target.gateway_image, host=settings.host,
        port=target.gateway_port,
    )  # fmt: skip
    pod_name = f"{target.name}-gateway"
    volumes = {DATA_VOLUME: _claim(f"{target.name}-data"), f"{pod_name}-tmp": {"emptyDir": {}}}
    containers = [podman_container(gateway, target.gateway_port, f"{pod_name}-tmp")]
    if backup_configured(settings):
        sidecar = backup_sidecar(settings, image=target.gateway_image)
        containers.append(podman_container(sidecar, target.gateway_port, f"{pod_name}-tmp"))
        if (directory := settings.ops.backup.dir) is not None:
            # The host's directory (another disk, an NFS mount), writable by RUN_AS_UID.
            volumes[BACKUPS_VOLUME] = {"hostPath": {"path": str(directory), "type": "Directory"}}
    spec = pod_spec(containers, volumes, host_network=True)
    pods.append(_pod(pod_name, {PART_OF: target.name, COMPONENT: "gateway"}, spec))
    return pods


def pods_yaml(pods: Sequence[JSONObject]) -> str:
    """The Pods as one multi-document YAML file, as `podman kube play` reads it."""
    header = "# Rendered by `demigod deploy render podman`; re-render rather than edit.\n"
    return header + yaml.safe_dump_all(pods, sort_keys=False, default_flow_style=False)


_BINARY_SUFFIXES = {"Ki": "k", "Mi": "m", "Gi": "g", "Ti": "t"}


def podman_cpus(quantity: str) -> str:
    """A Kubernetes CPU quantity ("2500m", "2") as `podman run --cpus` takes it ("2.5")."""
    cores = int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
    return f"{cores:g}"


def podman_memory(quantity: str) -> str:
    """A Kubernetes memory quantity ("968Mi", "2Gi", bytes) as `podman run --memory`
    takes it ("968m", "2g"): Podman's k, m, g are powers of 1024."""
    for suffix, unit in _BINARY_SUFFIXES.items():
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + unit
    return quantity


def _systemd_quote(value: str) -> str:
    """A value inside double quotes in a unit file: backslashes and quotes escaped, `%`
    doubled (systemd's specifier character)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def _unit_header(description: str) -> list[str]:
    return [
        "# Rendered by `demigod deploy render podman`; re-render rather than edit.",
        "[Unit]",
        f"Description={description}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
    ]


_INSTALL = ["", "[Install]", "WantedBy=multi-user.target default.target", ""]


def kube_unit(pod_file: str) -> str:
    """A Quadlet `.kube` unit playing `pod_file` (relative: beside the unit file)."""
    lines = _unit_header("Phoenix DemiGod: gateway and model workers (podman kube play)")
    # A model load can take minutes before the workers answer.
    lines += ["[Kube]", f"Yaml={pod_file}", "", "[Service]", "TimeoutStartSec=900", *_INSTALL]
    return "\n".join(lines)


def container_units(pod: JSONObject) -> dict[str, str]:
    """A Quadlet `.container` unit per container of the pod, by unit name: the pod's name
    for its first container, `POD-CONTAINER` for a sidecar."""
    pod_name = pod["metadata"]["name"]
    first, *sidecars = pod["spec"]["containers"]
    units = {f"{pod_name}.container": _container_unit(pod, first, pod_name)}
    for sidecar in sidecars:
        name = f"{pod_name}-{sidecar['name']}"
        units[f"{name}.container"] = _container_unit(pod, sidecar, name)
    return units


def _container_unit(pod: JSONObject, container: JSONObject, name: str) -> str:
    """A Quadlet `.container` unit running one of the pod's containers the way `kube play`
    does: same image, arguments, environment, volumes, user and restrictions."""
    spec = pod["spec"]
    sources = {volume["name"]: volume for volume in spec["volumes"]}
    lines = _unit_header(f"Phoenix DemiGod: {name}")
    lines += [
        "[Container]",
        f"ContainerName={name}",
        f"Image={container['image']}",
        "Exec=" + " ".join(_systemd_quote(arg) for arg in container["args"]),
        "Network=host",
        f"User={RUN_AS_UID}",
        f"Group={RUN_AS_UID}",
        "ReadOnly=true",
        "NoNewPrivileges=true",
        "DropCapability=ALL",
    ]
    for variable in container["env"]:
        lines.append(f"Environment={_systemd_quote(variable['name'] + '=' + variable['value'])}")
    for mount in container["volumeMounts"]:
        source = sources[mount["name"]]
        if "emptyDir" in source:
            lines.append(f"Tmpfs={mount['mountPath']}")
            continue
        host = (
            source["hostPath"]["path"]
            if "hostPath" in source
            else source["persistentVolumeClaim"]["claimName"]
        )
        suffix = ":ro" if mount.get("readOnly") else ""
        lines.append(f"Volume={host}:{mount['mountPath']}{suffix}")
    if liveness := container.get("livenessProbe"):
        lines.append(
            "HealthCmd=" + " ".join(_systemd_quote(a) for a in liveness["exec"]["command"])
        )
        lines.append(f"HealthInterval={liveness['periodSeconds']}s")
        lines.append(f"HealthRetries={liveness['failureThreshold']}")
    limits = container.get("resources", {}).get("limits", {})
    podman_args = []
    if "cpu" in limits:
        podman_args.append(f"--cpus={podman_cpus(limits['cpu'])}")
    if "memory" in limits:
        podman_args.append(f"--memory={podman_memory(limits['memory'])}")
    if podman_args:
        lines.append("PodmanArgs=" + " ".join(podman_args))
    lines += ["", "[Service]", "Restart=always", "TimeoutStartSec=900", *_INSTALL]
    return "\n".join(lines)


def systemd_notes(pod_file: Path, backup_units: Sequence[str]) -> str:
    """How to run the rendered files under systemd, with and without Quadlet."""
    notes = f"""# Running this deployment under systemd

Rendered by `demigod deploy render podman`. Start it once by hand:

    podman kube play {pod_file}
    podman kube down {pod_file}        # stops and removes the pods; volumes stay

## Podman 4.3 (Debian 12): the podman-kube@ template

Podman ships `podman-kube@.service`, which plays a YAML file as a service:

    systemctl enable --now "podman-kube@$(systemd-escape {pod_file}).service"

## Podman >= 4.4: Quadlet

Copy `quadlet/*.kube` and `{POD_FILE}` into `/etc/containers/systemd/` (or
`~/.config/containers/systemd/` for rootless Podman), then:

    systemctl daemon-reload
    systemctl start demigod.service

Or, one unit per container instead of the pods: copy `quadlet/*.container` there instead.
"""
    if backup_units:
        timer = next(unit for unit in backup_units if unit.endswith(".timer"))
        notes += f"""
## Backups

The gateway's pod runs the backup agent beside the gateway. The full copy (a PostgreSQL
base backup, a whole SQLite copy) runs on a timer: copy `{BACKUP_UNITS_DIR}/*` into
`/etc/systemd/system/`, put the S3 credentials (`AWS_ACCESS_KEY_ID=...`) in
`/etc/demigod/backup.env` if backups go to a bucket, then:

    systemctl daemon-reload
    systemctl enable --now {timer}
"""
    return notes


def render_podman(
    settings: Settings,
    served: Sequence[ServedModel],
    placements: Mapping[str, Placement],
    target: PodmanTarget,
    out_dir: Path,
) -> list[Path]:
    """Write the Pod YAML, the Quadlet units, the systemd notes and, with backups
    configured, the backup timer's units (`systemd/`) under `out_dir`; returns
    the written paths. Raises ValueError (see render_pods) and OSError."""
    pods = render_pods(settings, served, placements, target)
    backup_units = (
        full_backup_units(settings, image=target.gateway_image, data_volume=f"{target.name}-data")
        if backup_configured(settings)
        else {}
    )
    quadlet = out_dir / "quadlet"
    quadlet.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / POD_FILE: pods_yaml(pods),
        out_dir / SYSTEMD_NOTES: systemd_notes((out_dir / POD_FILE).resolve(), list(backup_units)),
        quadlet / f"{target.name}.kube": kube_unit(POD_FILE),
    }
    for pod in pods:
        for unit, text in container_units(pod).items():
            files[quadlet / unit] = text
    if backup_units:
        (out_dir / BACKUP_UNITS_DIR).mkdir(exist_ok=True)
    for unit, text in backup_units.items():
        files[out_dir / BACKUP_UNITS_DIR / unit] = text
    for path, text in files.items():
        path.write_text(text)
    return list(files)
