"""The HTTP application: OpenAI-compatible routes, health, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from demigod import __version__
from demigod.config import ModelConfig, Settings
from demigod.engines.base import GenerationRequest, SamplingParams
from demigod.gateway.chat_template import ChatTemplateError
from demigod.gateway.completions import (
    ANONYMOUS_TENANT,
    CompletionJob,
    CompletionRunner,
    Kind,
    default_max_tokens,
)
from demigod.gateway.errors import APIError, install_error_handlers
from demigod.gateway.policy import RoutingPolicy, UnknownModelError
from demigod.gateway.request_context import RequestContextMiddleware
from demigod.mesh import Mesh, ServedModel
from demigod.observability.metrics import CONTENT_TYPE, Metrics
from demigod.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionFields,
    CompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
    TokenizeRequest,
    TokenizeResponse,
)

log = logging.getLogger(__name__)

# The synthetic prompt /healthz/deep sends through every model.
DEEP_PROBE_PROMPT = "The quick brown fox"
DEEP_PROBE_TOKENS = 4

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "invalid request (the error names the field)",
        404: "unknown model",
        503: "model queue full; retry after the Retry-After header",
    }.items()
}


def create_app(settings: Settings, models: list[ModelConfig]) -> FastAPI:
    """The gateway for `models`; they load at startup and close at shutdown."""
    metrics = Metrics()
    runner = CompletionRunner(metrics)
    state: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mesh = await Mesh.load(models, settings.engine, verbose=settings.log_level == "DEBUG")
        state["mesh"] = mesh
        state["policy"] = RoutingPolicy(mesh.models, settings.default_model)
        metrics.watch_queues(mesh.queue_depths, replica=f"{settings.host}:{settings.port}")
        log.info("mesh ready", extra={"models": sorted(mesh.models), "port": settings.port})
        try:
            yield
        finally:
            await mesh.close()

    app = FastAPI(
        title="Phoenix DemiGod",
        version=__version__,
        description="OpenAI-compatible inference mesh for attention-free language models.",
        lifespan=lifespan,
    )

    def record_refusal(request: Request, status: int) -> None:
        if request.url.path.startswith("/v1/") and request.method == "POST":
            served: ServedModel | None = getattr(request.state, "model", None)
            metrics.requests.labels(
                served.name if served else "none",
                served.version if served else "none",
                ANONYMOUS_TENANT,
                str(status),
            ).inc()

    install_error_handlers(app, on_error=record_refusal)

    app.add_middleware(RequestContextMiddleware)

    def mesh() -> Mesh:
        loaded = state.get("mesh")
        if not isinstance(loaded, Mesh):
            raise APIError(
                503, "models are still loading", type="server_error", headers={"Retry-After": "1"}
            )
        return loaded

    def resolve(request: Request, name: str) -> ServedModel:
        policy = state.get("policy")
        if not isinstance(policy, RoutingPolicy):
            raise APIError(
                503, "models are still loading", type="server_error", headers={"Retry-After": "1"}
            )
        try:
            served = policy.resolve(name)
        except UnknownModelError as exc:
            raise APIError(
                404, str(exc), type="not_found_error", param="model", code="model_not_found"
            ) from exc
        request.state.model = served
        return served

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
        served: ServedModel,
        tokens: list[int],
        stops: tuple[str, ...],
        echo: str = "",
    ) -> CompletionJob:
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
        served = resolve(request, body.model)
        try:
            prompt = served.chat_template.render(body.messages)
        except ChatTemplateError as exc:
            raise APIError(400, str(exc), param="messages") from exc
        tokens = await asyncio.to_thread(
            served.engine.tokenize, prompt, add_special=True, parse_special=True
        )
        return await runner.respond(
            job(request, body, "chat", served, tokens, served.chat_template.stops), request
        )

    @app.post(
        "/v1/completions", response_model=Completion, responses=ERROR_RESPONSES, tags=["openai"]
    )
    async def completions(
        body: CompletionRequest, request: Request
    ) -> JSONResponse | StreamingResponse:
        """Text completion, streamed (SSE) or not. `model` may be `auto`."""
        served = resolve(request, body.model)
        text = body.prompt_text()
        tokens = await asyncio.to_thread(served.engine.tokenize, text, add_special=True)
        return await runner.respond(
            job(request, body, "text", served, tokens, (), text if body.echo else ""), request
        )

    @app.get("/v1/models", response_model=ModelList, tags=["openai"])
    async def list_models() -> ModelList:
        """The served models. `auto` is accepted too and routes by the policy."""
        return ModelList(
            data=[
                ModelCard(
                    id=served.name,
                    created=served.created,
                    categories=served.categories,
                    context_length=served.engine.info.n_ctx,
                )
                for served in mesh().models.values()
            ]
        )

    @app.post(
        "/tokenize", response_model=TokenizeResponse, responses=ERROR_RESPONSES, tags=["extensions"]
    )
    async def tokenize(body: TokenizeRequest, request: Request) -> TokenizeResponse:
        """Token ids of `content` as `model` sees them (llama-server's /tokenize)."""
        served = resolve(request, body.model)
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
        ready = isinstance(loaded, Mesh) and loaded.ready()
        body = {
            "status": "ready" if ready else "not ready",
            "models": sorted(loaded.models) if isinstance(loaded, Mesh) else [],
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/healthz/deep", tags=["health"])
    async def healthz_deep() -> JSONResponse:
        """Runs a short greedy generation through every model and checks it produced tokens."""
        results: dict[str, str] = {}
        for served in mesh().models.values():
            results[served.name] = await _probe(served)
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


async def _probe(served: ServedModel) -> str:
    try:
        tokens = served.engine.tokenize(DEEP_PROBE_PROMPT)
        params = SamplingParams(max_tokens=DEEP_PROBE_TOKENS, temperature=0.0, ignore_eos=True)
        produced = 0
        async with served.engine.generate(
            GenerationRequest(tokens, params, "deep-probe")
        ) as events:
            async for event in events:
                produced = event.completion_tokens
    except Exception as exc:
        return f"error: {exc}"
    return (
        "ok"
        if produced == DEEP_PROBE_TOKENS
        else f"error: produced {produced} of {DEEP_PROBE_TOKENS} tokens"
    )
