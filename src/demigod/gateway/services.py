"""The gateway's parts, in two typed containers.

`Components` are built with the app, because its middleware (admission, pass-through,
audit) holds them before the server starts. `Services` are built at startup, once the
models are loaded: the front door and one serving class per endpoint family, which the
routes reach through `services(request)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Request
from starlette.applications import Starlette

from demigod.api.admission import AdmissionPipeline
from demigod.api.errors import APIError
from demigod.canary.store import open_store
from demigod.canary.sync import follow_store
from demigod.config import ModelConfig, Settings, UpstreamConfig
from demigod.evaluation.hemlock import load_suite
from demigod.gateway.front_door import FrontDoor, Target
from demigod.gateway.runner import CompletionRunner
from demigod.gateway.serving.admin import ServingAdmin
from demigod.gateway.serving.chat import ServingChat
from demigod.gateway.serving.completions import ServingCompletions
from demigod.gateway.serving.consensus import ServingConsensus
from demigod.gateway.serving.health import ServingHealth
from demigod.gateway.serving.models import ServingModels
from demigod.gateway.serving.props import ServingProps
from demigod.gateway.serving.route import ServingRoute
from demigod.gateway.serving.tokenize import ServingTokenize
from demigod.gateway.token_reader import TokenReader
from demigod.gateway.upstreams import Upstreams
from demigod.mesh import Mesh
from demigod.observability.energy import EnergyMeter, host_energy_sources
from demigod.observability.gpu import GpuCollector
from demigod.observability.metrics import Metrics, SchedulerCollector, StateCacheCollector
from demigod.observability.probes import DeepProber
from demigod.observability.tracing import Tracing
from demigod.routing.classifier import RequestClassifier
from demigod.routing.policy import RoutingPolicy
from demigod.routing.versions import VersionRouter, split_versions
from demigod.security.audit.store import AuditLog
from demigod.security.authenticate import Authenticator
from demigod.security.quota import QuotaGate
from demigod.security.waf.enforcement import RequestScreen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Components:
    """What one gateway process holds from its creation to its end."""

    settings: Settings
    metrics: Metrics
    energy: EnergyMeter
    tracing: Tracing
    runner: CompletionRunner
    prober: DeepProber
    remote: Upstreams | None  # the upstreams' models, when any are configured
    authenticator: Authenticator
    quotas: QuotaGate
    waf: RequestScreen
    admission: AdmissionPipeline
    audit_log: AuditLog | None  # None with audit.enabled false

    @classmethod
    def build(cls, settings: Settings, upstreams: list[UpstreamConfig]) -> Components:
        metrics = Metrics()
        observability = settings.observability
        energy = EnergyMeter(
            host_energy_sources(observability.powercap_dir, observability.watts_per_core)
        )
        metrics.watch(energy)
        if (gpu := GpuCollector.find()) is not None:
            metrics.watch(gpu)
        tracing = Tracing(observability.otlp_endpoint)
        authenticator = Authenticator(settings.security, settings.data_dir, metrics.registry)
        quotas = QuotaGate.from_config(settings.security, metrics.registry)
        waf = RequestScreen(settings.waf, metrics)
        # The request path before routing: auth -> quota -> screen. A feature adds its step
        # here in one line (admission.add / admission.on_finish; see api/admission.py).
        admission = AdmissionPipeline()
        admission.add("auth", authenticator)
        admission.add("quota", quotas)
        admission.add("screen", waf.admit)
        admission.add_routed("screen-tokens", waf.admit_token_prompt)
        return cls(
            settings=settings,
            metrics=metrics,
            energy=energy,
            tracing=tracing,
            runner=CompletionRunner(
                metrics, energy, tracing, log_content=observability.log_content
            ),
            prober=DeepProber(metrics, load_suite(settings.lifecycle.hemlock_suite).probe_cases()),
            remote=Upstreams(upstreams, settings.gateway, metrics) if upstreams else None,
            authenticator=authenticator,
            quotas=quotas,
            waf=waf,
            admission=admission,
            audit_log=AuditLog.from_settings(settings) if settings.audit.enabled else None,
        )


@dataclass(frozen=True)
class Services:
    """What the routes serve with, built once at startup."""

    front: FrontDoor
    chat: ServingChat
    completions: ServingCompletions
    models: ServingModels
    props: ServingProps
    route: ServingRoute
    tokenize: ServingTokenize
    health: ServingHealth
    admin: ServingAdmin


def started(app: Starlette) -> Services | None:
    """The app's services once startup is done, else None."""
    found = getattr(app.state, "services", None)
    return found if isinstance(found, Services) else None


def services(request: Request) -> Services:
    """The routes' dependency: the app's services. Raises APIError 503 until startup is
    done."""
    found = started(request.app)
    if found is None:
        raise APIError(
            503, "models are still loading", type="server_error", headers={"Retry-After": "1"}
        )
    return found


