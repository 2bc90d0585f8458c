"""The mesh.yaml every pod reads (one ConfigMap): the served models at their path on the
models volume, each model's worker Service as the gateway's upstream, and no credential:
those arrive as DEMIGOD_* variables from a Secret."""

from __future__ import annotations

from pathlib import Path

import yaml

from demigod.config import ModelConfig, Settings, UpstreamConfig
from demigod.deploy.kubernetes.names import CONFIG_MAP, WORKER_PORT, WorkerName, metadata
from demigod.deploy.kubernetes.pods import API_KEYS_PATH, DATA_DIR, SIGNING_KEY_PATH


def worker_names(settings: Settings) -> list[tuple[ModelConfig, WorkerName]]:
    """Each served model entry with its worker: the first entry of a name is stable, a
    second one (another version) its canary candidate (docs/routing.md)."""
    seen: set[str] = set()
    pairs = []
    for model in settings.models:
        pairs.append((model, WorkerName(model.name, candidate=model.name in seen)))
        seen.add(model.name)
    return pairs


def cluster_settings(settings: Settings) -> Settings:
    """`settings` as the pods see them."""
    mount = Path(settings.kubernetes.models_mount)
    models = [
        model.model_copy(update={"path": mount / model.path.name}) for model in settings.models
    ]
    upstreams = [
        UpstreamConfig(
            name=model.name,
            urls=[f"http://{worker.name}:{WORKER_PORT}"],
            categories=model.categories,
            version=model.version,
        )
        for model, worker in worker_names(settings)
    ]
    security = settings.security.model_copy(
        update={"api_keys_file": Path(API_KEYS_PATH), "redis_url": None}
    )
    audit = settings.audit.model_copy(update={"signing_key_path": Path(SIGNING_KEY_PATH)})
    return settings.model_copy(
        update={
            "host": "0.0.0.0",
            "data_dir": Path(DATA_DIR),
            "database_url": None,
            "models": models,
            "upstreams": upstreams,
            "security": security,
            "audit": audit,
        }
    )


def config_map(settings: Settings) -> dict[str, object]:
    """The ConfigMap holding the pods' mesh.yaml (defaults left out)."""
    document = cluster_settings(settings).model_dump(mode="json", exclude_defaults=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(CONFIG_MAP),
        "data": {"mesh.yaml": yaml.safe_dump(document, sort_keys=False)},
    }
