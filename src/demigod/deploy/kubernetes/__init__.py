"""`demigod deploy render k8s`: a Kustomize tree for the mesh, rendered from Settings and
the placement of each model (docs/kubernetes.md).

    base/                      every namespace-independent object (with backups configured:
                               the gateway's backup sidecar, the PostgreSQL base-backup CronJob)
    overlays/{dev,stage,prod}/ namespace, the gateway HPA's bounds, KEDA ScaledObjects
    alternatives/hpa/ENV/      an overlay with plain HPAs (prometheus-adapter) instead of KEDA
    alternatives/inference-gateway/  InferencePools + endpoint-picker config + their routes
    alternatives/gateway-api/  HTTPRoutes to the workers, canary split by backend weights
    prometheus-adapter-rules.yaml    the adapter rules the HPA alternative reads
    terraform/ENV.tfvars.json  variables for deploy/terraform (router, one module per model)
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from demigod.config import Settings
from demigod.deploy.backup_workloads import backup_configured, registry_is_postgres
from demigod.deploy.files import write_tree
from demigod.deploy.images import ImageSet
from demigod.deploy.kubernetes.autoscaling import adapter_rules, external_hpa, scaled_object
from demigod.deploy.kubernetes.backup import cluster_backup_cronjob
from demigod.deploy.kubernetes.inference import (
    endpoint_picker_config,
    http_route,
    inference_pool,
    pool_route,
)
from demigod.deploy.kubernetes.monitoring import prometheus_rule, service_monitor
from demigod.deploy.kubernetes.names import GATEWAY
from demigod.deploy.kubernetes.network import network_policies
from demigod.deploy.kubernetes.serving import (
    gateway_objects,
    pod_settings,
    secret_env,
    worker_names,
    worker_objects,
)
from demigod.deploy.kubernetes.terraform import terraform_variables
from demigod.deploy.placement import Placement

HEADER = "# Rendered by `demigod deploy render k8s`; edit mesh.yaml and re-render.\n"
Object = dict[str, object]


def _documents(objects: list[Object]) -> str:
    return HEADER + yaml.safe_dump_all(objects, sort_keys=False, width=100)


def _kustomization(**fields: object) -> str:
    return HEADER + yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", **fields},
        sort_keys=False,
    )


def render_files(settings: Settings, placements: list[Placement]) -> dict[str, str]:
    """Every file of the tree by relative path. `placements` are those of
    `settings.models`, in order (demigod.deploy.footprint.place_models). Raises
    ValueError when backups go to `ops.backup.dir`, a host path no pod mounts."""
    k8s = settings.kubernetes
    if settings.ops.backup.dir is not None:
        raise ValueError(
            "ops.backup.dir is a path on one host, which no pod mounts: in a cluster, back "
            "up to the snapshots bucket (set snapshots.bucket, unset ops.backup.dir)"
        )
    entries = worker_names(settings)
    base_env = next(iter(k8s.environments.values()))
    files: dict[str, str] = {}

    base = {
        "gateway.yaml": gateway_objects(
            settings, base_env.gateway_replicas, base_env.gateway_max_replicas
        )
    }
    for (model, worker), placed in zip(entries, placements, strict=True):
        base[f"{worker.name}.yaml"] = worker_objects(model, worker, placed, settings)
    base["network-policies.yaml"] = network_policies(k8s)
    base["monitoring.yaml"] = [service_monitor(settings), prometheus_rule(settings)]
    if backup_configured(settings) and registry_is_postgres(settings):
        image = ImageSet.from_config(settings.images).gateway
        base["backup.yaml"] = [
            cluster_backup_cronjob(pod_settings(settings), image, secret_env(settings))
        ]
    for name, objects in base.items():
        files[f"base/{name}"] = _documents(objects)
    files["base/kustomization.yaml"] = _kustomization(resources=list(base))

    for env_name, env in k8s.environments.items():
        scaled = [
            scaled_object(worker, env, k8s, placed.on_gpu)
            for (_, worker), placed in zip(entries, placements, strict=True)
        ]
        # The environment's bounds of the gateway's HPA. No workload's `replicas`: the
        # autoscalers own them (demigod.deploy.kubernetes.serving).
        replicas: list[dict[str, object]] = [
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": GATEWAY},
                "spec": {
                    "minReplicas": env.gateway_replicas,
                    "maxReplicas": env.gateway_max_replicas,
                },
            },
        ]
        overlay = f"overlays/{env_name}"
        files[f"terraform/{env_name}.tfvars.json"] = (
            json.dumps(terraform_variables(settings, placements, env), indent=2) + "\n"
        )
        files[f"{overlay}/scaled-objects.yaml"] = _documents(scaled)
        files[f"{overlay}/replicas.yaml"] = _documents(replicas)
        files[f"{overlay}/kustomization.yaml"] = _kustomization(
            namespace=env.namespace,
            resources=["../../base", "scaled-objects.yaml"],
            patches=[{"path": "replicas.yaml"}],
        )
        hpas = [
            external_hpa(worker, env, k8s, placed.on_gpu)
            for (_, worker), placed in zip(entries, placements, strict=True)
        ]
        # A sibling of the overlay rather than a patch of it: kustomize cannot delete the
        # ScaledObjects reliably, and the HPA and the ScaledObject must never coexist.
        alternative = f"alternatives/hpa/{env_name}"
        files[f"{alternative}/hpa.yaml"] = _documents(hpas)
        files[f"{alternative}/replicas.yaml"] = files[f"{overlay}/replicas.yaml"]
        files[f"{alternative}/kustomization.yaml"] = _kustomization(
            namespace=env.namespace,
            resources=["../../../base", "hpa.yaml"],
            patches=[{"path": "replicas.yaml"}],
        )

    names = list(dict.fromkeys(model.name for model, _ in entries))
    with_candidate = {model.name for model, worker in entries if worker.candidate}
    inference = [
        endpoint_picker_config(),
        *(inference_pool(name, settings) for name in names),
        *(pool_route(name, settings) for name in names),
    ]
    files["alternatives/inference-gateway/inference.yaml"] = _documents(inference)
    files["alternatives/inference-gateway/kustomization.yaml"] = _kustomization(
        resources=["inference.yaml"]
    )
    routes = [http_route(name, name in with_candidate, settings) for name in names]
    files["alternatives/gateway-api/routes.yaml"] = _documents(routes)
    files["alternatives/gateway-api/kustomization.yaml"] = _kustomization(resources=["routes.yaml"])
    files["prometheus-adapter-rules.yaml"] = HEADER + yaml.safe_dump(
        adapter_rules(), sort_keys=False, width=100
    )
    return files


def render_kubernetes(settings: Settings, placements: list[Placement], out_dir: Path) -> list[Path]:
    """Write the tree under `out_dir`; returns the written paths. Raises ValueError (see
    render_files) and OSError."""
    return write_tree(render_files(settings, placements), out_dir)
