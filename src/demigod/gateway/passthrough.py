"""The lean path to remote models: forward the OpenAI request body, relay the bytes back.

`UpstreamProxy` is plain ASGI middleware in front of the FastAPI routes. For a POST to
/v1/chat/completions, /v1/completions, /tokenize or /detokenize it reads the JSON body
(for a GET of /tokenizer_info, the `model` query parameter) and passes the front door
(gateway.front_door: admission and routing, the same step the routes take); when the
decision is a remote model it forwards the request to one of that model's replicas
(gateway.balancer) and streams the answer back without validating or re-serialising it
(the upstream validates). Anything else (an embedded model, a consensus, a body that is
not JSON) goes on to the routes, which read the decision already made. A tokenizer
request that names no model is for the default model, or the only one (as
lm-evaluation-harness' remote tokenizer sends them).

Resilience, per request: a failure before the first byte reaches the client (connect
error, reset, 5xx, timeout) is retried on another replica, up to `max_attempts` per
model; then the model's fallback chain is tried (not for a prompt of token ids, which
mean something to one vocabulary only); then 503 with Retry-After. A stream that breaks
after its first byte ends with an SSE error event and `[DONE]`, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs, urlencode

import aiohttp
import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from demigod.api.admission import Admission, Endpoint
from demigod.api.errors import APIError
from demigod.api.principal import ANONYMOUS_TENANT
from demigod.gateway.balancer import Replica, choose, mark_used
from demigod.gateway.front_door import ROUTE_HEADER, Ask, FrontDoor, Routed, Target, route_header
from demigod.gateway.services import started
from demigod.gateway.upstreams import RemoteModel, Upstreams
from demigod.observability.metrics import Metrics
from demigod.observability.tracing import Tracing, incoming_context
from demigod.protocol import token_prompts
from demigod.routing.policy import RouteDecision

log = logging.getLogger(__name__)

REPLICA_HEADER = "x-demigod-replica"
# Request headers passed on to the upstream as they came.
_FORWARDED = (b"x-request-id", b"x-session-id", b"traceparent", b"tracestate")
PROXIED_PATHS: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "text",
    "/tokenize": "tokenize",
    "/detokenize": "tokenize",
}
# GETs forwarded with the model in the query string (vLLM's; lm-eval's remote tokenizer).
PROXIED_READS: dict[str, Endpoint] = {"/tokenizer_info": "tokenize"}
_PROPAGATOR = TraceContextTextMapPropagator()


class _Retry(Exception):
    """This attempt failed before the client saw a byte; another replica may try."""

    def __init__(self, reason: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body


class _ReplicaLost(Exception):
    """The replica was found unreachable while this attempt waited for its first byte."""


async def _first_bytes(
    sending: Awaitable[aiohttp.ClientResponse], stream: bool, replica: Replica
) -> tuple[aiohttp.ClientResponse, bytes]:
    """The response and its first bytes (the whole body unless streamed). Raises
    _ReplicaLost as soon as the replica is marked down before they came, and what the
    request raises otherwise."""

    async def receive() -> tuple[aiohttp.ClientResponse, bytes]:
        response = await sending
        try:
            first = b"" if stream else await response.read()
            if stream and response.status < 400:
                first = await response.content.readany()
        except BaseException:
            response.release()
            raise
        return response, first

    answer = asyncio.ensure_future(receive())
    waiting: set[asyncio.Future[Any]] = {answer, replica.lost()}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if answer.done():
            return answer.result()
        raise _ReplicaLost(replica.url)
    finally:  # the replica was lost, or this request was cancelled: stop waiting on it
        if not answer.done():
            answer.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, TimeoutError):
                await answer


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes | None, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then the real channel (the
    channel itself when no body was read)."""
    if body is None:
        return receive
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _record_usage(admitted: Admission, body: bytes) -> None:
    """Token counts of a non-streamed answer, for quotas (streams: not counted here)."""
    try:
        usage = orjson.loads(body).get("usage") or {}
        admitted.record_usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        pass


