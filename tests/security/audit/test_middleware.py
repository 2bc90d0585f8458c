"""AuditMiddleware on a small app: what a record holds for answers, refusals and crashes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from demigod.api.errors import APIError, install_error_handlers
from demigod.api.principal import Principal
from demigod.gateway.request_context import RequestContextMiddleware
from demigod.security.audit.middleware import AuditMiddleware
from demigod.security.audit.signing import SigningKey
from demigod.security.audit.store import AuditLog


@dataclass
class FakeAdmission:
    principal: Principal
    verdicts: dict[str, str] = field(default_factory=dict)


def make_app(audit: AuditLog, include_text: bool = False) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, on_error=lambda request, status: None)

    @app.post("/v1/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        request.state.principal = Principal("svc-1", "acme", "api_key")
        return {"bytes": len(body)}

    @app.post("/v1/refuse")
    async def refuse(request: Request) -> None:
        # Refused before the body is read, as an auth step does.
        request.state.admission = FakeAdmission(
            Principal("anonymous", "anonymous", "none"), {"auth": "refused:expired"}
        )
        raise APIError(401, "token expired", type="authentication_error", code="expired")

    @app.post("/v1/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    app.add_middleware(AuditMiddleware, audit_log=lambda: audit, include_text=include_text)
    app.add_middleware(RequestContextMiddleware)
    return app


@pytest.fixture
def audit(tmp_path: Path, signing_key: SigningKey) -> Iterator[AuditLog]:
    log = AuditLog(tmp_path / "chain", key=signing_key).open()
    yield log
    log.close()


def last_record(audit: AuditLog) -> dict:  # type: ignore[type-arg]
    (segment,) = audit.directory.glob("records-*.jsonl")
    return json.loads(segment.read_text().splitlines()[-1])


def post(app: FastAPI, path: str, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(path, content=body)

    return asyncio.run(go())


def test_an_answer_is_recorded_with_who_and_the_body_digest(audit: AuditLog) -> None:
    body = b'{"prompt": "private words"}'
    reply = post(make_app(audit), "/v1/echo", body)
    assert reply.status_code == 200
    data = last_record(audit)["data"]
    assert data["status"] == 200 and data["request_id"] == reply.headers["x-request-id"]
    assert (data["subject"], data["tenant"]) == ("svc-1", "acme")
    assert data["principal"] == {"auth_method": "api_key", "scopes": []}
    assert data["request_sha256"] == hashlib.sha256(body).hexdigest()
    assert "private words" not in json.dumps(data)


def test_include_text_keeps_the_body(audit: AuditLog) -> None:
    post(make_app(audit, include_text=True), "/v1/echo", b'{"prompt": "kept"}')
    assert last_record(audit)["data"]["request_text"] == '{"prompt": "kept"}'


def test_a_refusal_records_its_reason_and_the_unread_body(audit: AuditLog) -> None:
    body = b"x" * 100_000
    reply = post(make_app(audit), "/v1/refuse", body)
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "expired"
    data = last_record(audit)["data"]
    assert data["status"] == 401
    assert data["error"] == {"type": "authentication_error", "code": "expired", "param": None}
    assert data["verdicts"] == {"auth": "refused:expired"}
    assert data["request_sha256"] == hashlib.sha256(body).hexdigest()
    assert data["request_bytes"] == len(body)


def test_a_crash_is_recorded_as_500(audit: AuditLog) -> None:
    reply = post(make_app(audit), "/v1/crash", b"{}")
    assert reply.status_code == 500
    assert last_record(audit)["data"]["status"] == 500


def test_no_audit_no_answer(tmp_path: Path, signing_key: SigningKey) -> None:
    closed = AuditLog(tmp_path / "closed", key=signing_key)  # never opened: writes fail
    reply = post(make_app(closed), "/v1/echo", b"{}")
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "audit_unavailable"
    assert "bytes" not in reply.text
