"""`demigod ops drift --watch`: check every `ops.drift.interval_seconds` and export the
result for Prometheus, where the DemigodDrift alert fires on it."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from demigod.config import Settings
from demigod.ops.drift import DRIFT_KINDS
from demigod.ops.drift_check import CHECKS, Check, DriftReport, check_drift
from demigod.ops.lockfile import LockError

log = logging.getLogger(__name__)


class DriftMetrics:
    """`demigod_drift{kind}` (differences of that kind found by the last check; every
    kind is always exported, so an alert resolves when its kind drops to 0) and
    `demigod_drift_last_check_timestamp_seconds` (a stale one means checks fail)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.drift = Gauge(
            "demigod_drift",
            "Differences between the declared state (git) and the running mesh, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.last_check = Gauge(
            "demigod_drift_last_check_timestamp_seconds",
            "When the last drift check completed (Unix time)",
            registry=self.registry,
        )
        for kind in DRIFT_KINDS:
            self.drift.labels(kind).set(0)

    def record(self, report: DriftReport) -> None:
        counts = Counter(drift.kind for drift in report.drifts)
        for kind in DRIFT_KINDS:
            self.drift.labels(kind).set(counts.get(kind, 0))
        self.last_check.set(time.time())


def watch(
    settings: Settings,
    lock_file: Path | None,
    on_report: Callable[[DriftReport], None],
    stop: threading.Event,
    checks: Collection[Check] = CHECKS,
) -> None:
    """Serve the metrics on `host`:`ops.drift.metrics_port` (the gateway's address from
    the same file), then check until `stop` is set. A check that fails (the lock file
    unreadable) is logged; the timestamp goes stale."""
    metrics = DriftMetrics()
    start_http_server(
        settings.ops.drift.metrics_port, addr=settings.host, registry=metrics.registry
    )
    while not stop.is_set():
        try:
            report = check_drift(settings, lock_file, checks)
        except LockError as exc:
            log.error("drift check failed", extra={"error": str(exc)})
        else:
            metrics.record(report)
            on_report(report)
        stop.wait(settings.ops.drift.interval_seconds)
