"""Grafana dashboards as code: one per model, one per tenant, plus the provisioning files
that load them. Plain dicts in Grafana's dashboard JSON model (schemaVersion 39)."""

from __future__ import annotations

from dataclasses import dataclass, field

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana picks a rate window of at least four scrape intervals for the zoom level.
WINDOW = "$__rate_interval"
PANEL_WIDTH = 12
PANEL_HEIGHT = 8


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: dict[str, str]  # legend -> PromQL
    unit: str = "short"
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def _panel(panel: Panel, index: int) -> dict[str, object]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {
            "h": PANEL_HEIGHT,
            "w": PANEL_WIDTH,
            "x": (index % 2) * PANEL_WIDTH,
            "y": (index // 2) * PANEL_HEIGHT,
        },
        "fieldConfig": {"defaults": {"unit": panel.unit, **panel.extra}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
            }
            for n, (legend, expr) in enumerate(panel.exprs.items())
        ],
    }


def _variable(name: str, query: str) -> dict[str, object]:
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": name},
        "definition": query,
        "multi": True,
        "includeAll": True,
        "refresh": 2,
        "current": {"text": "All", "value": "$__all"},
    }


def _dashboard(
    uid: str, title: str, variables: list[dict[str, object]], panels: list[Panel]
) -> dict[str, object]:
    datasource_variable = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
    }
    return {
        "uid": uid,
        "title": title,
        "tags": ["demigod"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [datasource_variable, *variables]},
        "panels": [_panel(panel, index) for index, panel in enumerate(panels)],
    }


def _error_ratio(by: str, selector: str) -> str:
    # `or ... * 0` keeps a 0 line (not "no data") for a model that has had no 5xx.
    every = f"sum by ({by}) (rate(demigod_requests_total{{{selector}}}[{WINDOW}]))"
    failed = f'sum by ({by}) (rate(demigod_requests_total{{{selector},status=~"5.."}}[{WINDOW}]))'
    return f"({failed} or {every} * 0) / {every}"


def _quantiles(metric: str, by: str, selector: str) -> dict[str, str]:
    return {
        f"p{q} {{{{{by}}}}}": f"histogram_quantile(0.{q}, sum by ({by}, le) "
        f"(rate({metric}_bucket{{{selector}}}[{WINDOW}])))"
        for q in (50, 95, 99)
    }


def model_dashboard() -> dict[str, object]:
    """Everything about each model: traffic, latency, tokens, errors, queue, cache, energy."""
    m = 'model=~"$model"'
    panels = [
        Panel(
            "Requests per second",
            {
                "{{model}} {{status}}": "sum by (model, status) "
                f"(rate(demigod_requests_total{{{m}}}[{WINDOW}]))"
            },
            "reqps",
        ),
        Panel(
            "Request latency p50 / p95 / p99",
            _quantiles("demigod_request_duration_seconds", "model", m),
            "s",
            "The page fires when p95 stays above the threshold for 5 minutes.",
        ),
        Panel(
            "Time to first token p50 / p95 / p99",
            _quantiles("demigod_time_to_first_token_seconds", "model", m),
            "s",
        ),
        Panel(
            "Output tokens per second",
            {
                "{{model}}": "sum by (model) "
                f'(rate(demigod_tokens_total{{{m},type="output"}}[{WINDOW}]))'
            },
            "short",
        ),
        Panel(
            "Error ratio (5xx)",
            {"{{model}}": _error_ratio("model", m)},
            "percentunit",
        ),
        Panel(
            "Queue depth and requests in flight",
            {
                "queued {{model}} {{replica}}": "sum by (model, replica) "
                f"(demigod_queue_depth{{{m}}})",
                "in flight {{model}}": f"sum by (model) (demigod_inflight_requests{{{m}}})",
            },
        ),
        Panel(
            "State-cache hit rate by tier",
            {
                "{{model}} {{tier}}": "sum by (model, tier) "
                f"(rate(demigod_state_cache_hits_total{{{m}}}[{WINDOW}])) "
                "/ (sum by (model, tier) "
                f"(rate(demigod_state_cache_hits_total{{{m}}}[{WINDOW}])) "
                "+ sum by (model, tier) "
                f"(rate(demigod_state_cache_misses_total{{{m}}}[{WINDOW}])))"
            },
            "percentunit",
            "Share of lookups each tier (ram, disk, shared) served: a hit resumes a saved "
            "recurrent state instead of re-reading the prompt.",
        ),
        Panel(
            "Energy per output token",
            {
                "{{model}}": "sum by (model) "
                f"(rate(demigod_energy_joules_total{{{m}}}[{WINDOW}])) "
                "/ sum by (model) "
                f'(rate(demigod_tokens_total{{{m},type="output"}}[{WINDOW}]))'
            },
            "J",
            'Joules per generated token; source="estimate" means CPU-seconds x '
            "observability.watts_per_core.",
        ),
        Panel(
            "Deep probe",
            {"{{model}}": f"min by (model) (demigod_probe_success{{{m}}})"},
            "bool_yes_no",
        ),
        Panel(
            "Canary weight",
            {"{{model}} {{version}}": f"max by (model, version) (demigod_canary_weight{{{m}}})"},
            "percentunit",
        ),
        Panel(
            "GPU utilisation and memory",
            {
                "utilisation gpu {{gpu}}": "avg by (gpu) (demigod_gpu_utilization_ratio)",
                "memory used gpu {{gpu}}": "avg by (gpu) (demigod_gpu_memory_used_bytes) "
                "/ avg by (gpu) (demigod_gpu_memory_total_bytes)",
            },
            "percentunit",
            "Only where NVML sees a GPU; empty on CPU hosts.",
        ),
        Panel(
            "Model load time",
            {"{{model}}": f"max by (model) (demigod_model_load_seconds{{{m}}})"},
            "s",
        ),
    ]
    return _dashboard(
        "demigod-models",
        "DemiGod / models",
        [_variable("model", "label_values(demigod_requests_total, model)")],
        panels,
    )


