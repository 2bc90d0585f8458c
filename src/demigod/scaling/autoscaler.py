"""`demigod ops autoscale`: one model's worker processes on one host, scaled by the HPA
algorithm (scaling.hpa) on the workers' own metrics (scaling.signals).

Each tick: note which starting workers became ready, read every ready worker's metrics,
decide, then act. More replicas: start workers; each joins the published replica set
(scaling.replica_set) once it answers /readyz, so the gateway never routes to a worker
still loading. Fewer: the newest replicas leave the published set at once (the gateway
stops sending them requests), and each is stopped by a background drain once its own
queue is empty (or after `drain_timeout_seconds`), with SIGTERM so what slipped in
still finishes. A worker that dies is replaced at the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from demigod.config import AutoscaleConfig
from demigod.scaling.hpa import Behavior, Decision, Recommendation, decide
from demigod.scaling.replica_set import publish
from demigod.scaling.replicas import WorkerProcesses, WorkerReplica
from demigod.scaling.signals import metric_values, scrape

log = logging.getLogger(__name__)

# A removed replica keeps getting requests until the gateway re-reads the replica set
# (its health interval, 1 s by default): wait at least this before calling it idle.
DRAIN_GRACE_SECONDS = 2.5
DRAIN_POLL_SECONDS = 0.2
SCRAPE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Tick:
    """One decision, as logged and printed with --json."""

    time: float
    replicas: int
    ready: int
    desired: int
    reason: str
    metrics: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "time": round(self.time, 3),
            "replicas": self.replicas,
            "ready": self.ready,
            "desired": self.desired,
            "reason": self.reason,
            "metrics": {name: round(value, 3) for name, value in self.metrics.items()},
        }


class Autoscaler:
    """Keeps `model`'s workers between the configured bounds, as the metrics ask."""

    def __init__(
        self,
        model: str,
        config: AutoscaleConfig,
        processes: WorkerProcesses,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.config = config
        self.processes = processes
        self.clock = clock
        self.behavior = Behavior(
            min_replicas=config.min_replicas,
            max_replicas=config.max_replicas,
            scale_up_window=config.scale_up_window_seconds,
            scale_down_window=config.scale_down_window_seconds,
            tolerance=config.tolerance,
        )
        self.replicas: list[WorkerReplica] = []
        self.draining: list[threading.Thread] = []
        self.history: tuple[Recommendation, ...] = ()
        self.client = httpx.Client(timeout=SCRAPE_TIMEOUT_SECONDS)
        self._published: list[str] | None = None

    @property
    def replicas_dir(self) -> Path:
        return self.config.replicas_dir

    def start(self) -> None:
        """Start the minimum number of workers (without waiting for them)."""
        self.publish()
        for _ in range(self.config.min_replicas):
            self.replicas.append(self.processes.start())

    def tick(self) -> Tick:
        """One round: readiness, metrics, decision, action."""
        for dead in [r for r in self.replicas if not r.alive()]:
            log.error("worker %s exited (log: %s); replacing it", dead.url, dead.log)
            self.replicas.remove(dead)
        for replica in self.replicas:
            self.processes.poll_ready(replica, self.client)
        ready = [r for r in self.replicas if r.ready]
        signals = [s for r in ready if (s := scrape(self.client, r.url, self.model)) is not None]
        metrics = metric_values(signals, len(self.replicas), self.config)
        current = max(len(self.replicas), 1)
        decision: Decision = decide(current, metrics, self.behavior, self.clock(), self.history)
        self.history = decision.history
        if len(self.replicas) < decision.replicas:
            for _ in range(decision.replicas - len(self.replicas)):
                self.replicas.append(self.processes.start())
        elif len(self.replicas) > decision.replicas:
            self.scale_down(len(self.replicas) - decision.replicas)
        self.publish()
        return Tick(
            time=time.time(),
            replicas=len(self.replicas),
            ready=len(ready),
            desired=decision.replicas,
            reason=decision.reason,
            metrics={metric.name: metric.value for metric in metrics},
        )

    def scale_down(self, count: int) -> None:
        """Unpublish the `count` newest replicas now; drain and stop them in the background."""
        leaving = self.replicas[-count:]
        del self.replicas[-count:]
        self.publish()
        for replica in leaving:
            thread = threading.Thread(target=self._drain, args=(replica,), daemon=True)
            thread.start()
            self.draining.append(thread)

    def publish(self) -> None:
        """Write the ready replicas' URLs when they changed."""
        urls = [r.url for r in self.replicas if r.ready]
        if urls != self._published:
            publish(self.replicas_dir, self.model, urls)
            self._published = urls

    def run(self, stop: threading.Event, on_tick: Callable[[Tick], None] | None = None) -> None:
        """Tick every `interval_seconds` until `stop` is set, then drain every worker."""
        self.start()
        try:
            while not stop.is_set():
                started = self.clock()
                result = self.tick()
                if on_tick is not None:
                    on_tick(result)
                stop.wait(max(0.0, self.config.interval_seconds - (self.clock() - started)))
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Unpublish and drain every worker, and wait for the drains."""
        if self.replicas:
            self.scale_down(len(self.replicas))
        for thread in self.draining:
            thread.join()
        self.draining.clear()
        self.client.close()

    def _drain(self, replica: WorkerReplica) -> None:
        """Wait out the gateway's re-read, then until the worker's queue is empty (or the
        drain timeout), then stop it gracefully."""
        deadline = time.monotonic() + self.config.drain_timeout_seconds
        time.sleep(DRAIN_GRACE_SECONDS)
        with httpx.Client(timeout=SCRAPE_TIMEOUT_SECONDS) as client:
            while time.monotonic() < deadline and replica.alive():
                signals = scrape(client, replica.url, self.model)
                if signals is None or signals.queue_depth == 0:
                    break
                time.sleep(DRAIN_POLL_SECONDS)
        remaining = max(1.0, deadline - time.monotonic())
        self.processes.stop(replica, timeout=remaining)
        log.info("worker %s stopped after draining", replica.url)
