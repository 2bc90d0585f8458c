"""For clusters with an inference gateway (Gateway API Inference Extension, llm-d): an
InferencePool per model, the endpoint picker's engine-metric mapping for DemiGod workers,
and the Gateway API HTTPRoute alternative that splits a canary by backend weights."""

from __future__ import annotations

import yaml

from demigod.config import Settings
from demigod.deploy.kubernetes.names import (
    ENGINE_LABEL,
    ENGINE_NAME,
    MODEL_LABEL,
    WorkerName,
    dns_label,
    metadata,
)
from demigod.deploy.workloads import WORKER_PORT
from demigod.observability.metrics import ROUTER_METRICS

Object = dict[str, object]
ENDPOINT_PICKER_PORT = 9002  # the picker's ext-proc gRPC port
# Set by the inference gateway's body-based router from the request's `model` field.
MODEL_HEADER = "X-Gateway-Model-Name"


def _pool_name(model: str) -> str:
    return f"demigod-{dns_label(model, 50)}"


def inference_pool(model: str, settings: Settings) -> Object:
    """The pool of one model's worker pods (stable and candidate); its endpoint picker
    chooses a pod per request from their waiting/running/slot gauges."""
    picker = f"{settings.kubernetes.endpoint_picker}-{dns_label(model, 40)}"
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": metadata(_pool_name(model), {MODEL_LABEL: dns_label(model)}),
        "spec": {
            "selector": {"matchLabels": {MODEL_LABEL: dns_label(model), ENGINE_LABEL: ENGINE_NAME}},
            "targetPorts": [{"number": WORKER_PORT}],
            "endpointPickerRef": {
                "kind": "Service",
                "name": picker,
                "port": {"number": ENDPOINT_PICKER_PORT},
                "failureMode": "FailClose",
            },
        },
    }


def endpoint_picker_config() -> Object:
    """The picker's EndpointPickerConfig (a ConfigMap its Helm chart mounts): pods labelled
    engine-type=demigod are read through DemiGod's metric names."""
    document = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "featureGates": ["dataLayer"],
        "plugins": [
            {
                "name": "model-server-protocol-metrics",
                "type": "model-server-protocol-metrics",
                "parameters": {
                    "engineLabelKey": ENGINE_LABEL,
                    "engineConfigs": [
                        {
                            "name": ENGINE_NAME,
                            "queuedRequestsSpec": ROUTER_METRICS["queued"],
                            "runningRequestsSpec": ROUTER_METRICS["running"],
                            "kvUsageSpec": ROUTER_METRICS["cache_usage"],
                        }
                    ],
                },
            },
            {"type": "queue-scorer"},
            {"type": "kv-cache-utilization-scorer"},
            {"type": "max-score-picker"},
            {"type": "single-profile-handler"},
        ],
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [
                    {"pluginRef": "queue-scorer", "weight": 1},
                    {"pluginRef": "kv-cache-utilization-scorer", "weight": 1},
                    {"pluginRef": "max-score-picker"},
                ],
            }
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("demigod-endpoint-picker"),
        "data": {"demigod-epp.yaml": yaml.safe_dump(document, sort_keys=False)},
    }


def http_route(model: str, candidate: bool, settings: Settings) -> Object:
    """Edge routing to one model's worker Services by the model header, the canary split
    by backend weights (canary.weights, percent) instead of the DemiGod gateway's split."""
    weight = round(settings.canary.weights.get(model, 0.0)) if candidate else 0
    stable, trial = WorkerName(model), WorkerName(model, candidate=True)
    backends = [{"name": stable.name, "port": WORKER_PORT, "weight": 100 - weight}]
    if candidate:
        backends.append({"name": trial.name, "port": WORKER_PORT, "weight": weight})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(_pool_name(model), {MODEL_LABEL: dns_label(model)}),
        "spec": {
            "parentRefs": [{"name": settings.kubernetes.inference_gateway}],
            "rules": [
                {
                    "matches": [
                        {
                            "path": {"type": "PathPrefix", "value": "/v1/"},
                            "headers": [{"name": MODEL_HEADER, "value": model}],
                        }
                    ],
                    "backendRefs": backends,
                }
            ],
        },
    }


def pool_route(model: str, settings: Settings) -> Object:
    """The HTTPRoute that sends a model's requests to its InferencePool."""
    route = http_route(model, False, settings)
    route["metadata"] = metadata(f"{_pool_name(model)}-pool", {MODEL_LABEL: dns_label(model)})
    route["spec"]["rules"][0]["backendRefs"] = [  # type: ignore[index]
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": _pool_name(model)}
    ]
    return route
