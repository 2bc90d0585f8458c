"""The gateway in front of fake OpenAI upstreams: retries, breaker, fallback, 503,
session affinity, header propagation. The gateway is the real `demigod gateway` process;
the upstreams are small Starlette apps on free ports that echo what they received."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from demigod.processes import free_port, wait_until_ready


@dataclass
class FakeUpstream:
    url: str
    status: int = 200
    requests: int = 0
    delay: float = 0.0
    frozen: bool = False  # accepts connections, answers nothing (a partitioned host)


async def _while_frozen(upstream: FakeUpstream) -> None:
    while upstream.frozen:
        await asyncio.sleep(0.05)


def fake_app(upstream: FakeUpstream) -> Starlette:
    async def chat(request: Request) -> JSONResponse | StreamingResponse:
        upstream.requests += 1
        body = await request.json()
        await asyncio.sleep(upstream.delay)
        await _while_frozen(upstream)
        if upstream.status != 200:
            return JSONResponse({"error": {"message": "broken"}}, status_code=upstream.status)
        if body.get("stream"):

            async def events() -> Iterator[bytes]:  # type: ignore[misc]
                yield b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse(
            {
                "object": "chat.completion",
                "replica": upstream.url,
                "model": body["model"],
                "headers": dict(request.headers),
            }
        )

    async def readyz(request: Request) -> JSONResponse:
        await _while_frozen(upstream)
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/readyz", readyz),
        ]
    )


def serve_in_thread(upstream: FakeUpstream, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(fake_app(upstream), port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server


def start_gateway(
    tmp: Path, *args: str, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """A `demigod gateway` on a free port with `args`, auth off, its data in `tmp`; ready."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "demigod", "gateway", "--port", str(port), *args],
        stdout=(tmp / "gateway.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "DEMIGOD_SECURITY__AUTH": "off", "DEMIGOD_DATA_DIR": str(tmp)},
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{url}/readyz", timeout=timeout)
    return process, url


@dataclass
class Setup:
    gateway: str
    upstreams: dict[str, FakeUpstream]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("upstreams")
    names = ["broken", "ok", "pair-a", "pair-b", "slow"]
    ports = {name: free_port() for name in names}
    upstreams = {
        name: FakeUpstream(
            f"http://127.0.0.1:{port}",
            status=500 if name == "broken" else 200,
            delay=30.0 if name == "slow" else 0.0,
        )
        for name, port in ports.items()
    }
    servers = [serve_in_thread(upstreams[name], ports[name]) for name in names]
    dead = f"http://127.0.0.1:{free_port()}"
    u = {name: upstream.url for name, upstream in upstreams.items()}
    config = tmp / "mesh.yaml"
    config.write_text(
        f"""
upstreams:
  - name: flaky
    urls: [{u["broken"]}, {u["ok"]}]
    served_name: upstream-flaky
  - name: gone
    urls: [{dead}]
    fallback: [flaky]
  - name: nothing
    urls: [{dead}]
  - name: pair
    urls: [{u["pair-a"]}, {u["pair-b"]}]
  - name: sluggish
    urls: [{u["slow"]}]
observability:  # spans are made (the collector is absent: exports fail quietly)
  otlp_endpoint: http://127.0.0.1:9/v1/traces
gateway:
  breaker_failures: 2
  breaker_open_seconds: 60
  health_interval_seconds: 0.5
  request_timeout_seconds: 2
"""
    )
    process, gateway = start_gateway(tmp, "--config", str(config))
    yield Setup(gateway, upstreams)
    process.terminate()
    process.wait(timeout=10)
    for server in servers:
        server.should_exit = True


def chat(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}


def test_a_5xx_is_retried_on_another_replica_and_opens_the_breaker(setup: Setup) -> None:
    broken = setup.upstreams["broken"]
    for _ in range(6):
        reply = httpx.post(f"{setup.gateway}/v1/chat/completions", json=chat("flaky"))
        assert reply.status_code == 200, reply.text
        assert reply.json()["replica"] == setup.upstreams["ok"].url
        assert reply.json()["model"] == "upstream-flaky"  # served_name is what goes upstream
    assert broken.requests == 2  # two failures opened its breaker; no more traffic there
    metrics = httpx.get(f"{setup.gateway}/metrics").text
    assert f'demigod_upstream_breaker_state{{model="flaky",replica="{broken.url}"}} 2.0' in metrics


def test_no_replica_up_falls_back_to_the_next_model(setup: Setup) -> None:
    reply = httpx.post(f"{setup.gateway}/v1/chat/completions", json=chat("gone"))
    assert reply.status_code == 200, reply.text
    assert "model=flaky" in reply.headers["x-demigod-route"]
    assert "fallback from gone" in reply.headers["x-demigod-route"]


def test_nothing_can_serve_is_503_with_retry_after(setup: Setup) -> None:
    reply = httpx.post(f"{setup.gateway}/v1/chat/completions", json=chat("nothing"))
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "1"
    assert reply.json()["error"]["code"] == "no_healthy_upstream"
    metrics = httpx.get(f"{setup.gateway}/metrics").text
    assert 'demigod_upstream_up{model="nothing"' in metrics
    assert 'demigod_requests_total{model="nothing",status="503"' in metrics.replace(
        'tenant="anonymous",', ""
    ).replace('version="remote",', "")


def test_a_request_that_outlives_its_timeout_is_cut_off(setup: Setup) -> None:
    started = time.monotonic()
    reply = httpx.post(f"{setup.gateway}/v1/chat/completions", json=chat("sluggish"), timeout=20)
    assert time.monotonic() - started < 10
    assert reply.status_code == 503
    assert "timeout" in reply.json()["error"]["message"]


def test_a_session_sticks_to_one_replica_and_sessions_spread(setup: Setup) -> None:
    url = f"{setup.gateway}/v1/chat/completions"
    by_header = {
        httpx.post(url, json=chat("pair"), headers={"x-session-id": "s-1"}).json()["replica"]
        for _ in range(8)
    }
    by_user = {httpx.post(url, json=chat("pair", user="alice")).json()["replica"] for _ in range(8)}
    assert len(by_header) == 1 and len(by_user) == 1
    spread = {
        httpx.post(url, json=chat("pair", user=f"user-{i}")).json()["replica"] for i in range(20)
    }
    assert spread == {setup.upstreams["pair-a"].url, setup.upstreams["pair-b"].url}


def test_trace_context_and_request_id_reach_the_upstream(setup: Setup) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    reply = httpx.post(
        f"{setup.gateway}/v1/chat/completions",
        json=chat("pair"),
        headers={"traceparent": traceparent, "x-request-id": "req-42"},
    )
    seen = reply.json()["headers"]
    _, trace_id, parent_span, _ = seen["traceparent"].split("-")
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"  # the client's trace continues
    assert parent_span != "b7ad6b7169203331"  # ...under the gateway's own CLIENT span
    assert seen["x-request-id"] == "req-42"
    assert reply.headers["x-request-id"] == "req-42"
    assert "authorization" not in seen  # the client's credentials stay at the gateway


def test_streams_pass_through(setup: Setup) -> None:
    with httpx.stream(
        "POST", f"{setup.gateway}/v1/chat/completions", json=chat("pair", stream=True)
    ) as reply:
        lines = [line for line in reply.iter_lines() if line]
    assert lines == ['data: {"choices":[{"delta":{"content":"hi"}}]}', "data: [DONE]"]


def test_models_lists_upstreams_and_unknown_models_are_404(setup: Setup) -> None:
    names = {card["id"] for card in httpx.get(f"{setup.gateway}/v1/models").json()["data"]}
    assert names == {"flaky", "gone", "nothing", "pair", "sluggish"}
    reply = httpx.post(f"{setup.gateway}/v1/chat/completions", json=chat("missing"))
    assert reply.status_code == 404
    assert reply.json()["error"]["param"] == "model"


def test_gateway_without_upstreams_is_a_clear_cli_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "demigod", "gateway"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no upstreams" in done.stderr


def test_two_gateway_processes_share_the_port(setup: Setup, tmp_path: Path) -> None:
    """`--workers 2`: both processes get the --upstream flags and each its own audit chain."""
    process, gateway = start_gateway(
        tmp_path, "--workers", "2", "--upstream", f"pair={setup.upstreams['pair-a'].url}",
        timeout=90,
    )  # fmt: skip
    try:
        with httpx.Client() as client:
            for _ in range(20):
                reply = client.post(f"{gateway}/v1/chat/completions", json=chat("pair"))
                assert reply.status_code == 200, reply.text
        chains = [path for path in (tmp_path / "audit").iterdir() if path.is_dir()]
        assert len(chains) == 2, chains
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_request_waiting_on_a_replica_that_stops_answering_moves_on_when_it_is_marked_down(
    tmp_path: Path,
) -> None:
    """A replica that accepts connections but answers nothing (its network cut, its host
    frozen): the request caught there is retried on the other replica as soon as the
    health check marks it down, not when the (here 60 s) request timeout expires."""
    names = ["freezes", "steady"]
    ports = {name: free_port() for name in names}
    upstreams = {name: FakeUpstream(f"http://127.0.0.1:{ports[name]}") for name in names}
    servers = [serve_in_thread(upstreams[name], ports[name]) for name in names]
    frozen, steady = upstreams["freezes"], upstreams["steady"]
    config = tmp_path / "mesh.yaml"
    config.write_text(
        f"""
upstreams:
  - name: pair
    urls: [{frozen.url}, {steady.url}]
gateway:
  health_interval_seconds: 0.5
  health_timeout_seconds: 0.5
  request_timeout_seconds: 60
"""
    )
    process, gateway = start_gateway(tmp_path, "--config", str(config))
    try:
        url = f"{gateway}/v1/chat/completions"

        def replica_of(session: str) -> str:
            return str(
                httpx.post(url, json=chat("pair"), headers={"x-session-id": session}).json()[
                    "replica"
                ]
            )

        # A session the gateway pins to the replica about to freeze.
        session = next(f"s-{i}" for i in range(100) if replica_of(f"s-{i}") == frozen.url)
        frozen.frozen = True
        started = time.monotonic()
        reply = httpx.post(url, json=chat("pair"), headers={"x-session-id": session}, timeout=90)
        waited = time.monotonic() - started
        assert reply.status_code == 200, reply.text
        assert reply.json()["replica"] == steady.url
        abandoned = [  # the attempt on the frozen replica, given up when it was marked down
            line
            for line in httpx.get(f"{gateway}/metrics").text.splitlines()
            if line.startswith("demigod_upstream_attempts_total{")
            and f'replica="{frozen.url}"' in line
            and 'outcome="replica_down"' in line
        ]
        assert abandoned and abandoned[0].endswith(" 1.0"), abandoned
        assert waited < 30, waited  # far from the request timeout (a liveness bound)
    finally:
        frozen.frozen = False
        process.terminate()
        process.wait(timeout=10)
        for server in servers:
            server.should_exit = True