def tenant_dashboard() -> dict[str, object]:
    """Each tenant's traffic, latency, tokens and errors."""
    t = 'tenant=~"$tenant"'
    panels = [
        Panel(
            "Requests per second",
            {"{{tenant}}": f"sum by (tenant) (rate(demigod_requests_total{{{t}}}[{WINDOW}]))"},
            "reqps",
        ),
        Panel(
            "Request latency p50 / p95 / p99",
            _quantiles("demigod_request_duration_seconds", "tenant", t),
            "s",
        ),
        Panel(
            "Tokens per second",
            {
                "{{tenant}} {{type}}": "sum by (tenant, type) "
                f"(rate(demigod_tokens_total{{{t}}}[{WINDOW}]))"
            },
        ),
        Panel(
            "Error ratio (5xx)",
            {"{{tenant}}": _error_ratio("tenant", t)},
            "percentunit",
        ),
        Panel(
            "Requests by model",
            {
                "{{tenant}} → {{model}}": "sum by (tenant, model) "
                f"(rate(demigod_requests_total{{{t}}}[{WINDOW}]))"
            },
            "reqps",
        ),
        Panel(
            "Client errors (4xx) and refusals",
            {
                "{{tenant}} {{status}}": "sum by (tenant, status) "
                f'(rate(demigod_requests_total{{{t},status=~"4.."}}[{WINDOW}]))'
            },
            "reqps",
        ),
    ]
    return _dashboard(
        "demigod-tenants",
        "DemiGod / tenants",
        [_variable("tenant", "label_values(demigod_requests_total, tenant)")],
        panels,
    )


def dashboards() -> dict[str, dict[str, object]]:
    """Dashboard JSON models by file stem."""
    return {"demigod-models": model_dashboard(), "demigod-tenants": tenant_dashboard()}


def grafana_provisioning() -> dict[str, dict[str, object]]:
    """Grafana provisioning files: the Prometheus data source and the dashboard folder."""
    return {
        "datasources/demigod.yml": {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": "Prometheus",
                    "type": "prometheus",
                    "access": "proxy",
                    "url": "http://127.0.0.1:9090",
                    "isDefault": True,
                }
            ],
        },
        "dashboards/demigod.yml": {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "demigod",
                    "folder": "DemiGod",
                    "type": "file",
                    "options": {"path": "/etc/grafana/dashboards/demigod"},
                }
            ],
        },
    }
