"""The lean path to remote models: forward the OpenAI request body, relay the bytes back.

`UpstreamProxy` is plain ASGI middleware in front of the FastAPI routes. For a POST to
/v1/chat/completions, /v1/completions or /tokenize it reads `model` from the JSON body
and asks the shared routing policy; when the policy picks a remote model it forwards the
request to one of that model's replicas (gateway.balancer) and streams the answer back
without validating or re-serialising it (the upstream validates). Anything else (an
embedded model, a body that is not JSON, an unknown model) goes on to the FastAPI routes,
with the routing decision left in `request.state.route_decision` so it is not made twice.

Resilience, per request: a failure before the first byte reaches the client (connect
error, reset, 5xx, timeout) is retried on another replica, up to `max_attempts` per
model; then the model's fallback chain is tried; then 503 with Retry-After. A stream that
breaks after its first byte ends with an SSE error event and `[DONE]`, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from demigod.gateway.admission import Admission, AdmissionPipeline, Endpoint
from demigod.gateway.balancer import Replica, choose, mark_used
from demigod.gateway.errors import APIError
from demigod.gateway.policy import RouteDecision, RoutingPolicy, UnknownModelError
from demigod.gateway.upstreams import RemoteModel, Upstreams
from demigod.gateway.versions import PIN_SEPARATOR
from demigod.observability.metrics import Metrics
from demigod.observability.tracing import Tracing, incoming_context
from demigod.security.authenticate import require_model

log = logging.getLogger(__name__)

ANONYMOUS_TENANT = "anonymous"
ROUTE_HEADER = "x-demigod-route"
REPLICA_HEADER = "x-demigod-replica"
SESSION_HEADER = b"x-session-id"
# Request headers passed on to the upstream as they came.
_FORWARDED = (b"x-request-id", b"x-session-id", b"traceparent", b"tracestate")
PROXIED_PATHS: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "text",
    "/tokenize": "tokenize",
}
_PROPAGATOR = TraceContextTextMapPropagator()


class _Retry(Exception):
    """This attempt failed before the client saw a byte; another replica may try."""

    def __init__(self, reason: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body


def routing_text(path: str, payload: dict[str, Any]) -> str:
    """What the classifier reads: chat messages' text, a completion's prompt, /tokenize's
    content. Malformed parts are skipped; the upstream reports them."""
    if path == "/v1/chat/completions":
        parts: list[str] = []
        for message in payload.get("messages") or ():
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(
                    part["text"]
                    for part in content
                    if isinstance(part, dict) and isinstance(part.get("text"), str)
                )
        return "\n".join(parts)
    text = payload.get("prompt" if path == "/v1/completions" else "content")
    if isinstance(text, list):
        return "\n".join(item for item in text if isinstance(item, str))
    return text if isinstance(text, str) else ""


def route_header(decision: RouteDecision[Any]) -> str:
    reason = decision.reason.encode("ascii", "replace").decode().replace('"', "'")
    return (
        f"category={decision.category or 'none'}; model={decision.model.name}; "
        f'version={decision.model.version}; reason="{reason}"'
    )


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


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then the real channel."""
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
        self,
        app: ASGIApp,
        *,
        upstreams: Upstreams,
        policy: Callable[[], RoutingPolicy[Any] | None],
        admission: AdmissionPipeline,
        metrics: Metrics,
        tracing: Tracing,
    ) -> None:
        self.app = app
        self.upstreams = upstreams
        self.policy = policy
        self.admission = admission
        self.metrics = metrics
        self.tracing = tracing
        self.settings = upstreams.settings
        self._traced = not isinstance(tracing.tracer, trace.NoOpTracer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in PROXIED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        policy = self.policy()
        try:
            payload = orjson.loads(body)
            requested = payload["model"] if isinstance(payload, dict) else None
        except (orjson.JSONDecodeError, KeyError):
            requested = None
        if policy is None or not isinstance(requested, str) or PIN_SEPARATOR in requested:
            await self.app(
                scope, _replay(body, receive), send
            )  # the routes answer: 503 loading, 400, pins
            return
        text = routing_text(scope["path"], payload)
        scope.setdefault("state", {})
        try:  # auth -> quota -> screen, then route: the order of the FastAPI routes
            admitted = await self.admission.admit(
                Request(scope, _replay(body, receive)),
                PROXIED_PATHS[scope["path"]],
                requested,
                text,
            )
        except APIError as refusal:
            await self._refuse(refusal, scope, receive, send, None)
            return
        try:
            decision: RouteDecision[Any] = policy.resolve(
                requested, text, admitted.principal.tenant
            )
        except Exception:  # unknown model, consensus group: the routes answer those
            await self.app(scope, _replay(body, receive), send)
            return
        if not isinstance(decision.model, RemoteModel):
            await self.app(
                scope, _replay(body, receive), send
            )  # embedded: the routes reuse the admission
            return
        try:
            require_model(admitted, decision.model.name)
        except APIError as refusal:
            await self._refuse(refusal, scope, receive, send, decision.model)
            return
        admitted.routed_model, admitted.routed_version = decision.model.name, decision.model.version
        await self._forward(scope, receive, send, payload, body, decision, policy, admitted)

    async def _refuse(
        self, refusal: APIError, scope: Scope, receive: Receive, send: Send, model: Any
    ) -> None:
        principal = scope["state"].get("principal")
        tenant = str(getattr(principal, "tenant", ANONYMOUS_TENANT))
        self.metrics.requests.labels(
            model.name if model else "none",
            model.version if model else "none",
            tenant,
            str(refusal.status),
        ).inc()
        await refusal.response()(scope, receive, send)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        payload: dict[str, Any],
        body: bytes,
        decision: RouteDecision[Any],
        policy: RoutingPolicy[Any],
        admitted: Admission,
    ) -> None:
        started = time.perf_counter()
        state = scope["state"]
        request_headers = dict(scope["headers"])
        user = payload.get("user")
        session = request_headers.get(SESSION_HEADER, b"").decode("latin-1") or (
            user if isinstance(user, str) else None
        )
        stream = payload.get("stream") is True
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
        chain: list[Any] = [decision.model]
        for name in decision.model.fallback:
            try:
                chain.append(policy.resolve(name).model)
            except UnknownModelError:
                log.error("unknown fallback model", extra={"fallback": name})
        status = 503
        last_error: _Retry | None = None
        try:
            for position, model in enumerate(chain):
                if position:
                    self.upstreams.fallbacks.labels(decision.model.name, model.name).inc()
                    decision = RouteDecision(
                        model,
                        decision.category,
                        f"{decision.reason}; fallback from {chain[0].name}: no replica could serve",
                        decision.confidence,
                    )
                if not isinstance(model, RemoteModel):  # the routes serve it, named
                    rewritten = orjson.dumps({**payload, "model": model.name})
                    await self.app(scope, _replay(rewritten, receive), send)
                    status = 0  # the embedded path records its own metrics
                    return
                data = body
                if model.served_name != payload.get("model"):
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
                f"no replica of model {chain[0].name!r} can serve now"
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
                model = decision.model
                self.metrics.requests.labels(model.name, model.version, tenant, str(status)).inc()
                self.metrics.request_duration.labels(model.name, tenant).observe(
                    time.perf_counter() - started
                )

    async def _attempt(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        model: RemoteModel,
        replica: Replica,
        data: bytes,
        headers: dict[str, str],
        stream: bool,
        decision: RouteDecision[Any],
        admitted: Admission,
    ) -> int:
        """Send one request to `replica` and relay its answer; returns the status sent.
        Raises _Retry when it failed before the client got a byte."""
        attempts = self.upstreams.attempts
        replica.outstanding += 1
        mark_used(replica)
        response: aiohttp.ClientResponse | None = None
        try:
            try:
                response = await self.upstreams.client.post(
                    replica.url + scope["path"], data, headers
                )
                first = b"" if stream else await response.read()
                if stream and response.status < 400:
                    first = await response.content.readany()
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
