"""The mesh's workloads as Kubernetes-shaped objects: the gateway's container and one
worker container per served model, and the pod specs around them.

Every deploy target builds on these: the Podman renderer wraps them in Pods for
`podman kube play` (and Quadlet units), the Kubernetes renderer in Deployments. So a host
and a cluster run one description of images, arguments, environment, volumes, probes,
security context and resources. Pure: no I/O; the objects are plain dicts with the
Kubernetes API's field names (core/v1 Container, PodSpec), ready for YAML.

Each container gets its configuration as `DEMIGOD_*` variables computed from the typed
settings (only values that differ from the defaults), with paths moved to where the
images keep them; nothing reads a mesh.yaml inside a container.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from demigod.config import DriftConfig, ImagesConfig, ModelConfig, Settings, UpstreamConfig

JSONObject = dict[str, Any]

# Where things live inside the images (containers/*.Containerfile create these folders).
DATA_DIR = PurePosixPath("/var/lib/demigod")
AUDIT_DIR = DATA_DIR / "audit"
MODELS_DIR = PurePosixPath("/models")
STATE_CACHE_DIR = PurePosixPath("/var/cache/demigod/state")
TMP_DIR = PurePosixPath("/tmp")
# The images' unprivileged user and group (USER in the Containerfiles).
RUN_AS_UID = 10001
WORKER_PORT = 8081
GATEWAY_PORT = 8080

# Volume names, shared by every renderer; each decides what backs them (a host folder,
# a named Podman volume, a PersistentVolumeClaim, an emptyDir).
DATA_VOLUME = "data"  # gateway: audit log, its signing key, API keys, canary state
MODELS_VOLUME = "models"  # worker: the model file's folder, read-only
STATE_CACHE_VOLUME = "state-cache"  # worker: the state cache's disk tier
TMP_VOLUME = "tmp"  # scratch, so the root filesystem can stay read-only

# Probes. Startup allows a slow model load (a large GGUF from network storage) before
# liveness starts counting; readiness takes a replica out of rotation within seconds.
PROBE_PERIOD_SECONDS = 5
STARTUP_BUDGET_SECONDS = 600
LIVENESS_FAILURES = 3
GRACE_SECONDS = 30  # in-flight generations finish on SIGTERM (uvicorn's graceful shutdown)


class SizedResources(Protocol):
    """What a renderer knows about one container's size: placement's `Resources`."""

    @property
    def cpu_cores(self) -> float: ...

    def kubernetes(self) -> dict[str, dict[str, str]]: ...


@dataclass(frozen=True)
class WorkerModel:
    """One served model as a worker container runs it: the model file sits in the models
    volume under `file_name`."""

    name: str
    version: str
    categories: tuple[str, ...]
    file_name: str

    @property
    def path(self) -> PurePosixPath:
        return MODELS_DIR / self.file_name


def container_env(settings: Settings, *, always: Sequence[str] = ()) -> list[JSONObject]:
    """`DEMIGOD_*` variables carrying every setting that differs from its default, and the
    `always` fields whatever their value; nested sections and lists travel as JSON, which
    pydantic-settings parses back."""
    values = settings.model_dump(mode="json", exclude_defaults=True)
    values.update({field: getattr(settings, field) for field in always})
    env: list[JSONObject] = []
    for field, value in sorted(values.items()):
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
        env.append({"name": f"DEMIGOD_{field.upper()}", "value": str(text)})
    return env


def _container_settings(settings: Settings) -> Settings:
    """`settings` with the data folder, audit log, canary state and state-cache disk tier
    moved to the images' folders (relative defaults would land in the working directory),
    and without what only the operator's side reads: the images to render, and where
    `demigod ops` finds the gateway, its admin key and what drift compares. (A render in
    the deploy workflow, which sets DEMIGOD_OPS__*, must equal the committed one.)"""
    engine = settings.engine
    cache = engine.state_cache
    if cache.disk_dir is not None:
        cache = cache.model_copy(update={"disk_dir": Path(str(STATE_CACHE_DIR))})
    return settings.model_copy(
        update={
            "data_dir": Path(str(DATA_DIR)),
            "audit": settings.audit.model_copy(update={"dir": Path(str(AUDIT_DIR))}),
            "canary": settings.canary.model_copy(
                update={"state_file": Path(str(DATA_DIR / "canary.json"))}
            ),
            "engine": engine.model_copy(update={"state_cache": cache}),
            "images": ImagesConfig(),
            "ops": settings.ops.model_copy(
                update={"gateway_url": None, "api_key": None, "drift": DriftConfig()}
            ),
        }
    )


def worker_settings(
    settings: Settings, model: WorkerModel, *, threads: int | None = None
) -> Settings:
    """What one model's worker runs with: that model alone, no upstreams, and none of the
    gateway's admission work. The gateway in front authenticates, screens and audits every
    request, and only it can reach the workers (loopback on one host, a NetworkPolicy in a
    cluster), so a worker does not repeat that on each request."""
    engine = settings.engine
    if engine.n_threads is None and threads is not None:
        engine = engine.model_copy(update={"n_threads": threads})
    served = ModelConfig(
        name=model.name,
        path=Path(str(model.path)),
        categories=list(model.categories),
        version=model.version,
    )
    return _container_settings(
        settings.model_copy(
            update={
                "models": [served],
                "upstreams": [],
                "database_url": None,  # the worker serves the model it is given, nothing else
                "engine": engine,
                "security": settings.security.model_copy(update={"auth": "off"}),
                "audit": settings.audit.model_copy(update={"enabled": False}),
                "waf": settings.waf.model_copy(update={"enabled": False}),
            }
        )
    )


def gateway_settings(settings: Settings, upstreams: Sequence[UpstreamConfig]) -> Settings:
    """What the gateway runs with: the workers as its upstreams, no local models."""
    return _container_settings(
        settings.model_copy(update={"models": [], "upstreams": list(upstreams)})
    )


def worker_upstream(model: WorkerModel, urls: Sequence[str]) -> UpstreamConfig:
    """The gateway's entry for one model's worker replicas at `urls`."""
    return UpstreamConfig(
        name=model.name,
        urls=list(urls),
        categories=list(model.categories),
        version=model.version,
        health_path="/readyz",
    )


def _http_probe(path: str, port: int, **timing: int) -> JSONObject:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": PROBE_PERIOD_SECONDS,
        **timing,
    }


def _probes(port: int) -> JSONObject:
    return {
        "startupProbe": _http_probe(
            "/readyz", port, failureThreshold=STARTUP_BUDGET_SECONDS // PROBE_PERIOD_SECONDS
        ),
        "readinessProbe": _http_probe("/readyz", port, failureThreshold=1),
        "livenessProbe": _http_probe("/healthz", port, failureThreshold=LIVENESS_FAILURES),
    }


def container_security_context() -> JSONObject:
    """Non-root, read-only root filesystem, no privileges: what every container runs with."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_UID,
        "runAsGroup": RUN_AS_UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _mount(volume: str, path: PurePosixPath, *, read_only: bool = False) -> JSONObject:
    mount: JSONObject = {"name": volume, "mountPath": str(path)}
    if read_only:
        mount["readOnly"] = True
    return mount


