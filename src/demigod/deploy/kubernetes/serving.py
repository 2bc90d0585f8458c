"""The serving objects: per model a worker Deployment, Service and PodDisruptionBudget;
the gateway's Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler."""

from __future__ import annotations

from demigod.config import ModelConfig, Settings
from demigod.deploy.disruption import DisruptionBudget
from demigod.deploy.kubernetes.monitoring import JOB_LABEL
from demigod.deploy.kubernetes.names import (
    GATEWAY,
    GATEWAY_PORT,
    WORKER_PORT,
    WorkerName,
    gateway_selector,
    metadata,
)
from demigod.deploy.kubernetes.pods import gateway_pod, worker_pod
from demigod.deploy.observability.prometheus import GATEWAY_JOB, WORKER_JOB
from demigod.deploy.placement import Placement

Object = dict[str, object]
# Gateway autoscaling: CPU, and requests in flight per pod (prometheus-adapter's Pods metric).
GATEWAY_CPU_UTILISATION = 70
GATEWAY_INFLIGHT_PER_POD = 64


def budget(settings: Settings) -> DisruptionBudget:
    k8s = settings.kubernetes
    return DisruptionBudget(k8s.max_unavailable_percent, k8s.max_surge_percent)


def _deployment(
    name: str,
    labels: dict[str, str],
    selector: dict[str, str],
    replicas: int,
    pod: Object,
    settings: Settings,
) -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, labels),
        "spec": {
            "replicas": replicas,
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


def _pdb(name: str, labels: dict[str, str], selector: dict[str, str], settings: Settings) -> Object:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, labels),
        "spec": budget(settings).pdb_spec(selector),
    }


def worker_objects(
    model: ModelConfig,
    worker: WorkerName,
    placed: Placement,
    settings: Settings,
    replicas: int,
) -> list[Object]:
    """Deployment, Service and PDB of one model's worker (stable or candidate)."""
    # The stable worker is found by name in mesh.yaml; a candidate shares the name, so it
    # is named with its file instead.
    mount = settings.kubernetes.models_mount.rstrip("/")
    args = (
        ["--model", f"{model.name}={mount}/{model.path.name}"]
        if worker.candidate
        else ["--model", model.name]
    )
    labels, selector = worker.labels(), worker.selector()
    pod = worker_pod(placed, args, settings.kubernetes)
    return [
        _deployment(worker.name, labels, selector, replicas, pod, settings),
        _service(worker.name, labels, selector, WORKER_PORT, WORKER_JOB),
        _pdb(worker.name, labels, selector, settings),
    ]


def gateway_objects(settings: Settings, replicas: int, max_replicas: int) -> list[Object]:
    """Deployment, Service, PDB and HPA (CPU and in-flight requests) of the gateway."""
    selector = gateway_selector()
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(GATEWAY, selector),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": GATEWAY},
            "minReplicas": replicas,
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
        _deployment(
            GATEWAY, selector, selector, replicas, gateway_pod(settings.kubernetes), settings
        ),
        _service(GATEWAY, selector, selector, GATEWAY_PORT, GATEWAY_JOB),
        _pdb(GATEWAY, selector, selector, settings),
        hpa,
    ]
