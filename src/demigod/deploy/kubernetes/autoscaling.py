"""Worker autoscaling on the model's queue and its state/accelerator memory: a KEDA
ScaledObject (Prometheus triggers), or for clusters without KEDA a plain HPA reading the
same series as External metrics through prometheus-adapter.

The series are the worker's own gauges as the ServiceMonitor scrapes them (its `namespace`
and `service` labels pick one Deployment's pods). Workers never scale to zero: at zero
replicas no worker exports the queue, and the first request would wait a model load
(docs/kubernetes.md, "Scale to zero").
"""

from __future__ import annotations

from dataclasses import dataclass

from demigod.config import EnvironmentConfig, KubernetesConfig
from demigod.deploy.kubernetes.names import WorkerName, metadata
from demigod.observability.metrics import ROUTER_METRICS

Object = dict[str, object]


@dataclass(frozen=True)
class Trigger:
    """One scaling signal: a PromQL query and the target it is held to."""

    name: str
    query: str
    threshold: float
    per_replica: bool  # True: the query is a total, divided among replicas (AverageValue)

    def keda(self, prometheus_url: str) -> Object:
        return {
            "type": "prometheus",
            "name": self.name,
            "metricType": "AverageValue" if self.per_replica else "Value",
            "metadata": {
                "serverAddress": prometheus_url,
                "query": self.query,
                "threshold": f"{self.threshold:g}",
            },
        }


def triggers(
    worker: WorkerName, namespace: str, config: KubernetesConfig, gpu: bool
) -> list[Trigger]:
    """What scales one worker Deployment: requests waiting (per replica), the share of
    decode slots in use, and on GPU nodes the share of GPU memory in use."""
    scope = f'namespace="{namespace}",service="{worker.name}"'
    found = [
        Trigger(
            "queue",
            f"sum({ROUTER_METRICS['queued']}{{{scope}}})",
            config.queue_target_per_replica,
            per_replica=True,
        ),
        Trigger(
            "state-slots",
            f"avg({ROUTER_METRICS['cache_usage']}{{{scope}}})",
            config.state_usage_target,
            per_replica=False,
        ),
    ]
    if gpu:
        found.append(
            Trigger(
                "gpu-memory",
                f"max(demigod_gpu_memory_used_bytes{{{scope}}} "
                f"/ demigod_gpu_memory_total_bytes{{{scope}}})",
                config.gpu_memory_target,
                per_replica=False,
            )
        )
    return found


def _behavior(config: KubernetesConfig) -> Object:
    """Explicit stabilisation: add replicas after `scale_up_window_seconds` of demand (at
    most doubling a minute), remove them after `scale_down_window_seconds` of quiet, one
    fifth a minute (max_unavailable_percent, the floor rolling updates keep)."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": config.scale_up_window_seconds,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": config.scale_down_window_seconds,
            "policies": [
                {"type": "Percent", "value": config.max_unavailable_percent, "periodSeconds": 60}
            ],
        },
    }


def scaled_object(
    worker: WorkerName, environment: EnvironmentConfig, config: KubernetesConfig, gpu: bool
) -> Object:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(worker.name, worker.labels()),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": worker.name},
            "pollingInterval": config.polling_interval_seconds,
            "minReplicaCount": environment.worker_min_replicas,
            "maxReplicaCount": environment.worker_max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior(config)}},
            "triggers": [
                t.keda(config.prometheus_url)
                for t in triggers(worker, environment.namespace, config, gpu)
            ],
        },
    }


# prometheus-adapter names each External metric after its series; the rules file below
# (a values snippet for the adapter's chart) scopes it to the HPA's namespace.
def external_hpa(
    worker: WorkerName, environment: EnvironmentConfig, config: KubernetesConfig, gpu: bool
) -> Object:
    """The same signals as the ScaledObject, as a plain autoscaling/v2 HPA."""
    selector = {"matchLabels": {"service": worker.name}}

    def external(metric: str, target: Object) -> Object:
        return {
            "type": "External",
            "external": {"metric": {"name": metric, "selector": selector}, "target": target},
        }

    metrics = [
        external(
            ROUTER_METRICS["queued"],
            {"type": "AverageValue", "averageValue": f"{config.queue_target_per_replica:g}"},
        ),
        external(
            ROUTER_METRICS["cache_usage"],
            {"type": "Value", "value": f"{round(config.state_usage_target * 1000)}m"},
        ),
    ]
    if gpu:
        metrics.append(
            external(
                "demigod_gpu_memory_used_ratio",
                {"type": "Value", "value": f"{round(config.gpu_memory_target * 1000)}m"},
            )
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(worker.name, worker.labels()),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": worker.name},
            "minReplicas": environment.worker_min_replicas,
            "maxReplicas": environment.worker_max_replicas,
            "metrics": metrics,
            "behavior": _behavior(config),
        },
    }


def adapter_rules() -> Object:
    """prometheus-adapter `rules.external` for the HPA alternative (Helm values)."""
    namespaced = {"overrides": {"namespace": {"resource": "namespace"}}}
    return {
        "rules": {
            "external": [
                {
                    "seriesQuery": f'{ROUTER_METRICS["queued"]}{{namespace!="",service!=""}}',
                    "resources": namespaced,
                    "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>})",
                },
                {
                    "seriesQuery": f'{ROUTER_METRICS["cache_usage"]}{{namespace!="",service!=""}}',
                    "resources": namespaced,
                    "metricsQuery": "avg(<<.Series>>{<<.LabelMatchers>>})",
                },
                {
                    "seriesQuery": 'demigod_gpu_memory_used_bytes{namespace!="",service!=""}',
                    "resources": namespaced,
                    "name": {"as": "demigod_gpu_memory_used_ratio"},
                    "metricsQuery": "max(<<.Series>>{<<.LabelMatchers>>} / "
                    "demigod_gpu_memory_total_bytes{<<.LabelMatchers>>})",
                },
            ],
            "custom": [
                {
                    "seriesQuery": 'demigod_inflight_requests{namespace!="",pod!=""}',
                    "resources": {
                        "overrides": {
                            "namespace": {"resource": "namespace"},
                            "pod": {"resource": "pod"},
                        }
                    },
                    "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
                }
            ],
        }
    }