def _container(
    name: str,
    image: str,
    args: list[str],
    settings: Settings,
    port: int,
    mounts: list[JSONObject],
    resources: SizedResources | None,
) -> JSONObject:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        # The listening address always travels: the images' health check reads the port.
        "env": container_env(settings, always=("host", "port")),
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "volumeMounts": mounts,
        **_probes(port),
        "securityContext": container_security_context(),
        "resources": resources.kubernetes() if resources is not None else {},
    }


def worker_container(
    settings: Settings,
    model: WorkerModel,
    *,
    image: str,
    host: str = "0.0.0.0",
    port: int = WORKER_PORT,
    resources: SizedResources | None = None,
    name: str = "worker",
) -> JSONObject:
    """The container serving `model` with `demigod worker` on host:port. Decode threads
    follow the CPU `resources` grant when the config leaves them unset (a container sees
    the host's core count, not its quota)."""
    threads = max(1, int(resources.cpu_cores)) if resources is not None else None
    role = worker_settings(settings, model, threads=threads).model_copy(
        update={"host": host, "port": port}
    )
    args = ["worker", "--model", model.name, "--host", host, "--port", str(port)]
    mounts = [
        _mount(MODELS_VOLUME, MODELS_DIR, read_only=True),
        _mount(STATE_CACHE_VOLUME, STATE_CACHE_DIR),
        _mount(TMP_VOLUME, TMP_DIR),
    ]
    return _container(name, image, args, role, port, mounts, resources)


def gateway_container(
    settings: Settings,
    upstreams: Sequence[UpstreamConfig],
    *,
    image: str,
    host: str = "0.0.0.0",
    port: int = GATEWAY_PORT,
    resources: SizedResources | None = None,
    name: str = "gateway",
) -> JSONObject:
    """The container running `demigod gateway` on host:port in front of `upstreams`."""
    role = gateway_settings(settings, upstreams).model_copy(update={"host": host, "port": port})
    args = ["gateway", "--host", host, "--port", str(port)]
    mounts = [_mount(DATA_VOLUME, DATA_DIR), _mount(TMP_VOLUME, TMP_DIR)]
    return _container(name, image, args, role, port, mounts, resources)


def pod_spec(
    containers: Sequence[JSONObject],
    volumes: Mapping[str, JSONObject],
    *,
    host_network: bool = False,
    claimed: Collection[str] = (),
) -> JSONObject:
    """A PodSpec running `containers`, with `volumes` (name -> volume source, e.g.
    `{"emptyDir": {}}`) for every volume they mount, except the `claimed` ones (a
    StatefulSet's volumeClaimTemplates back those). Raises ValueError naming a mounted
    volume that nothing backs."""
    mounted = {m["name"] for c in containers for m in c.get("volumeMounts", [])} - set(claimed)
    if missing := sorted(mounted - set(volumes)):
        raise ValueError(f"no volume source for {', '.join(missing)}")
    spec: JSONObject = {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "runAsGroup": RUN_AS_UID,
            "fsGroup": RUN_AS_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": list(containers),
        "volumes": [{"name": name, **volumes[name]} for name in sorted(mounted)],
    }
    if host_network:
        spec["hostNetwork"] = True
    return spec
