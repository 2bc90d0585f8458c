"""The HTTP routes: short functions that hand a request to its serving class
(gateway.serving, reached through the `Services` built at startup) and turn the typed
answer into HTTP. Errors are raised as APIError and answered by api.errors' handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from demigod.api.errors import APIError
from demigod.gateway.front_door import ROUTE_HEADER
from demigod.gateway.runner import ClientGone, CompletionStream
from demigod.gateway.services import Services, services
from demigod.gateway.serving.answer import Answer
from demigod.mesh_state import ADMIN_STATE_PATH, MeshState
from demigod.observability.metrics import CONTENT_TYPE
from demigod.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    DetokenizeRequest,
    DetokenizeResponse,
    ErrorResponse,
    LlamaServerHealth,
    ModelCard,
    ModelList,
    ModelProps,
    RouteResponse,
    SlotState,
    TokenizeRequest,
    TokenizeResponse,
    TokenizerInfo,
)

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
# The status a non-streamed answer gets when its client went away first (nginx's).
CLIENT_CLOSED_REQUEST = 499

Serving = Annotated[Services, Depends(services)]
router = APIRouter()


def http_response(answer: Answer) -> Response:
    """JSON, or SSE for a stream; `x-demigod-route` names the route either way."""
    headers = {ROUTE_HEADER: answer.route}
    body = answer.body
    if isinstance(body, CompletionStream):
        headers["Cache-Control"] = "no-cache"
        return StreamingResponse(body.lines, media_type="text/event-stream", headers=headers)
    if isinstance(body, ClientGone):
        return JSONResponse({}, status_code=CLIENT_CLOSED_REQUEST, headers=headers)
    return JSONResponse(body.model_dump(), headers=headers)


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses=ERROR_RESPONSES,
    tags=["openai"],
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, serving: Serving
) -> Response:
    """Chat completion, streamed (SSE) or not. `model` may be `auto`."""
    return http_response(await serving.chat.create(request, body))


@router.post(
    "/v1/completions", response_model=Completion, responses=ERROR_RESPONSES, tags=["openai"]
)
async def completions(body: CompletionRequest, request: Request, serving: Serving) -> Response:
    """Text completion, streamed (SSE) or not. `model` may be `auto`."""
    return http_response(await serving.completions.create(request, body))


@router.post(
    "/v1/route", response_model=RouteResponse, responses=ERROR_RESPONSES, tags=["extensions"]
)
async def route(body: ChatCompletionRequest, request: Request, serving: Serving) -> RouteResponse:
    """The routing decision a chat request would get, without generating."""
    return await serving.route.decide(request)


@router.get("/v1/models", response_model=ModelList, tags=["openai"])
async def list_models(request: Request, serving: Serving) -> ModelList:
    """The served models the caller may use. `auto` is accepted too and routes by the
    policy."""
    return await serving.models.list_models(request)


@router.get(
    "/v1/models/{model_id:path}",
    response_model=ModelCard,
    responses=ERROR_RESPONSES,
    tags=["openai"],
)
async def retrieve_model(model_id: str, request: Request, serving: Serving) -> ModelCard:
    """One served model, as /v1/models lists it (404 when the caller cannot see it)."""
    return await serving.models.retrieve(request, model_id)


@router.post(
    "/tokenize", response_model=TokenizeResponse, responses=ERROR_RESPONSES, tags=["extensions"]
)
async def tokenize(body: TokenizeRequest, request: Request, serving: Serving) -> TokenizeResponse:
    """Token ids of `content` as `model` sees them (llama-server's /tokenize)."""
    return await serving.tokenize.tokenize(request, body)


@router.post(
    "/detokenize",
    response_model=DetokenizeResponse,
    responses=ERROR_RESPONSES,
    tags=["extensions"],
)
async def detokenize(
    body: DetokenizeRequest, request: Request, serving: Serving
) -> DetokenizeResponse:
    """The text of `tokens` as `model` reads them (llama-server's and vLLM's /detokenize)."""
    return await serving.tokenize.detokenize(request, body)


@router.get(
    "/tokenizer_info", response_model=TokenizerInfo, responses=ERROR_RESPONSES, tags=["extensions"]
)
async def tokenizer_info(
    request: Request, serving: Serving, model: str | None = None
) -> TokenizerInfo:
    """The model's special tokens, chat template and context length (vLLM's)."""
    return await serving.tokenize.info(request, model)


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """Light probe: the process answers."""
    return {"status": "ok"}


@router.get(
    "/health", response_model=LlamaServerHealth, responses=ERROR_RESPONSES, tags=["llama-server"]
)
async def llama_server_health(serving: Serving) -> LlamaServerHealth:
    """llama-server's probe: `{"status": "ok"}` once every model is loaded and its engine
    alive (as /readyz), else 503."""
    if serving.health.readiness().status != "ready":
        raise APIError(
            503,
            "not ready: a model is loading or its engine is down (see /readyz)",
            type="unavailable_error",
            headers={"Retry-After": "1"},
        )
    return LlamaServerHealth()


@router.get("/props", response_model=ModelProps, responses=ERROR_RESPONSES, tags=["llama-server"])
async def props(request: Request, serving: Serving, model: str | None = None) -> ModelProps:
    """llama-server's /props for one served model (`model`: optional with one model or a
    default_model): context, slots, chat template, special tokens. Read-only."""
    return await serving.props.props(request, model)


@router.get(
    "/slots", response_model=list[SlotState], responses=ERROR_RESPONSES, tags=["llama-server"]
)
async def slots(request: Request, serving: Serving, model: str | None = None) -> list[SlotState]:
    """llama-server's /slots, read-only: each decode slot of `model` and whether it holds
    a sequence now."""
    return await serving.props.slots(request, model)


@router.get("/readyz", tags=["health"])
async def readyz(serving: Serving) -> JSONResponse:
    """Ready when every model is loaded and its engine is healthy."""
    readiness = serving.health.readiness()
    return JSONResponse(
        readiness.model_dump(), status_code=200 if readiness.status == "ready" else 503
    )


@router.get("/healthz/deep", tags=["health"])
async def healthz_deep(serving: Serving) -> JSONResponse:
    """Runs a short greedy generation through every model and checks it produced tokens,
    then the Hemlock `probe: true` cases (lifecycle.hemlock_suite) and their checks."""
    health = await serving.health.deep()
    return JSONResponse(health.model_dump(), status_code=200 if health.status == "ok" else 503)


@router.get("/metrics", tags=["health"])
async def metrics(serving: Serving) -> Response:
    """Prometheus text format."""
    return Response(serving.health.metrics(), media_type=CONTENT_TYPE)


@router.get(
    ADMIN_STATE_PATH,
    response_model=MeshState,
    responses={status: ERROR_RESPONSES[status] for status in (401, 403)},
    tags=["admin"],
)
async def admin_state(request: Request, serving: Serving) -> MeshState:
    """What this process serves (versions, sha256, canary weights), its upstream replicas
    and its configuration's fingerprint, for `demigod ops drift`. Tenants in
    security.admin_tenants only."""
    return await serving.admin.state(request)
