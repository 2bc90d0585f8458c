"""The HTTP application: OpenAI-compatible routes, health, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from demigod import __version__
from demigod.canary.store import open_store
from demigod.canary.sync import follow_store
from demigod.config import ModelConfig, Settings, UpstreamConfig
from demigod.engines.base import SamplingParams
from demigod.gateway import consensus
from demigod.gateway.admission import Admission, AdmissionMiddleware, AdmissionPipeline, Endpoint
from demigod.gateway.chat_template import ChatTemplateError
from demigod.gateway.classifier import RequestClassifier
from demigod.gateway.completions import (
    CompletionJob,
    CompletionRunner,
    Kind,
    default_max_tokens,
    expects_next_turn,
)
from demigod.gateway.errors import APIError, install_error_handlers
from demigod.gateway.passthrough import UpstreamProxy
from demigod.gateway.policy import (
    RouteDecision,
    RoutingPolicy,
    RuleTargetError,
    UnknownModelError,
)
from demigod.gateway.request_context import RequestContextMiddleware
from demigod.gateway.upstreams import RemoteModel, Upstreams
from demigod.gateway.versions import (
    UnknownVersionError,
    VersionRouter,
    split_pinned,
    split_versions,
)
from demigod.lifecycle.hemlock import load_suite
from demigod.mesh import Mesh, ServedModel
from demigod.observability.energy import EnergyMeter, host_energy_sources
from demigod.observability.gpu import GpuCollector
from demigod.observability.metrics import (
    CONTENT_TYPE,
    Metrics,
    SchedulerCollector,
    StateCacheCollector,
)
from demigod.observability.probes import DeepProber
from demigod.observability.tracing import Tracing
from demigod.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    Completion,
    CompletionFields,
    CompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
    RouteResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from demigod.security.audit.middleware import AuditMiddleware
from demigod.security.audit.store import AuditLog
from demigod.security.authenticate import Authenticator, require_model
from demigod.security.principal import ANONYMOUS
from demigod.security.quota import QuotaGate
from demigod.security.waf.enforcement import RequestScreen

log = logging.getLogger(__name__)

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "invalid request (the error names the field)",
        401: "missing or invalid credentials (the error's code is the reason)",
        403: "the caller may not use this model",
        404: "unknown model",
        429: "a tenant limit is reached; retry after the Retry-After header",
        503: "model queue full; retry after the Retry-After header",
    }.items()
}


ROUTE_HEADER = "x-demigod-route"
SESSION_HEADER = "x-session-id"


def request_session(request: Request, user: str | None) -> str | None:
    """What keeps a conversation on one version: `X-Session-Id`, else the body's `user`."""
    return request.headers.get(SESSION_HEADER) or user or None


def routing_text(body: ChatCompletionRequest) -> str:
    """What the classifier reads of a conversation: every message, oldest first."""
    return "\n".join(message.text() for message in body.messages)


def route_header(decision: RouteDecision[ServedModel]) -> str:
    """`category=code; model=demigod-code; version=local; reason="..."` (ASCII only)."""
    reason = decision.reason.encode("ascii", "replace").decode().replace('"', "'")
    return (
        f"category={decision.category or 'none'}; model={decision.model.name}; "
        f'version={decision.model.version}; reason="{reason}"'
    )


def _served_models(mesh: Mesh) -> dict[str, object]:
    return {
        "models": [
            {"name": served.name, "version": served.version} for served in mesh.models.values()
        ]
    }


class ConsensusRouted(APIError):
    """A routing rule sent `auto` to a consensus group: only chat completions (and
    /v1/route) can follow it; elsewhere the client gets this 400."""

    def __init__(self, rule: RuleTargetError) -> None:
        super().__init__(
            400,
            f"model 'auto' routes to consensus group {rule.target!r} ({rule.reason}), "
            "which answers /v1/chat/completions only",
            param="model",
        )
        self.rule = rule


