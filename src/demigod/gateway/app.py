"""The HTTP application: the gateway's components, its middleware, the routes, and the
services built at startup (gateway.services)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from demigod import __version__
from demigod.api.admission import AdmissionMiddleware
from demigod.api.errors import install_error_handlers
from demigod.api.principal import ANONYMOUS
from demigod.config import ModelConfig, Settings, UpstreamConfig
from demigod.gateway.passthrough import UpstreamProxy
from demigod.gateway.request_context import RequestContextMiddleware
from demigod.gateway.routes import router
from demigod.gateway.services import Components, start_services
from demigod.observability.metrics import Metrics
from demigod.security.audit.middleware import AuditMiddleware


def create_app(
    settings: Settings,
    models: list[ModelConfig],
    aliases: Mapping[str, Mapping[str, str]] | None = None,
    upstreams: list[UpstreamConfig] | None = None,
) -> FastAPI:
    """The gateway for `models`; they load at startup and close at shutdown. `aliases`
    (model -> alias -> version label, from the registry) resolve `model@alias`. Remote
    `upstreams` (default: the config's) are forwarded to by gateway.passthrough."""
    parts = Components.build(settings, settings.upstreams if upstreams is None else upstreams)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_services(parts, models, aliases) as services:
            app.state.services = services
            try:
                yield
            finally:
                app.state.services = None

    app = FastAPI(
        title="Phoenix DemiGod",
        version=__version__,
        description="OpenAI-compatible inference mesh for attention-free language models.",
        lifespan=lifespan,
    )
    install_error_handlers(app, on_error=refusal_counter(parts.metrics))
    if parts.remote is not None:  # inside admission's middleware: its finish callbacks see it
        app.add_middleware(
            UpstreamProxy, upstreams=parts.remote, metrics=parts.metrics, tracing=parts.tracing
        )
    app.add_middleware(AdmissionMiddleware)
    app.add_middleware(
        AuditMiddleware,
        audit_log=lambda: parts.audit_log,
        include_text=settings.audit.include_text,
    )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(router)
    return app


def refusal_counter(metrics: Metrics) -> Callable[[Request, int], None]:
    """Counts each refused or failed API call in `demigod_requests_total`, with the model
    when routing got that far."""

    def count(request: Request, status: int) -> None:
        if request.url.path.startswith("/v1/") and request.method == "POST":
            model = getattr(request.state, "model", None)
            metrics.requests.labels(
                model.name if model else "none",
                model.version if model else "none",
                getattr(request.state, "principal", ANONYMOUS).tenant,
                str(status),
            ).inc()

    return count
