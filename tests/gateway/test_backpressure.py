"""A full queue answers 503 + Retry-After; a client that leaves stops its generation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.gateway.test_health_and_metrics import scrape

LONG = 7000  # tokens: seconds of decoding, so a disconnect lands mid-generation


@pytest.fixture(scope="module")
def small_queue_server(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    running = start_server(
        [f"tiny={tiny_model}"],
        tmp_path_factory.mktemp("small-queue"),
        # one slot and one waiting place: a burst of six must be refused in part
        config="engine:\n  slots: 1\n  queue_size: 1\n  n_ctx: 8192\n  retry_after_seconds: 2\n",
    )
    yield running
    stop_server(running)


def long_body(stream: bool = False) -> dict[str, object]:
    return {
        "model": "tiny",
        "prompt": "go",
        "max_tokens": LONG,
        "ignore_eos": True,
        "stream": stream,
    }


def test_full_queue_answers_503_with_retry_after(small_queue_server: Server) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=small_queue_server.url, timeout=120) as client:
            body = {**long_body(), "max_tokens": 600}
            return await asyncio.gather(
                *(client.post("/v1/completions", json=body) for _ in range(6))
            )

    replies = asyncio.run(burst())
    statuses = sorted(r.status_code for r in replies)
    assert 200 in statuses and 503 in statuses, statuses
    assert set(statuses) == {200, 503}
    refused = next(r for r in replies if r.status_code == 503)
    assert refused.headers["retry-after"] == "2"
    assert refused.json()["error"]["code"] == "queue_full"
    # nothing was lost: the admitted requests ran to the end
    assert all(
        r.json()["usage"]["completion_tokens"] == 600 for r in replies if r.status_code == 200
    )


def output_tokens(server: Server) -> float:
    return scrape(server).get(
        'demigod_tokens_total{model="tiny",tenant="anonymous",type="output"}', 0
    )


def disconnects(server: Server) -> float:
    key = 'demigod_requests_total{model="tiny",status="499",tenant="anonymous",version="local"}'
    return scrape(server).get(key, 0)


def wait_for_idle(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if scrape(server).get('demigod_inflight_requests{model="tiny"}', 0) == 0:
            return
        time.sleep(0.05)
    raise AssertionError("generation kept running after the client left")


def test_stream_disconnect_stops_generation(small_queue_server: Server) -> None:
    before_tokens, before_499 = output_tokens(small_queue_server), disconnects(small_queue_server)
    with httpx.stream(
        "POST", f"{small_queue_server.url}/v1/completions", json=long_body(True)
    ) as reply:
        lines = reply.iter_lines()
        for _ in range(5):
            next(lines)
    wait_for_idle(small_queue_server)
    assert disconnects(small_queue_server) - before_499 == 1
    assert output_tokens(small_queue_server) - before_tokens < LONG / 2


def test_non_stream_disconnect_stops_generation(small_queue_server: Server) -> None:
    before_tokens, before_499 = output_tokens(small_queue_server), disconnects(small_queue_server)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{small_queue_server.url}/v1/completions", json=long_body(), timeout=0.3)
    wait_for_idle(small_queue_server)
    assert disconnects(small_queue_server) - before_499 == 1
    assert output_tokens(small_queue_server) - before_tokens < LONG / 2
