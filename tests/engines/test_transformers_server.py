"""A Zamba2 (a family llama.cpp cannot run) served by `demigod serve` through the
transformers engine, used with the official `openai` SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import FamilyModels, Server, start_server, stop_server

pytestmark = pytest.mark.slow  # builds, converts and quantizes tiny models

TRANSFORMERS_START = 180.0


@pytest.fixture(scope="module")
def zamba_server(
    family_models: FamilyModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder: Path = family_models.hf("zamba2")
    # transformers' import and model load add tens of seconds on two busy cores
    running = start_server(
        [f"zamba={folder}"], tmp_path_factory.mktemp("zamba-server"), timeout=TRANSFORMERS_START
    )
    yield running
    stop_server(running)


def test_chat_completion_through_the_transformers_engine(zamba_server: Server) -> None:
    client = openai.OpenAI(base_url=f"{zamba_server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data if m.id != "auto"] == ["zamba"]
    reply = client.chat.completions.create(
        model="zamba",
        messages=[{"role": "user", "content": "What does the os module do?"}],
        max_tokens=8,
        temperature=0.0,
        extra_body={"ignore_eos": True},
    )
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 8
    streamed = client.chat.completions.create(
        model="zamba",
        messages=[{"role": "user", "content": "What does the os module do?"}],
        max_tokens=8,
        temperature=0.0,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert text == reply.choices[0].message.content


def test_health_reports_the_transformers_model_ready(zamba_server: Server) -> None:
    assert httpx.get(f"{zamba_server.url}/readyz").status_code == 200
    metrics = httpx.get(f"{zamba_server.url}/metrics").text
    assert 'model="zamba"' in metrics
