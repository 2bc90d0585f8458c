"""One audit record per API request, written before the response leaves.

Plain ASGI: the request body is hashed as the application reads it, and the record is
appended (and fsynced, see store.py) when the application starts its response, the one
moment the status is known for every outcome: answered, refused by auth/quota/WAF,
invalid, failed. The response is held until the record is durable; if it cannot be
written, the client gets a 503 instead (fail closed: no unaudited answers).

What the record says comes from `scope["state"]`, which the request path fills in:
`request_id`, `principal` (who: subject, tenant, auth method), `admission` (each
admission step's verdict: auth, quota, screen), `waf_verdict` (the screen's rules and
scores), `model` and `route_decision` (what the router chose) and `audit_extra` (a dict
merged into the record's data) — all optional. For refusals the OpenAI error's `code`,
`type` and `param` are recorded too (never its message, which may quote the request).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from demigod.security.audit.records import format_time
from demigod.security.audit.store import AuditLog

log = logging.getLogger(__name__)

REQUEST_KIND = "request"
# Bodies are read to the end for the digest even when refused early; past this they are
# not (the proxy's request size limit should be far lower).
MAX_DIGEST_BYTES = 64 * 1024 * 1024
PRINCIPAL_FIELDS = ("subject", "tenant", "auth_method", "scopes")
# Error bodies are small; the first chunk of one is parsed for the error's code.
MAX_ERROR_BODY = 64 * 1024


# Probes and scrapes: machines ask them every few seconds, they carry no one's data, and
# a record each would bury the requests people make.
UNAUDITED_PATHS = frozenset({"/healthz", "/health", "/healthz/deep", "/readyz", "/metrics"})


def audited_path(method: str, path: str) -> bool:
    """Every request gets a record — reads (GET /v1/models, /props, ...), refusals and
    unknown paths included — except the probes and scrapes in UNAUDITED_PATHS."""
    return path not in UNAUDITED_PATHS


def plain(value: Any) -> Any:
    """A JSON-ready view of a verdict or principal (pydantic model, dataclass, dict...)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "model_dump"):
        return json.loads(json.dumps(value.model_dump(mode="json"), default=str))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def principal_fields(principal: Any) -> dict[str, Any]:
    """Who asked: the identity fields the audit keeps (never tokens or secrets)."""
    if principal is None:
        return {}
    source = principal if isinstance(principal, dict) else None
    found: dict[str, Any] = {}
    for name in PRINCIPAL_FIELDS:
        value = source.get(name) if source is not None else getattr(principal, name, None)
        if value is not None:
            found[name] = plain(value)
    return found


class AuditMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        audit_log: Callable[[], AuditLog | None],
        include_text: bool = False,
    ) -> None:
        self.app = app
        self._audit_log = audit_log
        self._include_text = include_text

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited_path(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        received = datetime.now(UTC)
        digest = hashlib.sha256()
        body = bytearray()
        read = {"bytes": 0, "complete": False}
        state = scope.setdefault("state", {})
        outcome = {"started": False, "suppressed": False}

        async def receive_hashed() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                digest.update(chunk)
                read["bytes"] += len(chunk)
                if self._include_text:
                    body.extend(chunk)
                read["complete"] = not message.get("more_body", False)
            return message

        async def drain() -> None:
            """Hash the rest of a body the application refused without reading."""
            while not read["complete"] and read["bytes"] < MAX_DIGEST_BYTES:
                message = await receive_hashed()
                if message["type"] != "http.request":
                    break

        async def record(status: int, error: dict[str, Any] | None = None) -> None:
            audit = self._audit_log()
            if audit is None:
                return
            await drain()
            data = self._data(scope, state, status, received, digest.hexdigest(), read, body)
            if error is not None:
                data["error"] = error
            await audit.append(REQUEST_KIND, data)

        held: list[Message] = []  # an error's response start, until its body is seen

        async def send_audited(message: Message) -> None:
            if outcome["suppressed"]:
                return
            if message["type"] == "http.response.start" and message["status"] < 400:
                await commit(message["status"], None, [message])
            elif message["type"] == "http.response.start":
                held.append(message)
            elif held and not outcome["started"]:
                error = _error_fields(message.get("body", b""))
                await commit(held[0]["status"], error, [held.pop(), message])
            else:
                await send(message)

        async def commit(status: int, error: dict[str, Any] | None, out: list[Message]) -> None:
            try:
                await record(status, error)
            except Exception:
                log.exception("audit record not written; answering 503")
                outcome["suppressed"] = True
                await _send_unavailable(send)
                return
            outcome["started"] = True
            for message in out:
                await send(message)

        try:
            await self.app(scope, receive_hashed, send_audited)
            if held and not outcome["started"]:  # an error response without a body
                await commit(held[0]["status"], None, [held.pop()])
        except Exception:
            if not outcome["started"] and not outcome["suppressed"]:
                try:
                    await record(500)
                except Exception:
                    log.exception("audit record of a failed request not written")
            raise

    def _data(
        self,
        scope: Scope,
        state: dict[str, Any],
        status: int,
        received: datetime,
        request_sha256: str,
        read: dict[str, Any],
        body: bytearray,
    ) -> dict[str, Any]:
        model = state.get("model")
        decision = state.get("route_decision")
        admission = state.get("admission")
        principal = principal_fields(
            state.get("principal") or getattr(admission, "principal", None)
        )
        data: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "subject": principal.pop("subject", None),
            "tenant": principal.pop("tenant", None),
            "principal": principal or None,
            "model": getattr(model, "name", None),
            "version": getattr(model, "version", None),
            "category": getattr(decision, "category", None),
            "route_reason": getattr(decision, "reason", None),
            "verdicts": plain(getattr(admission, "verdicts", None)) or {},
            "waf": plain(state.get("waf_verdict")),  # rule ids, scores, rule set version
            "request_sha256": request_sha256,
            "request_bytes": read["bytes"],
            "received": format_time(received),
            "decided": format_time(datetime.now(UTC)),
        }
        if not read["complete"]:
            data["request_sha256_partial"] = True
        if self._include_text:
            data["request_text"] = body.decode("utf-8", "replace")
        extra = state.get("audit_extra")
        if isinstance(extra, dict):
            data.update(plain(extra))
        return data


def _error_fields(body: bytes) -> dict[str, Any] | None:
    """`code`, `type` and `param` of an OpenAI error body (never its free-text message,
    which may quote the request)."""
    if len(body) > MAX_ERROR_BODY:
        return None
    try:
        error = json.loads(body)["error"]
        return {name: error.get(name) for name in ("type", "code", "param")}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


async def _send_unavailable(send: Send) -> None:
    payload = json.dumps(
        {
            "error": {
                "message": "the audit log is unavailable; the request was not served",
                "type": "server_error",
                "param": None,
                "code": "audit_unavailable",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"retry-after", b"5"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
