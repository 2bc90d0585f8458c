"""NetworkPolicies: nothing reaches a pod unless allowed; the gateway takes client traffic;
workers answer only the gateway and Prometheus."""

from __future__ import annotations

from demigod.config import KubernetesConfig
from demigod.deploy.kubernetes.names import gateway_selector, metadata
from demigod.deploy.workloads import GATEWAY_PORT, WORKER_PORT

Object = dict[str, object]


def _policy(name: str, pod_selector: dict[str, object], ingress: list[Object]) -> Object:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name),
        "spec": {"podSelector": pod_selector, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def network_policies(config: KubernetesConfig) -> list[Object]:
    prometheus = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": config.prometheus_namespace}
        }
    }
    return [
        _policy("demigod-default-deny", {}, []),
        _policy(
            "demigod-gateway",
            {"matchLabels": gateway_selector()},
            [{"ports": [{"port": GATEWAY_PORT, "protocol": "TCP"}]}],
        ),
        _policy(
            "demigod-workers",
            {"matchLabels": {"app.kubernetes.io/component": "worker"}},
            [
                {
                    "from": [{"podSelector": {"matchLabels": gateway_selector()}}, prometheus],
                    "ports": [{"port": WORKER_PORT, "protocol": "TCP"}],
                }
            ],
        ),
    ]
