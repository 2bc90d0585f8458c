"""The operations config around a running mesh: Prometheus scrape config and alert rules,
Alertmanager, Promtail (Loki) and Grafana dashboards, rendered from `Settings`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from demigod.config import Settings
from demigod.deploy.files import write_tree
from demigod.deploy.observability.alertmanager import alertmanager_config
from demigod.deploy.observability.alerts import alert_rules
from demigod.deploy.observability.dashboards import dashboards, grafana_provisioning
from demigod.deploy.observability.prometheus import prometheus_config
from demigod.deploy.observability.promtail import promtail_config

RULES_FILE = "rules/demigod-alerts.yml"
HEADER = "# Rendered by `demigod deploy render observability`; edit mesh.yaml and re-render.\n"


@dataclass(frozen=True)
class Targets:
    """Where the rendered configs point: the gateway, Alertmanager, Loki and the JSON logs."""

    gateway: str
    alertmanager: str = "127.0.0.1:9093"
    loki_push_url: str = "http://127.0.0.1:3100/loki/api/v1/push"
    log_glob: str = "/var/log/demigod/*.log"


def _yaml(document: object) -> str:
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=100)


def render_files(settings: Settings, targets: Targets) -> dict[str, str]:
    """Every file of the observability bundle, by its path relative to the output folder."""
    files = {
        "prometheus.yml": _yaml(prometheus_config(settings, targets.gateway, targets.alertmanager)),
        RULES_FILE: _yaml(alert_rules(settings)),
        "alertmanager.yml": alertmanager_config(settings.observability.alert_webhook_url),
        "promtail.yml": _yaml(promtail_config(targets.loki_push_url, targets.log_glob)),
    }
    for name, dashboard in dashboards().items():
        files[f"grafana/dashboards/{name}.json"] = json.dumps(dashboard, indent=2) + "\n"
    for name, document in grafana_provisioning().items():
        files[f"grafana/provisioning/{name}"] = _yaml(document)
    return files


def render_observability(settings: Settings, targets: Targets, out_dir: Path) -> list[Path]:
    """Write the bundle under `out_dir`; returns the written paths. Raises OSError."""
    return write_tree(render_files(settings, targets), out_dir)
