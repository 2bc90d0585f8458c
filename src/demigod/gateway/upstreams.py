"""Models served by remote replicas: their replicas' health, breakers and metrics.

`Upstreams` holds one `RemoteModel` per `upstreams:` entry (or `--upstream
NAME[@VERSION]=URL`), checks every replica's health path in the background, and exports
`demigod_upstream_up{model,replica}` plus the in-flight count and breaker state of each
replica. The request path (gateway.passthrough) picks replicas with gateway.balancer.

Two entries of one name with different versions are that model's stable (the first) and
canary candidate (the second), as two `models` entries are: the front door's version
router splits sessions between them by the canary weight (routing.versions), so a
candidate `demigod worker` (or Deployment) is canaried from the gateway as an embedded
candidate is.

With `gateway.replicas_dir`, the replica set of each model is whatever is published
there (scaling.replica_set; a candidate's as `NAME@VERSION`), re-read at every health
check: a new URL joins once its
health check passes; a URL that disappears takes no new requests from that moment, while
requests already sent to it finish (they hold their own reference), which is how a
replica is drained before `demigod ops autoscale` stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from demigod.config import GatewayConfig, UpstreamConfig
from demigod.engines.remote_openai import RemoteOpenAI
from demigod.gateway.balancer import Replica
from demigod.gateway.breaker import CircuitBreaker
from demigod.observability.metrics import Metrics
from demigod.routing.versions import PIN_SEPARATOR, split_versions
from demigod.scaling.replica_set import read_replica_sets

log = logging.getLogger(__name__)


@dataclass(eq=False)
class RemoteModel:
    """A model the gateway forwards to; routable like an embedded `ServedModel`."""

    name: str
    categories: list[str]
    version: str
    served_name: str
    replicas: list[Replica]
    fallback: list[str]
    health_path: str
    api_key: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def available(self, now: float) -> bool:
        return any(replica.available(now) for replica in self.replicas)


class _ReplicaCollector(Collector):
    """In-flight requests and breaker state per replica, read at scrape time."""

    def __init__(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    def collect(self) -> Iterable[Metric]:
        labels = ["model", "replica"]
        outstanding = GaugeMetricFamily(
            "demigod_upstream_outstanding_requests",
            "Requests this gateway process has in flight to the replica",
            labels=labels,
        )
        breaker = GaugeMetricFamily(
            "demigod_upstream_breaker_state",
            "Circuit breaker of the replica: 0 closed, 1 half-open, 2 open",
            labels=labels,
        )
        now = time.monotonic()
        for model in self._upstreams.every_version():
            for replica in model.replicas:
                outstanding.add_metric([model.name, replica.url], replica.outstanding)
                breaker.add_metric([model.name, replica.url], replica.breaker.state(now))
        yield outstanding
        yield breaker


class Upstreams:
    """Every remote model of one gateway process, with the client that reaches them."""

    def __init__(
        self, configs: list[UpstreamConfig], settings: GatewayConfig, metrics: Metrics
    ) -> None:
        """Raises ValueError for a name listed twice with one version, or three times."""
        stable, candidates = split_versions(configs)
        self.settings = settings
        self.models: dict[str, RemoteModel] = {c.name: self._model(c) for c in stable}
        # Canary candidates, by name: routed to by the version router only.
        self.candidates: dict[str, RemoteModel] = {c.name: self._model(c) for c in candidates}
        self.client = RemoteOpenAI(
            max_connections=settings.max_connections,
            connect_timeout=settings.connect_timeout_seconds,
            request_timeout=settings.request_timeout_seconds,
            health_timeout=settings.health_timeout_seconds,
        )
        self._up = metrics.upstream_up
        registry = metrics.registry
        self.attempts = Counter(
            "demigod_upstream_attempts",
            "Requests sent to a replica, by outcome (ok, http_4xx, http_5xx, connect_error, "
            "broken, timeout, replica_down)",
            ["model", "replica", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "demigod_upstream_retries",
            "Requests sent again to another replica after failing before their first byte",
            ["model"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "demigod_upstream_fallbacks",
            "Requests answered by a fallback model because no replica of theirs could",
            ["model", "fallback"],
            registry=registry,
        )
        metrics.watch(_ReplicaCollector(self))
        self._checking: asyncio.Task[None] | None = None

    def _model(self, config: UpstreamConfig) -> RemoteModel:
        return RemoteModel(
            name=config.name,
            categories=config.categories,
            version=config.version,
            served_name=config.served_name or config.name,
            replicas=[self._new_replica(url) for url in config.urls],
            fallback=config.fallback,
            health_path=config.health_path,
            api_key=config.api_key,
        )

    def every_version(self) -> list[RemoteModel]:
        """The stable models, then the candidates."""
        return [*self.models.values(), *self.candidates.values()]

    def _new_replica(self, url: str) -> Replica:
        breaker = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_open_seconds)
        return Replica(url, breaker)

    async def start(self) -> None:
        """Open the client pool, learn the published replica sets, check every replica
        once, then keep checking."""
        await self.client.start()
        await self.follow_replica_sets()
        for model in self.every_version():
            for replica in model.replicas:
                self._up.labels(model.name, replica.url).set(0)
        await self.check_all()
        self._checking = asyncio.create_task(self._check_forever())

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        await self.client.close()

    def any_available(self) -> bool:
        now = time.monotonic()
        return any(model.available(now) for model in self.every_version())

    def mark_down(self, model: RemoteModel, replica: Replica, reason: str) -> None:
        """A refused connection or a failed health check takes the replica out until a
        check passes; requests still waiting for its first byte are retried elsewhere
        (a partitioned replica would otherwise hold them until the request timeout)."""
        if replica.healthy:
            log.warning(
                "upstream replica down",
                extra={"model": model.name, "replica": replica.url, "reason": reason},
            )
        replica.healthy = False
        replica.mark_lost()
        self._up.labels(model.name, replica.url).set(0)

    async def check_all(self) -> None:
        checks = [
            self._check(model, replica)
            for model in self.every_version()
            for replica in model.replicas
        ]
        await asyncio.gather(*checks)

    async def _check(self, model: RemoteModel, replica: Replica) -> None:
        ready = await self.client.ready(replica.url + model.health_path)
        if ready and not replica.healthy:
            log.info("upstream replica up", extra={"model": model.name, "replica": replica.url})
        if not ready:
            self.mark_down(model, replica, "health check failed")
        replica.healthy = ready
        self._up.labels(model.name, replica.url).set(1 if ready else 0)

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_seconds)
            try:
                await self.follow_replica_sets()
                await self.check_all()
            except Exception:  # a bug here must not stop the checks for good
                log.exception("upstream health check failed")

    async def follow_replica_sets(self) -> None:
        """Make each model's replicas the URLs published for it in `replicas_dir` (a
        candidate's under `NAME@VERSION`)."""
        if self.settings.replicas_dir is None:
            return
        published = await asyncio.to_thread(read_replica_sets, self.settings.replicas_dir)
        by_key = {model.name: model for model in self.models.values()}
        by_key |= {f"{c.name}{PIN_SEPARATOR}{c.version}": c for c in self.candidates.values()}
        for key, replica_set in published.items():
            model = by_key.get(key)
            if model is None:
                continue
            wanted = list(dict.fromkeys(replica_set.urls))
            current = {replica.url: replica for replica in model.replicas}
            joining = [self._new_replica(url) for url in wanted if url not in current]
            await asyncio.gather(*(self._check(model, replica) for replica in joining))
            joined = {replica.url: replica for replica in joining if replica.healthy}
            # Order as published; a joiner whose check failed is tried again next round.
            model.replicas = [
                current.get(url) or joined[url] for url in wanted if url in current or url in joined
            ]
            failed = {replica.url for replica in joining} - joined.keys()
            for url in (current.keys() - set(wanted)) | failed:
                with contextlib.suppress(KeyError):  # a series it never exported
                    self._up.remove(model.name, url)
                if url not in failed:
                    log.info(
                        "upstream replica removed", extra={"model": model.name, "replica": url}
                    )
            for url in joined:
                log.info("upstream replica added", extra={"model": model.name, "replica": url})
