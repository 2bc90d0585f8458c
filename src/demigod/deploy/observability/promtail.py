"""`promtail.yml`: ship the mesh's JSON log lines to Loki, labelled by their stable keys."""

from __future__ import annotations

# Keys every request log line carries (docs/operations.md#logs). Only the low-cardinality
# ones become Loki labels; the rest stay in the line, queryable with `| json`.
LOG_FIELDS = (
    "ts",
    "level",
    "logger",
    "msg",
    "request_id",
    "tenant",
    "model",
    "version",
    "category",
    "route_reason",
    "status",
    "error_type",
    "prompt_tokens",
    "completion_tokens",
    "ttft_seconds",
    "latency_seconds",
    "trace_id",
    "span_id",
)
LABEL_FIELDS = ("level", "logger", "model", "tenant", "status")


def promtail_config(loki_push_url: str, log_glob: str) -> dict[str, object]:
    """The Promtail config as a YAML-ready dict."""
    return {
        "server": {"http_listen_port": 9080, "grpc_listen_port": 0},
        "positions": {"filename": "/var/lib/promtail/demigod-positions.yaml"},
        "clients": [{"url": loki_push_url}],
        "scrape_configs": [
            {
                "job_name": "demigod",
                "static_configs": [
                    {
                        "targets": ["localhost"],
                        "labels": {"job": "demigod", "__path__": log_glob},
                    }
                ],
                "pipeline_stages": [
                    {"json": {"expressions": {field: field for field in LOG_FIELDS}}},
                    {"labels": {field: None for field in LABEL_FIELDS}},
                    {"timestamp": {"source": "ts", "format": "RFC3339Nano"}},
                ],
            }
        ],
    }
