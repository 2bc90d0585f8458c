"""Failover with real processes: a gateway in front of two `demigod worker`s, one killed.

Under steady load, `kill -9` one worker: every non-streamed request still succeeds (a
request that was on the dead worker is retried on the other), streams that were on it end
with an SSE error event rather than hanging, and once the gateway has marked it down it
sends it no new request. Restart it: traffic returns. (How fast the gateway notices is a
speed, not a behaviour: no wall-clock bound here beyond generous liveness limits.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from demigod.processes import free_port, wait_until_ready
from tests.steady_load import SteadyLoad

GATEWAY_CONFIG = """
gateway:
  health_interval_seconds: 0.25
  health_timeout_seconds: 0.5
  breaker_open_seconds: 1.0
  request_timeout_seconds: 30
"""


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DEMIGOD_ENGINE__N_THREADS": "1",
        "DEMIGOD_SECURITY__AUTH": "off",
        "DEMIGOD_DATA_DIR": str(tmp_path / "data"),
        "DEMIGOD_ENGINE__STATE_CACHE__DISK_DIR": str(tmp_path / "state"),
    }


def start(
    command: list[str],
    port: int,
    tmp_path: Path,
    ready: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{port}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "demigod", *command, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**environment(tmp_path), **(env or {})},
        cwd=tmp_path,
    )
    wait_until_ready(process, f"http://127.0.0.1:{port}{ready}", timeout=60)
    return process


def start_worker(
    model: Path, port: int, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return start(["worker", "--model", f"tiny={model}"], port, tmp_path, "/readyz", env)


@dataclass
class Cluster:
    gateway: str
    workers: dict[str, subprocess.Popen[bytes]]  # replica URL -> process
    ports: dict[str, int]
    tmp_path: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


@pytest.fixture
def cluster(tiny_model: Path, tmp_path: Path) -> Iterator[Cluster]:
    ports = {f"http://127.0.0.1:{port}": port for port in (free_port(), free_port())}
    workers = {url: start_worker(tiny_model, port, tmp_path) for url, port in ports.items()}
    config = tmp_path / "mesh.yaml"
    config.write_text(GATEWAY_CONFIG)
    gateway_port = free_port()
    upstreams = [arg for url in ports for arg in ("--upstream", f"tiny={url}")]
    gateway = start(
        ["gateway", "--config", str(config), *upstreams], gateway_port, tmp_path, "/readyz"
    )
    running = Cluster(f"http://127.0.0.1:{gateway_port}", workers, ports, tmp_path, [gateway])
    yield running
    for process in [*running.processes, *running.workers.values()]:
        process.terminate()
    for process in [*running.processes, *running.workers.values()]:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def chat(max_tokens: int, **extra: object) -> dict[str, object]:
    return {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Tell me a story about replicas."}],
        "max_tokens": max_tokens,
        "temperature": 0,
        **extra,
    }


LIVENESS_SECONDS = 30.0  # "it happens at all" on a busy shared machine, not a speed


def wait_for(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + LIVENESS_SECONDS
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def metric(gateway: str, name: str, replica: str) -> float:
    """The sum of `name`'s samples for `replica` on the gateway's /metrics."""
    total = 0.0
    for line in httpx.get(f"{gateway}/metrics").text.splitlines():
        if line.startswith(name + "{") and f'replica="{replica}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def stream_events(gateway: str, results: list[tuple[str, list[str]]], started: list[str]) -> None:
    """One long stream; appends its replica to `started` once the answer's headers are in,
    and (replica, data lines) to `results` when it ends."""
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{gateway}/v1/chat/completions",
            json=chat(1500, stream=True, ignore_eos=True),
        ) as response,
    ):
        replica = response.headers["x-demigod-replica"]
        started.append(replica)
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    results.append((replica, lines))


def test_kill_one_worker_under_load_then_restart(cluster: Cluster, tiny_model: Path) -> None:
    gateway = cluster.gateway
    streams: list[tuple[str, list[str]]] = []
    started: list[str] = []
    with (
        SteadyLoad(f"{gateway}/v1/chat/completions", chat(4)) as load,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        streamers = [pool.submit(stream_events, gateway, streams, started) for _ in range(4)]
        wait_for(  # load flowing to both replicas (the streams are under way meanwhile)
            lambda: load.replicas_since(0) == set(cluster.workers),
            "steady load did not reach both replicas",
        )
        wait_for(lambda: len(started) == len(streamers), "the streams did not start")

        # The victim holds a stream (the balancer may have put all four on one replica).
        victim = started[0]
        survivor = next(url for url in cluster.workers if url != victim)
        cluster.workers[victim].send_signal(signal.SIGKILL)
        # Marked down by a refused connect or a failed health check, whichever comes first.
        wait_for(
            lambda: metric(gateway, "demigod_upstream_up", victim) == 0,
            "the dead replica is still marked up",
        )
        down = time.monotonic()
        attempts_when_down = metric(gateway, "demigod_upstream_attempts_total", victim)
        for streamer in streamers:
            streamer.result(timeout=30)  # every stream ends: none hangs
        served_since_down = len(load.served_by)
        wait_for(  # the steady load went on meanwhile, all of it elsewhere
            lambda: len(load.served_by) >= served_since_down + 20, "the load stopped"
        )
        assert metric(gateway, "demigod_upstream_attempts_total", victim) == attempts_when_down
        assert victim not in load.replicas_since(down)

        cluster.workers[victim] = start_worker(tiny_model, cluster.ports[victim], cluster.tmp_path)
        load.wait_for_replica(victim, since=time.monotonic(), timeout=LIVENESS_SECONDS)

    assert load.statuses and set(load.statuses) == {200}, f"failures: {load.statuses}"
    assert survivor in load.replicas_since(0)
    on_victim = [lines for replica, lines in streams if replica == victim]
    on_survivor = [lines for replica, lines in streams if replica == survivor]
    assert on_victim, "no stream was on the killed replica"
    for lines in on_victim:
        assert lines[-1] == "data: [DONE]"
        error = json.loads(lines[-2].removeprefix("data: "))
        assert error["error"]["code"] == "upstream_failed"
    for lines in on_survivor:
        assert lines[-1] == "data: [DONE]"
        assert "error" not in json.loads(lines[-2].removeprefix("data: "))