@asynccontextmanager
async def start_services(
    parts: Components,
    models: list[ModelConfig],
    aliases: Mapping[str, Mapping[str, str]] | None,
) -> AsyncIterator[Services]:
    """Load the models, start the background work (upstream health checks, canary weights,
    deep probes) and build the services; stop it all on exit."""
    settings, metrics, remote, audit_log = (
        parts.settings,
        parts.metrics,
        parts.remote,
        parts.audit_log,
    )
    await parts.authenticator.start(settings.host)
    if audit_log is not None:
        await asyncio.to_thread(audit_log.open)
    stable_configs, candidate_configs = split_versions(models)
    verbose = settings.log_level == "DEBUG"
    mesh = await Mesh.load(stable_configs, settings.engine, verbose=verbose)
    candidates = await Mesh.load(candidate_configs, settings.engine, verbose=verbose)
    background: list[asyncio.Task[None]] = []
    serving = False
    try:
        if remote is not None:
            if clash := sorted(set(mesh.models) & set(remote.models)):
                raise ValueError(f"names both embedded and upstream: {', '.join(clash)}")
            await remote.start()
        classifier = RequestClassifier.from_config(settings.routing)
        # Train now: `auto` classifies even with one model, and training on the first
        # request would block the event loop for as long as training takes.
        await asyncio.to_thread(classifier.model)
        await asyncio.to_thread(parts.waf.warm)
        routable: dict[str, Target] = {**mesh.models, **(remote.models if remote else {})}
        # Candidates of embedded models are embedded, of remote models remote.
        versions = VersionRouter[Target](
            {**candidates.models, **(remote.candidates if remote else {})},
            max_pins=settings.canary.session_pins,
        )
        front = FrontDoor(
            parts.admission,
            RoutingPolicy(
                routable,
                classifier,
                settings.default_model,
                aliases=aliases,
                rules=settings.routing.rules,
                extra_targets=list(settings.consensus.groups),
                chars_per_token=settings.routing.chars_per_token,
            ),
            versions,
            settings.consensus.groups,
            embedded=mesh.models,
            read_tokens=TokenReader(remote).read,
        )
        if versions.candidates:
            background.append(
                asyncio.create_task(
                    follow_store(
                        open_store(settings),
                        versions,
                        routable,
                        settings.canary.weights,
                        metrics,
                        settings.canary.refresh_seconds,
                    )
                )
            )
        metrics.declare_served(
            {name: model.version for name, model in routable.items()},
            {name: model.version for name, model in versions.candidates.items()},
        )
        parts.energy.declare(mesh.models)
        metrics.watch_queues(mesh.queue_depths, replica=f"{settings.host}:{settings.port}")
        metrics.watch(StateCacheCollector(mesh.state_cache_stats))
        metrics.watch(SchedulerCollector(mesh.scheduler_stats))
        for served in mesh.models.values():
            metrics.model_load_seconds.labels(served.name).set(served.load_seconds)
        observability = settings.observability
        if observability.deep_probe_interval_seconds > 0:
            background.append(
                asyncio.create_task(
                    parts.prober.run_every(
                        observability.deep_probe_interval_seconds,
                        lambda: mesh.models,
                        restart=mesh.restart,
                        restart_after=observability.deep_probe_failures_before_restart,
                    )
                )
            )
        built = Services(
            front=front,
            chat=ServingChat(front, parts.runner, ServingConsensus(front, parts.runner)),
            completions=ServingCompletions(front, parts.runner),
            models=ServingModels(front, mesh.models, remote.models if remote else {}),
            props=ServingProps(front, mesh.models, settings.default_model),
            route=ServingRoute(front),
            tokenize=ServingTokenize(front, mesh.models),
            health=ServingHealth(mesh, remote, parts.prober, metrics),
            admin=ServingAdmin(
                front, settings, mesh.models, versions, remote.every_version() if remote else []
            ),
        )
        log.info("mesh ready", extra={"models": sorted(mesh.models), "port": settings.port})
        if audit_log is not None:
            await audit_log.append("gateway.start", _served_models(mesh))
        serving = True
        yield built
    finally:
        if audit_log is not None:
            if serving:
                await audit_log.append("gateway.stop", _served_models(mesh))
            await asyncio.to_thread(audit_log.close)
        for task in background:
            task.cancel()
        await mesh.close()
        await candidates.close()
        if remote is not None:
            await remote.close()
        parts.tracing.shutdown()
        await parts.authenticator.close()
        await parts.quotas.backend.close()


def _served_models(mesh: Mesh) -> dict[str, object]:
    return {
        "models": [
            {"name": served.name, "version": served.version} for served in mesh.models.values()
        ]
    }