class UpstreamProxy:
    def __init__(
        self, app: ASGIApp, *, upstreams: Upstreams, metrics: Metrics, tracing: Tracing
    ) -> None:
        self.app = app
        self.upstreams = upstreams
        self.metrics = metrics
        self.tracing = tracing
        self.settings = upstreams.settings
        self._traced = not isinstance(tracing.tracer, trace.NoOpTracer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in PROXIED_READS:
            query = parse_qs(scope["query_string"].decode("latin-1"))
            payload: object = {"model": query["model"][-1]} if "model" in query else {}
            body = None
        elif method == "POST" and path in PROXIED_PATHS:
            body = await _read_body(receive)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                payload = None
        else:
            await self.app(scope, receive, send)
            return
        endpoint = PROXIED_READS.get(path) or PROXIED_PATHS[path]
        services = started(scope["app"])
        if (
            services is not None
            and endpoint == "tokenize"
            and isinstance(payload, dict)
            and "model" not in payload
            and (implicit := services.front.implicit_model())
        ):
            payload = {**payload, "model": implicit}
            if body is not None:  # the upstream is told the model too
                body = orjson.dumps(payload)
        if services is None or not isinstance(payload, dict) or "model" not in payload:
            # the routes answer: 503 while loading, 400 naming what is wrong with the body
            await self.app(scope, _replay(body, receive), send)
            return
        scope.setdefault("state", {})
        request = Request(scope, _replay(body, receive))
        try:
            routed = await services.front.admit(request, Ask.of(endpoint, request, payload))
        except APIError as refusal:
            await self._refuse(refusal, scope, receive, send)
            return
        decision = routed.decision
        if not isinstance(decision, RouteDecision) or not isinstance(decision.model, RemoteModel):
            # an embedded model or a consensus: the routes answer, reading `routed`
            await self.app(scope, _replay(body, receive), send)
            return
        await self._forward(scope, receive, send, payload, body, routed, services.front)

    async def _refuse(self, refusal: APIError, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["state"]
        principal, model = state.get("principal"), state.get("model")
        self.metrics.requests.labels(
            model.name if model else "none",
            model.version if model else "none",
            getattr(principal, "tenant", ANONYMOUS_TENANT),
            str(refusal.status),
        ).inc()
        await refusal.response()(scope, receive, send)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        payload: dict[str, Any],
        body: bytes | None,
        routed: Routed,
        front: FrontDoor,
    ) -> None:
        """Forward to a replica of the routed remote model (`body` None: a GET, its model
        in the query string), retrying and falling back as the module says."""
        began = time.perf_counter()
        state = scope["state"]
        request_headers = dict(scope["headers"])
        first = routed.decision
        if not isinstance(first, RouteDecision) or not isinstance(first.model, RemoteModel):
            raise TypeError("only a remote model is forwarded")
        decision: RouteDecision[Target] = first
        # Token ids, and tokenizer answers, mean something to one vocabulary only.
        single = routed.ask.endpoint == "tokenize" or token_prompts(payload.get("prompt"))
        fallback = [] if single else first.model.fallback
        session = routed.ask.session
        stream = payload.get("stream") is True
        admitted = routed.admission
        tenant = admitted.principal.tenant
        headers = {
            key.decode(): value.decode("latin-1")
            for key, value in request_headers.items()
            if key in _FORWARDED
        }
        headers["content-type"] = "application/json"
        headers["x-request-id"] = state.get("request_id", "")
        span = None
        if self._traced:
            span = self.tracing.tracer.start_span(
                f"proxy {decision.model.name}",
                context=incoming_context(headers),
                kind=SpanKind.CLIENT,
            )
            _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
        request = Request(scope, receive)
        status = 503
        last_error: _Retry | None = None
        try:
            for name in [first.model.name, *fallback]:
                if name != first.model.name:
                    try:
                        decision = self._fall_back(request, routed, front, first.model.name, name)
                    except APIError:
                        continue
                model = decision.model
                if not isinstance(model, RemoteModel):  # the routes serve it, named
                    rewritten = orjson.dumps({**payload, "model": model.name})
                    await self.app(scope, _replay(rewritten, receive), send)
                    status = 0  # the embedded path records its own metrics
                    return
                data, target = body, scope["path"]
                if body is None:
                    target += "?" + urlencode({"model": model.served_name})
                elif model.served_name != payload.get("model"):
                    data = orjson.dumps({**payload, "model": model.served_name})
                if model.api_key:
                    headers["authorization"] = f"Bearer {model.api_key}"
                else:
                    headers.pop("authorization", None)
                tried: list[Replica] = []
                for _ in range(self.settings.max_attempts):
                    now = time.monotonic()
                    replica = choose(model.replicas, now, session, tried)
                    if replica is None:
                        break
                    if tried:
                        self.upstreams.retries.labels(model.name).inc()
                    tried.append(replica)
                    if not replica.breaker.acquire(now):
                        continue
                    try:
                        status = await self._attempt(
                            scope,
                            receive,
                            send,
                            model,
                            replica,
                            target,
                            data,
                            headers,
                            stream,
                            decision,
                            admitted,
                        )
                        return
                    except _Retry as failure:
                        last_error = failure
            if last_error is not None and last_error.status is not None:
                status = last_error.status
                retry_after = str(self.settings.retry_after_seconds).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"retry-after", retry_after),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": last_error.body})
                return
            error = APIError(
                503,
                f"no replica of model {first.model.name!r} can serve now"
                + (f" (last failure: {last_error.reason})" if last_error else ""),
                type="server_error",
                code="no_healthy_upstream",
                headers={"Retry-After": str(self.settings.retry_after_seconds)},
            )
            await error.response()(scope, receive, send)
        finally:
            if span is not None:
                span.set_attribute("http.response.status_code", status)
                span.end()
            if status:
                model, elapsed = decision.model, time.perf_counter() - began
                self.metrics.requests.labels(model.name, model.version, tenant, str(status)).inc()
                self.metrics.request_duration.labels(model.name, tenant).observe(elapsed)
                # per version, as embedded: what the canary controller compares
                self.metrics.version_request_duration.labels(model.name, model.version).observe(
                    elapsed
                )

    def _fall_back(
        self, request: Request, routed: Routed, front: FrontDoor, first: str, name: str
    ) -> RouteDecision[Target]:
        """The decision naming model `first`'s fallback `name`, counted. Raises APIError
        for a fallback that is not served or that the principal may not use (logged)."""
        try:
            decision = front.fall_back(request, routed, name)
        except APIError as refusal:
            log.error(
                "fallback model refused",
                extra={"fallback": name, "error": refusal.body.error.message},
            )
            raise
        self.upstreams.fallbacks.labels(first, name).inc()
        return decision

    async def _attempt(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        model: RemoteModel,
        replica: Replica,
        target: str,
        data: bytes | None,
        headers: dict[str, str],
        stream: bool,
        decision: RouteDecision[Target],
        admitted: Admission,
    ) -> int:
        """Send one request to `replica` (POST `data` to `target`, a path; GET it when
        `data` is None) and relay its answer; returns the status sent. Raises _Retry when
        it failed before the client got a byte."""
        attempts = self.upstreams.attempts
        replica.outstanding += 1
        mark_used(replica)
        response: aiohttp.ClientResponse | None = None
        try:
            try:
                client, url = self.upstreams.client, replica.url + target
                response, first = await _first_bytes(
                    client.get(url, headers) if data is None else client.post(url, data, headers),
                    stream,
                    replica,
                )
            except _ReplicaLost as exc:
                attempts.labels(model.name, replica.url, "replica_down").inc()
                raise _Retry("the replica went down before answering") from exc
            except aiohttp.ClientConnectorError as exc:
                attempts.labels(model.name, replica.url, "connect_error").inc()
                self.upstreams.mark_down(model, replica, str(exc))
                replica.breaker.release()
                raise _Retry(f"connect error: {exc}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome = "timeout" if isinstance(exc, TimeoutError) else "broken"
                attempts.labels(model.name, replica.url, outcome).inc()
                replica.breaker.record_failure(time.monotonic())
                raise _Retry(f"{outcome}: {exc!r}") from exc
            status = response.status
            if status >= 500:
                attempts.labels(model.name, replica.url, "http_5xx").inc()
                if status != 503:  # 503 is a busy queue, not a broken replica
                    replica.breaker.record_failure(time.monotonic())
                else:
                    replica.breaker.release()
                body = first if not stream else first + await response.read()
                raise _Retry(f"HTTP {status}", status, body)
            attempts.labels(model.name, replica.url, "ok" if status < 400 else "http_4xx").inc()
            replica.breaker.record_success()
            start: Message = {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", response.headers.get("content-type", "").encode()),
                    (ROUTE_HEADER.encode(), route_header(decision).encode()),
                    (REPLICA_HEADER.encode(), replica.url.encode()),
                ],
            }
            if not stream or status >= 400:
                if stream:
                    first += await response.read()
                start["headers"].append((b"content-length", str(len(first)).encode()))
                if status < 300 and not stream:
                    _record_usage(admitted, first)
                await send(start)
                await send({"type": "http.response.body", "body": first})
                return status
            await send(start)
            return await self._relay(send, receive, response, first, model, replica)
        finally:
            replica.outstanding -= 1
            if response is not None:
                response.release()

    async def _relay(
        self,
        send: Send,
        receive: Receive,
        response: aiohttp.ClientResponse,
        first: bytes,
        model: RemoteModel,
        replica: Replica,
    ) -> int:
        """Stream the rest of an SSE answer; stop when the client leaves."""

        async def pump() -> int:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            try:
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (aiohttp.ClientError, TimeoutError) as exc:
                replica.breaker.record_failure(time.monotonic())
                self.upstreams.attempts.labels(model.name, replica.url, "broken").inc()
                log.warning(
                    "upstream stream broke",
                    extra={"model": model.name, "replica": replica.url, "error": repr(exc)},
                )
                error = {
                    "error": {
                        "message": f"the upstream replica failed mid-stream: {exc!r}",
                        "type": "server_error",
                        "param": None,
                        "code": "upstream_failed",
                    }
                }
                tail = b"data: " + orjson.dumps(error) + b"\n\ndata: [DONE]\n\n"
                await send({"type": "http.response.body", "body": tail})
                return 502
            await send({"type": "http.response.body", "body": b""})
            return 200

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.ensure_future(pump())
        watching = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
        if pumping.done():
            if pumping.exception() is None:
                return pumping.result()
            replica.breaker.release()
            return 499  # sending failed: the client went away
        pumping.cancel()
        replica.breaker.release()
        return 499
