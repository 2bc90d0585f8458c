"""Bad input gets a 4xx OpenAI error object naming the field, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from demigod.config import Settings
from demigod.gateway.app import create_app
from tests.conftest import Server

CHAT = "/v1/chat/completions"
TEXT = "/v1/completions"
HELLO = [{"role": "user", "content": "hello"}]
TEXT_PART = {"type": "text", "text": "hello"}
IMAGE_PART = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
TOOL = {"type": "function", "function": {"name": "f"}}


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        (CHAT, {"model": "tiny", "messages": "hello"}, 400, "messages"),
        (CHAT, {"model": "tiny", "messages": []}, 400, "messages"),
        (CHAT, {"model": "tiny"}, 400, "messages"),
        (
            CHAT,
            {"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]},
            400,
            "messages[0].role",
        ),
        (CHAT, {"model": 5, "messages": HELLO}, 400, "model"),
        (CHAT, {"model": "tiny", "messages": HELLO, "max_tokens": -3}, 400, "max_tokens"),
        (CHAT, {"model": "tiny", "messages": HELLO, "max_tokens": "ten"}, 400, "max_tokens"),
        (CHAT, {"model": "tiny", "messages": HELLO, "temperature": 3}, 400, "temperature"),
        (CHAT, {"model": "tiny", "messages": HELLO, "top_p": 0}, 400, "top_p"),
        (CHAT, {"model": "tiny", "messages": HELLO, "stream": "yes"}, 400, "stream"),
        (
            CHAT,
            {"model": "tiny", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]},
            400,
            "stop",
        ),
        (CHAT, {"model": "tiny", "messages": HELLO, "n": 9}, 400, "n"),
        # fields the mesh does not implement, and typos, are refused by name
        (
            CHAT,
            {"model": "tiny", "messages": HELLO, "frequency_penalty": 0.5},
            400,
            "frequency_penalty",
        ),
        (CHAT, {"model": "tiny", "messages": HELLO, "max_token": 5}, 400, "max_token"),
        (TEXT, {"model": "tiny", "prompt": "hi", "suffix": "!"}, 400, "suffix"),
        (TEXT, {"model": "tiny", "prompt": "hi", "logit_bias": {"1": 5}}, 400, "logit_bias"),
        (CHAT, {"model": "nope", "messages": HELLO}, 404, "model"),
        # unknown keys inside the body are refused by their path, not ignored
        (
            CHAT,
            {"model": "tiny", "messages": [*HELLO, {"role": "user", "content": "x", "foo": 1}]},
            400,
            "messages[1].foo",
        ),
        (
            CHAT,
            {"model": "tiny", "messages": [{"role": "user", "content": [TEXT_PART | {"x": 1}]}]},
            400,
            "messages[0].content[0].x",
        ),
        (
            CHAT,
            {"model": "tiny", "messages": [{"role": "user", "content": [TEXT_PART, IMAGE_PART]}]},
            400,
            "messages[0].content[1].type",
        ),
        (
            CHAT,
            {"model": "tiny", "messages": [{"role": "assistant", "audio": {"id": "a1"}}]},
            400,
            "messages[0].audio",
        ),
        (
            CHAT,
            {"model": "tiny", "messages": [{"role": "user", "content": "x", "refusal": "no"}]},
            400,
            "messages[0].refusal",
        ),
        (CHAT, {"model": "tiny", "messages": HELLO, "tools": [TOOL | {"x": 1}]}, 400, "tools[0].x"),
        (
            CHAT,
            {
                "model": "tiny",
                "messages": HELLO,
                "tools": [{"type": "function", "function": {"name": "f", "y": 1}}],
            },
            400,
            "tools[0].function.y",
        ),
        (
            CHAT,
            {
                "model": "tiny",
                "messages": HELLO,
                "tools": [TOOL],
                "tool_choice": {"type": "function", "function": {"name": "f", "z": 1}},
            },
            400,
            "tool_choice.function.z",
        ),
        (
            CHAT,
            {
                "model": "tiny",
                "messages": HELLO,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "n", "schema": {}, "strictly": True},
                },
            },
            400,
            "response_format.json_schema.strictly",
        ),
        (
            TEXT,
            {"model": "tiny", "prompt": "hi", "stream": True, "stream_options": {"usage": True}},
            400,
            "stream_options.usage",
        ),
        # an extension field that would not be honoured: consensus options, one model
        (CHAT, {"model": "tiny", "messages": HELLO, "consensus": {"quorum": 1}}, 400, "consensus"),
        (TEXT, {"model": "tiny"}, 400, "prompt"),
        (TEXT, {"model": "tiny", "prompt": ["a", "b"]}, 400, "prompt"),
        (TEXT, {"model": "tiny", "prompt": ""}, 400, "prompt"),
        (TEXT, {"model": "tiny", "prompt": "hi", "max_tokens": 0}, 400, "max_tokens"),
        (TEXT, {"model": "tiny", "prompt": "hi", "seed": -1}, 400, "seed"),
        (TEXT, {"model": "tiny", "prompt": "hi", "max_tokens": 100_000}, 400, "max_tokens"),
        (TEXT, {"model": "tiny", "prompt": "word " * 3000, "max_tokens": 1}, 400, "messages"),
    ],
)
def test_bad_request_names_the_field(
    server: Server, path: str, body: dict[str, Any], status: int, param: str
) -> None:
    reply = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["param"] == param
    assert error["message"]
    assert error["type"] in {"invalid_request_error", "not_found_error"}


def test_oversized_prompt_reports_context_length(server: Server) -> None:
    body = {"model": "tiny", "prompt": "word " * 3000, "max_tokens": 1}
    error = httpx.post(f"{server.url}{TEXT}", json=body, timeout=30).json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "2048" in error["message"]


@pytest.mark.parametrize("payload", [b"{bad json", b"", b"[]", b"null", b"\xff\xfe"])
def test_malformed_body(server: Server, payload: bytes) -> None:
    reply = httpx.post(
        f"{server.url}{CHAT}", content=payload, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_unknown_route_is_an_openai_error(server: Server) -> None:
    reply = httpx.get(f"{server.url}/v1/nothing-here")
    assert reply.status_code == 404
    assert reply.json()["error"]["type"] == "not_found_error"


# The app's own OpenAPI document; models are not needed to produce it.
schema = schemathesis.openapi.from_dict(create_app(Settings(), []).openapi())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: schemathesis.Case, server: Server) -> None:
    # Keep generations short: the point is the input handling, not decoding speed.
    if isinstance(case.body, dict) and isinstance(case.body.get("max_tokens"), int):
        case.body["max_tokens"] = min(case.body["max_tokens"], 8)
    response = case.call(base_url=server.url, timeout=60)
    assert response.status_code < 500, response.text