def create_app(
    settings: Settings,
    models: list[ModelConfig],
    aliases: Mapping[str, Mapping[str, str]] | None = None,
    upstreams: list[UpstreamConfig] | None = None,
) -> FastAPI:
    """The gateway for `models`; they load at startup and close at shutdown. `aliases`
    (model -> alias -> version label, from the registry) resolve `model@alias`. Remote
    `upstreams` (default: the config's) are forwarded to by gateway.passthrough."""
    metrics = Metrics()
    observability = settings.observability
    energy = EnergyMeter(
        host_energy_sources(observability.powercap_dir, observability.watts_per_core)
    )
    metrics.watch(energy)
    if (gpu := GpuCollector.find()) is not None:
        metrics.watch(gpu)
    tracing = Tracing(observability.otlp_endpoint)
    runner = CompletionRunner(metrics, energy, tracing, log_content=observability.log_content)
    prober = DeepProber(metrics, load_suite(settings.lifecycle.hemlock_suite).probe_cases())
    state: dict[str, object] = {}
    upstream_configs = settings.upstreams if upstreams is None else upstreams
    remote = Upstreams(upstream_configs, settings.gateway, metrics) if upstream_configs else None
    authenticator = Authenticator(settings.security, settings.data_dir, metrics.registry)
    quotas = QuotaGate.from_config(settings.security, metrics.registry)
    # The request path before routing: auth -> quota -> screen. A feature adds its step
    # here in one line (admission.add / admission.on_finish; see gateway/admission.py).
    admission = AdmissionPipeline()
    admission.add("auth", authenticator)
    admission.add("quota", quotas)
    waf = RequestScreen(settings.waf, metrics)
    admission.add("screen", waf.admit)

    audit_log = AuditLog.from_settings(settings) if settings.audit.enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await authenticator.start(settings.host)
        if audit_log is not None:
            await asyncio.to_thread(audit_log.open)
        stable_configs, candidate_configs = split_versions(models)
        verbose = settings.log_level == "DEBUG"
        mesh = await Mesh.load(stable_configs, settings.engine, verbose=verbose)
        candidates = await Mesh.load(candidate_configs, settings.engine, verbose=verbose)
        state["mesh"] = mesh
        if remote is not None:
            if clash := sorted(set(mesh.models) & set(remote.models)):
                raise ValueError(f"names both embedded and upstream: {', '.join(clash)}")
            await remote.start()
        classifier = RequestClassifier.from_config(settings.routing)
        routable: dict[str, ServedModel | RemoteModel] = {**mesh.models}
        routable.update(remote.models if remote else {})
        # Train now: `auto` classifies even with one model, and training on the first
        # request would block the event loop for as long as training takes.
        await asyncio.to_thread(classifier.model)
        await asyncio.to_thread(waf.warm)
        state["policy"] = RoutingPolicy(
            routable,
            classifier,
            settings.default_model,
            aliases=aliases,
            rules=settings.routing.rules,
            extra_targets=list(settings.consensus.groups),
            chars_per_token=settings.routing.chars_per_token,
        )
        versions = VersionRouter(candidates.models, max_pins=settings.canary.session_pins)
        state["versions"] = versions
        following = (
            asyncio.create_task(
                follow_store(
                    open_store(settings),
                    versions,
                    mesh.models,
                    settings.canary.weights,
                    metrics,
                    settings.canary.refresh_seconds,
                )
            )
            if candidates.models
            else None
        )
        metrics.watch_queues(mesh.queue_depths, replica=f"{settings.host}:{settings.port}")
        metrics.watch(StateCacheCollector(mesh.state_cache_stats))
        metrics.watch(SchedulerCollector(mesh.scheduler_stats))
        for served in mesh.models.values():
            metrics.model_load_seconds.labels(served.name).set(served.load_seconds)
        probing = (
            asyncio.create_task(
                prober.run_every(
                    observability.deep_probe_interval_seconds,
                    lambda: mesh.models,
                    restart=mesh.restart,
                    restart_after=observability.deep_probe_failures_before_restart,
                )
            )
            if observability.deep_probe_interval_seconds > 0
            else None
        )
        log.info("mesh ready", extra={"models": sorted(mesh.models), "port": settings.port})
        if audit_log is not None:
            await audit_log.append("gateway.start", _served_models(mesh))
        try:
            yield
        finally:
            if audit_log is not None:
                await audit_log.append("gateway.stop", _served_models(mesh))
                await asyncio.to_thread(audit_log.close)
            if probing is not None:
                probing.cancel()
            if following is not None:
                following.cancel()
            await mesh.close()
            await candidates.close()
            if remote is not None:
                await remote.close()
            tracing.shutdown()
            await authenticator.close()
            await quotas.backend.close()

    app = FastAPI(
        title="Phoenix DemiGod",
        version=__version__,
        description="OpenAI-compatible inference mesh for attention-free language models.",
        lifespan=lifespan,
    )
    app.state.audit_log = audit_log  # admin and lifecycle events: audit_log.record_event()

    def record_refusal(request: Request, status: int) -> None:
        if request.url.path.startswith("/v1/") and request.method == "POST":
            served: ServedModel | None = getattr(request.state, "model", None)
            metrics.requests.labels(
                served.name if served else "none",
                served.version if served else "none",
                getattr(request.state, "principal", ANONYMOUS).tenant,
                str(status),
            ).inc()

    install_error_handlers(app, on_error=record_refusal)

    def current_policy() -> RoutingPolicy[ServedModel | RemoteModel] | None:
        policy = state.get("policy")
        return policy if isinstance(policy, RoutingPolicy) else None

    if remote is not None:  # inside admission's middleware: its finish callbacks see it
        app.add_middleware(
            UpstreamProxy,
            upstreams=remote,
            policy=current_policy,
            admission=admission,
            metrics=metrics,
            tracing=tracing,
        )
    app.add_middleware(AdmissionMiddleware)
    app.add_middleware(
        AuditMiddleware, audit_log=lambda: audit_log, include_text=settings.audit.include_text
    )
    app.add_middleware(RequestContextMiddleware)

    async def admit(request: Request, endpoint: Endpoint, model: str, text: str) -> Admission:
        # gateway.passthrough admits first when upstreams are configured: not twice
        if isinstance(done := getattr(request.state, "admission", None), Admission):
            return done
        return await admission.admit(request, endpoint, model, text)

    def mesh() -> Mesh:
        loaded = state.get("mesh")
        if not isinstance(loaded, Mesh):
            raise APIError(
                503, "models are still loading", type="server_error", headers={"Retry-After": "1"}
            )
        return loaded

    def route(
        request: Request, name: str, prompt: str = "", user: str | None = None
    ) -> RouteDecision[ServedModel]:
        policy, versions = state.get("policy"), state.get("versions")
        if not isinstance(policy, RoutingPolicy) or not isinstance(versions, VersionRouter):
            raise APIError(
                503, "models are still loading", type="server_error", headers={"Retry-After": "1"}
            )
        name, pinned = split_pinned(name)
        try:
            decision: RouteDecision[ServedModel] = policy.resolve(
                name, prompt, request.state.admission.principal.tenant
            )
            if pinned is not None:
                served = versions.pinned(decision.model, pinned, policy.aliases(name))
                decision = replace(decision, model=served, reason="explicit model and version")
            else:
                choice = versions.choose(decision.model, request_session(request, user))
                if choice.reason:
                    reason = f"{decision.reason}; {choice.reason}"
                    decision = replace(decision, model=choice.served, reason=reason)
        except (UnknownModelError, UnknownVersionError) as exc:
            raise APIError(
                404, str(exc), type="not_found_error", param="model", code="model_not_found"
            ) from exc
        except RuleTargetError as exc:
            raise ConsensusRouted(exc) from exc
        request.state.model = decision.model
        admitted: Admission = request.state.admission
        require_model(admitted, decision.model.name)
        admitted.routed_model, admitted.routed_version = decision.model.name, decision.model.version
        request.state.route_decision = decision
        return decision

    def sampling(
        body: CompletionFields,
        kind: Kind,
        prompt_tokens: int,
        n_ctx: int,
        extra_stops: tuple[str, ...],
    ) -> SamplingParams:
        return SamplingParams(
            max_tokens=body.max_tokens or default_max_tokens(kind, prompt_tokens, n_ctx),
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            stop=tuple(body.stop_sequences) + extra_stops,
            ignore_eos=body.ignore_eos,
        )

    def job(
        request: Request,
        body: CompletionFields,
        kind: Kind,
        decision: RouteDecision[ServedModel],
        tokens: list[int],
        stops: tuple[str, ...],
        prompt_text: str,
        echo: str = "",
        conversation: bool = False,
    ) -> CompletionJob:
        served = decision.model
        if not tokens:
            raise APIError(
                400, "the prompt is empty", param="prompt" if kind == "text" else "messages"
            )
        return CompletionJob(
            kind=kind,
            model=served,
            prompt_tokens=tokens,
            sampling=sampling(body, kind, len(tokens), served.engine.info.n_ctx, stops),
            stream=body.stream,
            include_usage=bool(body.stream_options and body.stream_options.include_usage),
            request_id=request.state.request_id,
            received=request.state.received,
            echo_text=echo,
            prompt_text=prompt_text,
            category=decision.category,
            route_reason=decision.reason,
            tenant=request.state.admission.principal.tenant,
            on_usage=request.state.admission.record_usage,
            conversation=conversation,
        )

    def consensus_target(
        body: ChatCompletionRequest, requested: str
    ) -> consensus.ConsensusTarget | None:
        return consensus.resolve_target(
            requested,
            settings.consensus.groups,
            (body.model_extra or {}).get("consensus"),
            mesh().models,
        )

    async def consensus_answer(
        request: Request, body: ChatCompletionRequest, target: consensus.ConsensusTarget
    ) -> JSONResponse:
        """Ask every member (and the judge), answer with the winner (gateway/consensus.py)."""
        if body.stream:
            raise APIError(400, "consensus answers are not streamed", param="stream")

        async def ask(name: str, judge_prompt: str | None) -> consensus.MemberReply:
            asked = body.model_copy(update={"model": name})
            if judge_prompt is not None:
                messages = [ChatMessage(role="user", content=judge_prompt)]
                asked = asked.model_copy(
                    update={"messages": messages, "max_tokens": 16, "temperature": 0.0}
                )
            decision = route(request, name, "", body.user)
            served = decision.model
            prompt = served.chat_template.render(asked.messages)
            tokens = await asyncio.to_thread(
                served.engine.tokenize, prompt, add_special=True, parse_special=True
            )
            stops = served.chat_template.stops
            reply = await runner.respond(
                job(request, asked, "chat", decision, tokens, stops, prompt), request
            )
            done = ChatCompletion.model_validate_json(bytes(reply.body))
            return consensus.MemberReply(
                consensus.Answer(name, done.choices[0].message.content),
                served.version,
                done.usage.prompt_tokens,
                done.usage.completion_tokens,
            )

        completion = await consensus.answer(target, routing_text(body), ask)
        return JSONResponse(
            completion.model_dump(),
            headers={
                ROUTE_HEADER: consensus.route_header(completion.demigod_consensus, target.label)
            },
        )

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        responses=ERROR_RESPONSES,
        tags=["openai"],
    )
    async def chat_completions(
        body: ChatCompletionRequest, request: Request
    ) -> JSONResponse | StreamingResponse:
        """Chat completion, streamed (SSE) or not. `model` may be `auto`."""
        await admit(request, "chat", body.model, routing_text(body))
        target = consensus_target(body, body.model)
        if target is None:
            try:
                decision = route(request, body.model, routing_text(body), body.user)
            except ConsensusRouted as routed:
                target = consensus_target(body, routed.rule.target)
        if target is not None:
            return await consensus_answer(request, body, target)
        served = decision.model
        try:
            prompt = served.chat_template.render(body.messages)
        except ChatTemplateError as exc:
            raise APIError(400, str(exc), param="messages") from exc
        tokens = await asyncio.to_thread(
            served.engine.tokenize, prompt, add_special=True, parse_special=True
        )
        response = await runner.respond(
            job(
                request,
                body,
                "chat",
                decision,
                tokens,
                served.chat_template.stops,
                prompt,
                conversation=expects_next_turn(
                    request_session(request, body.user), (m.role for m in body.messages)
                ),
            ),
            request,
        )
        response.headers[ROUTE_HEADER] = route_header(decision)
        return response

    @app.post(
        "/v1/completions", response_model=Completion, responses=ERROR_RESPONSES, tags=["openai"]
    )
    async def completions(
        body: CompletionRequest, request: Request
    ) -> JSONResponse | StreamingResponse:
        """Text completion, streamed (SSE) or not. `model` may be `auto`."""
        text = body.prompt_text()
        await admit(request, "text", body.model, text)
        decision = route(request, body.model, text, body.user)
        served = decision.model
        tokens = await asyncio.to_thread(served.engine.tokenize, text, add_special=True)
        response = await runner.respond(
            job(
                request,
                body,
                "text",
                decision,
                tokens,
                (),
                text,
                text if body.echo else "",
                conversation=expects_next_turn(request_session(request, body.user)),
            ),
            request,
        )
        response.headers[ROUTE_HEADER] = route_header(decision)
        return response

    @app.post(
        "/v1/route", response_model=RouteResponse, responses=ERROR_RESPONSES, tags=["extensions"]
    )
    async def route_only(body: ChatCompletionRequest, request: Request) -> RouteResponse:
        """The routing decision a chat request would get, without generating."""
        await admit(request, "route", body.model, routing_text(body))
        try:
            decision = route(request, body.model, routing_text(body), body.user)
        except ConsensusRouted as routed:
            rule = routed.rule
            return RouteResponse(
                model=rule.target, version="consensus", category=rule.category, reason=rule.reason
            )
        return RouteResponse(
            model=decision.model.name,
            version=decision.model.version,
            category=decision.category,
            reason=decision.reason,
        )

    @app.get("/v1/models", response_model=ModelList, tags=["openai"])
    async def list_models(request: Request) -> ModelList:
        """The served models the caller may use. `auto` is accepted too and routes by the
        policy."""
        principal = (await admit(request, "models", "", "")).principal
        return ModelList(
            data=[
                ModelCard(
                    id=served.name,
                    created=served.created,
                    categories=served.categories,
                    context_length=served.engine.info.n_ctx,
                )
                for served in mesh().models.values()
                if principal.may_use(served.name)
            ]
            + [
                ModelCard(id=model.name, created=model.created, categories=model.categories)
                for model in (remote.models.values() if remote else ())
                if principal.may_use(model.name)
            ]
        )

    @app.post(
        "/tokenize", response_model=TokenizeResponse, responses=ERROR_RESPONSES, tags=["extensions"]
    )
    async def tokenize(body: TokenizeRequest, request: Request) -> TokenizeResponse:
        """Token ids of `content` as `model` sees them (llama-server's /tokenize)."""
        await admit(request, "tokenize", body.model, body.content)
        served = route(request, body.model, body.content).model
        tokens = await asyncio.to_thread(
            served.engine.tokenize, body.content, add_special=body.add_special
        )
        return TokenizeResponse(model=served.name, tokens=tokens)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Light probe: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Ready when every model is loaded and its engine is healthy."""
        loaded = state.get("mesh")
        ready = isinstance(loaded, Mesh) and (
            loaded.ready() if loaded.models or remote is None else remote.any_available()
        )
        body = {
            "status": "ready" if ready else "not ready",
            "models": sorted(loaded.models) if isinstance(loaded, Mesh) else [],
            "upstreams": sorted(remote.models) if remote else [],
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/healthz/deep", tags=["health"])
    async def healthz_deep() -> JSONResponse:
        """Runs a short greedy generation through every model and checks it produced tokens,
        then the Hemlock `probe: true` cases (lifecycle.hemlock_suite) and their checks."""
        results: dict[str, str] = {}
        for served in mesh().models.values():
            results[served.name] = await prober.probe(served)
        healthy = all(result == "ok" for result in results.values())
        return JSONResponse(
            {"status": "ok" if healthy else "failing", "models": results},
            status_code=200 if healthy else 503,
        )

    @app.get("/metrics", tags=["health"])
    async def metrics_endpoint() -> Response:
        """Prometheus text format."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app
