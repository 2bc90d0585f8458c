"""GET /readyz, /healthz/deep and /metrics: what probes and Prometheus read."""

from __future__ import annotations

from demigod.gateway.upstreams import Upstreams
from demigod.mesh import Mesh
from demigod.observability.metrics import Metrics
from demigod.observability.probes import DeepProber
from demigod.protocol import DeepHealth, Readiness


class ServingHealth:
    def __init__(
        self, mesh: Mesh, remote: Upstreams | None, prober: DeepProber, metrics: Metrics
    ) -> None:
        self._mesh = mesh
        self._remote = remote
        self._prober = prober
        self._metrics = metrics

    def readiness(self) -> Readiness:
        """Ready when every embedded model is loaded and healthy; a gateway without
        embedded models is ready while any upstream replica is."""
        mesh, remote = self._mesh, self._remote
        ready = mesh.ready() if mesh.models or remote is None else remote.any_available()
        return Readiness(
            status="ready" if ready else "not ready",
            models=sorted(mesh.models),
            upstreams=sorted(remote.models) if remote else [],
        )

    async def deep(self) -> DeepHealth:
        """A short greedy generation through every model, then the Hemlock `probe: true`
        cases (lifecycle.hemlock_suite) and their checks."""
        results = {
            served.name: await self._prober.probe(served) for served in self._mesh.models.values()
        }
        healthy = all(result == "ok" for result in results.values())
        return DeepHealth(status="ok" if healthy else "failing", models=results)

    def metrics(self) -> bytes:
        """Every metric in Prometheus text format."""
        return self._metrics.render()
