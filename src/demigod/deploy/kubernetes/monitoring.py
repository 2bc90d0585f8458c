"""Prometheus Operator objects: a ServiceMonitor for the gateway and every worker, and the
mesh's alert rules (demigod.deploy.observability.alerts) as a PrometheusRule."""

from __future__ import annotations

from demigod.config import Settings
from demigod.deploy.kubernetes.names import APP, metadata
from demigod.deploy.observability.alerts import alert_rules

Object = dict[str, object]
# Services carry their Prometheus job here, so the alert rules' job names hold in-cluster.
JOB_LABEL = "demigod.io/job"


def service_monitor(settings: Settings) -> Object:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(APP),
        "spec": {
            "jobLabel": JOB_LABEL,
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP}},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": f"{settings.observability.scrape_interval_seconds}s",
                }
            ],
        },
    }


def prometheus_rule(settings: Settings) -> Object:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(APP),
        "spec": alert_rules(settings),
    }
