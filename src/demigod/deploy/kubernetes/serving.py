"""The serving objects: per model a worker Deployment, Service and PodDisruptionBudget;
the gateway's StatefulSet, Services, PodDisruptionBudget and HorizontalPodAutoscaler.

Containers and pod specs come from demigod.deploy.workloads (shared with Podman); this
module adds what only a cluster has: the node class placement chose, the image for it
(demigod.deploy.images), a startup probe sized for the model's load, the gateway's
volume per replica, and Secrets mounted or read by reference, never rendered.

The gateway is a StatefulSet rather than a Deployment because its data volume is state
that must outlive the pod: each replica appends to its own hash-chained audit log (the
chain's node is the pod's stable name, demigod-gateway-N) and keeps its canary state
there. A volumeClaimTemplate gives every replica its own PersistentVolumeClaim, re-attached
after a restart or a reschedule, and kept when the StatefulSet shrinks or is deleted.

No workload carries `spec.replicas`: an autoscaler owns every count (the gateway's HPA
here, each worker's ScaledObject or HPA in the overlays), and a replica count in the
applied manifest would reset the autoscaler's choice on every `kubectl apply` or
Terraform apply. The autoscaler's minimum is the floor; a workload created without one
starts at Kubernetes' default of 1 and is raised to it at the autoscaler's next sync.
"""

from __future__ import annotations

import math
from pathlib import Path

from demigod.config import KubernetesConfig, ModelConfig, PlacementConfig, Settings
from demigod.deploy.backup_workloads import backup_configured
from demigod.deploy.disruption import DisruptionBudget, pdb_spec
from demigod.deploy.images import ImageSet
from demigod.deploy.kubernetes.backup import cluster_backup_sidecar
from demigod.deploy.kubernetes.monitoring import JOB_LABEL
from demigod.deploy.kubernetes.names import GATEWAY, WorkerName, gateway_selector, metadata
from demigod.deploy.observability.prometheus import GATEWAY_JOB, WORKER_JOB
from demigod.deploy.placement import Placement
from demigod.deploy.workloads import (
    DATA_VOLUME,
    GATEWAY_PORT,
    MODELS_VOLUME,
    PROBE_PERIOD_SECONDS,
    STATE_CACHE_VOLUME,
    TMP_VOLUME,
    WORKER_PORT,
    WorkerModel,
    gateway_container,
    pod_spec,
    worker_container,
    worker_upstream,
)

Object = dict[str, object]
SECRETS_DIR = "/var/run/secrets/demigod"
API_KEYS_FILE = f"{SECRETS_DIR}/api-keys/api-keys.json"
SIGNING_KEY_FILE = f"{SECRETS_DIR}/audit/signing-key.pem"
STARTUP_FLOOR_SECONDS = 60  # process start and imports, before the model's bytes
# Gateway autoscaling: CPU, and requests in flight per pod (prometheus-adapter's Pods metric).
GATEWAY_CPU_UTILISATION = 70
GATEWAY_INFLIGHT_PER_POD = 64
GATEWAY_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "512Mi"},
    "limits": {"cpu": "2000m", "memory": "1Gi"},
}


def worker_names(settings: Settings) -> list[tuple[ModelConfig, WorkerName]]:
    """Each served model entry with its worker: the first entry of a name is stable, a
    second one (another version) its canary candidate (docs/routing.md)."""
    seen: set[str] = set()
    pairs = []
    for model in settings.models:
        pairs.append((model, WorkerName(model.name, candidate=model.name in seen)))
        seen.add(model.name)
    return pairs


def budget(settings: Settings) -> DisruptionBudget:
    k8s = settings.kubernetes
    return DisruptionBudget(k8s.max_unavailable_percent, k8s.max_surge_percent)


def startup_seconds(weights_bytes: int, settings: Settings) -> int:
    """Time a worker may take to start: the GGUF read at the slowest expected rate, twice
    (page-in and llama.cpp's own pass), after the process itself."""
    rate = settings.kubernetes.model_load_bytes_per_second
    return STARTUP_FLOOR_SECONDS + math.ceil(2 * weights_bytes / rate)


def pod_settings(settings: Settings) -> Settings:
    """What the pods are configured with: no credentials (they reach pods as DEMIGOD_*
    variables from the `env` Secret and as Secret files), and none of the render-time
    sections (placement, kubernetes)."""
    return settings.model_copy(
        update={
            "placement": PlacementConfig(),
            "kubernetes": KubernetesConfig(),
            "database_url": None,
            "security": settings.security.model_copy(
                update={"redis_url": None, "api_keys_file": Path(API_KEYS_FILE)}
            ),
            "audit": settings.audit.model_copy(update={"signing_key_path": Path(SIGNING_KEY_FILE)}),
            "upstreams": [],
        }
    )


def _deployment(
    name: str,
    labels: dict[str, str],
    selector: dict[str, str],
    pod: Object,
    settings: Settings,
) -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, labels),
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            "strategy": budget(settings).rolling_update(),
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def _service(
    name: str, labels: dict[str, str], selector: dict[str, str], port: int, job: str
) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, {**labels, JOB_LABEL: job}),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }


def _pdb(name: str, labels: dict[str, str], selector: dict[str, str]) -> Object:
    """Drains take one pod at a time, never none (demigod.deploy.disruption)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, labels),
        "spec": pdb_spec(selector),
    }


def _worker_model(model: ModelConfig) -> WorkerModel:
    return WorkerModel(model.name, model.version, tuple(model.categories), model.path.name)


def worker_objects(
    model: ModelConfig, worker: WorkerName, placed: Placement, settings: Settings
) -> list[Object]:
    """Deployment (its replica count left to the overlay's autoscaler), Service and PDB of
    one model's worker (stable or candidate)."""
    container = worker_container(
        pod_settings(settings),
        _worker_model(model),
        image=ImageSet.from_config(settings.images).worker(placed.on_gpu),
        resources=placed.resources,
    )
    budget_seconds = startup_seconds(placed.need.weights, settings)
    container["startupProbe"]["failureThreshold"] = math.ceil(budget_seconds / PROBE_PERIOD_SECONDS)
    pod = pod_spec(
        [container],
        {
            MODELS_VOLUME: {
                "persistentVolumeClaim": {
                    "claimName": settings.kubernetes.models_claim,
                    "readOnly": True,
                }
            },
            STATE_CACHE_VOLUME: {"emptyDir": {}},
            TMP_VOLUME: {"emptyDir": {}},
        },
    )
    if selector := placed.node_selector():
        pod["nodeSelector"] = selector
    if tolerations := placed.tolerations():
        pod["tolerations"] = tolerations
    labels, match = worker.labels(), worker.selector()
    return [
        _deployment(worker.name, labels, match, pod, settings),
        _service(worker.name, labels, match, WORKER_PORT, WORKER_JOB),
        _pdb(worker.name, labels, match),
    ]


def _data_claim_template(settings: Settings, labels: dict[str, str]) -> Object:
    """The gateway's data volume, one PersistentVolumeClaim per replica."""
    spec: dict[str, object] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.kubernetes.gateway_storage}},
    }
    if settings.kubernetes.storage_class is not None:
        spec["storageClassName"] = settings.kubernetes.storage_class
    return {"metadata": {"name": DATA_VOLUME, "labels": labels}, "spec": spec}


def _stateful_set(pod: Object, settings: Settings) -> Object:
    selector = gateway_selector()
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(GATEWAY, selector),
        "spec": {
            # The pods need no DNS names of their own: the client-facing Service governs.
            "serviceName": GATEWAY,
            # Replicas are independent: the HPA may add or remove several at once.
            "podManagementPolicy": "Parallel",
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            "updateStrategy": {"type": "RollingUpdate"},
            # An audit chain is evidence: its volume outlives a scale-down and a delete.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {"metadata": {"labels": selector}, "spec": pod},
            "volumeClaimTemplates": [_data_claim_template(settings, selector)],
        },
    }


def secret_env(settings: Settings) -> list[Object]:
    """The Secrets the gateway's variables come from (database and Redis URLs, S3
    credentials), by reference; the backup agent reads the same."""
    secrets = settings.kubernetes.secrets
    return [
        {"secretRef": {"name": secrets.env, "optional": True}},
        {"secretRef": {"name": secrets.s3, "optional": True}},
    ]


def gateway_objects(settings: Settings, min_replicas: int, max_replicas: int) -> list[Object]:
    """StatefulSet (a data volume per replica; the backup agent's sidecar when backups are
    configured; sized by the HPA alone), Service, PDB and HPA (CPU and in-flight requests,
    between `min_replicas` and `max_replicas`) of the gateway, whose upstreams are the
    workers' Services: a model's stable worker first, then its canary candidate's, which
    the gateway's version router splits sessions between by the canary weight
    (docs/routing.md), as it does for embedded versions."""
    upstreams = [
        worker_upstream(_worker_model(model), [f"http://{worker.name}:{WORKER_PORT}"])
        for model, worker in worker_names(settings)
    ]
    secrets = settings.kubernetes.secrets
    in_pod = pod_settings(settings)
    image = ImageSet.from_config(settings.images).gateway
    container = gateway_container(in_pod, upstreams, image=image)
    container["resources"] = GATEWAY_RESOURCES
    container["envFrom"] = secret_env(settings)
    secret_mounts: list[Object] = [
        {"name": "api-keys", "mountPath": f"{SECRETS_DIR}/api-keys", "readOnly": True},
        {"name": "audit-key", "mountPath": f"{SECRETS_DIR}/audit", "readOnly": True},
    ]
    container["volumeMounts"] += secret_mounts
    containers = [container]
    if backup_configured(settings):
        containers.append(
            cluster_backup_sidecar(in_pod, image, container["envFrom"], secret_mounts)
        )
    pod = pod_spec(
        containers,
        {
            TMP_VOLUME: {"emptyDir": {}},
            "api-keys": {"secret": {"secretName": secrets.api_keys, "defaultMode": 0o440}},
            "audit-key": {
                "secret": {"secretName": secrets.audit_signing_key, "defaultMode": 0o440}
            },
        },
        claimed=(DATA_VOLUME,),
    )
    selector = gateway_selector()
    hpa: dict[str, object] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(GATEWAY, selector),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": GATEWAY},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": GATEWAY_CPU_UTILISATION,
                        },
                    },
                },
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "demigod_inflight_requests"},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(GATEWAY_INFLIGHT_PER_POD),
                        },
                    },
                },
            ],
        },
    }
    return [
        _stateful_set(pod, settings),
        _service(GATEWAY, selector, selector, GATEWAY_PORT, GATEWAY_JOB),
        _pdb(GATEWAY, selector, selector),
        hpa,
    ]
