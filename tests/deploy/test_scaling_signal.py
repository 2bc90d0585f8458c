"""The scaling signal is real: a live `demigod worker` under load, scraped by a real
Prometheus with the labels a ServiceMonitor gives it, and the exact PromQL of the rendered
ScaledObject rises above its threshold, then falls back when the load stops."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from demigod.cli import app
from demigod.processes import ServerNotReadyError, free_port, wait_until_ready
from tests.conftest import require_binary, running_prometheus

NAMESPACE = "demigod-dev"
SERVICE = "demigod-worker-tiny"
CLIENTS = 8  # one decode slot: seven of them wait
WAIT = 90.0


@pytest.fixture(scope="module")
def worker(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`demigod worker` with one decode slot, so concurrent requests queue."""
    tmp = tmp_path_factory.mktemp("worker")
    port = free_port()
    log = tmp / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demigod",
            "worker",
            "--model",
            f"tiny={tiny_model}",
            "--port",
            str(port),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "DEMIGOD_ENGINE__N_THREADS": "1",
            "DEMIGOD_ENGINE__SLOTS": "1",
            "DEMIGOD_ENGINE__QUEUE_SIZE": str(CLIENTS * 2),
            "DEMIGOD_SECURITY__AUTH": "off",
            "DEMIGOD_DATA_DIR": str(tmp / "data"),
            "DEMIGOD_ENGINE__STATE_CACHE__DISK_DIR": str(tmp / "state"),
        },
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(process, f"{url}/readyz", timeout=60)
        except ServerNotReadyError as exc:
            pytest.fail(f"worker {exc}:\n{log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def triggers(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """The dev overlay's ScaledObject triggers for the tiny model, as kubectl builds them."""
    kubectl = require_binary("kubectl")
    tmp = tmp_path_factory.mktemp("render")
    (tmp / "mesh.yaml").write_text(
        yaml.safe_dump({"models": [{"name": "tiny", "path": str(tiny_model)}]})
    )
    result = CliRunner().invoke(
        app,
        ["deploy", "render", "k8s", "--config", str(tmp / "mesh.yaml"), "--out", str(tmp / "out")],
    )
    assert result.exit_code == 0, result.output
    built = subprocess.run(
        [kubectl, "kustomize", str(tmp / "out" / "overlays" / "dev")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    (scaled,) = [d for d in yaml.safe_load_all(built) if d and d["kind"] == "ScaledObject"]
    return {t["name"]: t for t in scaled["spec"]["triggers"]}


@pytest.fixture(scope="module")
def prometheus(worker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus scraping the worker every second, with the target labels the rendered
    ServiceMonitor gives a worker pod (namespace, service)."""
    tmp = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "demigod-worker",
                "static_configs": [
                    {
                        "targets": [worker.removeprefix("http://")],
                        "labels": {"namespace": NAMESPACE, "service": SERVICE},
                    }
                ],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    with running_prometheus(tmp / "prometheus.yml", tmp) as url:
        yield url


def value(prometheus: str, promql: str) -> float | None:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert reply["status"] == "success", reply
    result = reply["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_for(prometheus: str, what: str, promql: str, holds: Callable[[float], bool]) -> float:
    """Poll `promql` until its value satisfies `holds`; that value. Fails after WAIT s."""
    deadline = time.monotonic() + WAIT
    last = None
    while time.monotonic() < deadline:
        last = value(prometheus, promql)
        if last is not None and holds(last):
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: {promql} still {last!r} after {WAIT}s")


async def load(worker: str, stop: asyncio.Event) -> None:
    """CLIENTS streams of long completions at once, restarted until `stop`."""

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            body = {"model": "tiny", "prompt": "scale", "max_tokens": 400, "ignore_eos": True}
            reply = await http.post(f"{worker}/v1/completions", json=body, timeout=300)
            assert reply.status_code == 200, reply.text

    async with httpx.AsyncClient() as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))


def test_the_rendered_trigger_fires_under_load_and_releases_after(
    worker: str, prometheus: str, triggers: dict[str, dict[str, Any]]
) -> None:
    queue = triggers["queue"]["metadata"]
    slots = triggers["state-slots"]["metadata"]
    assert f'namespace="{NAMESPACE}",service="{SERVICE}"' in queue["query"]
    queue_threshold, slots_threshold = float(queue["threshold"]), float(slots["threshold"])
    # Idle: the series exists and sits below both thresholds.
    assert wait_for(prometheus, "idle", queue["query"], lambda v: True) <= queue_threshold
    assert wait_for(prometheus, "idle", slots["query"], lambda v: True) <= slots_threshold

    async def scenario() -> tuple[float, float]:
        stop = asyncio.Event()
        traffic = asyncio.create_task(load(worker, stop))
        try:
            # One replica: KEDA's AverageValue target compares the total with the threshold.
            fired = await asyncio.to_thread(
                wait_for, prometheus, "fire", queue["query"], lambda v: v > queue_threshold
            )
            busy = await asyncio.to_thread(
                wait_for, prometheus, "fire", slots["query"], lambda v: v > slots_threshold
            )
        finally:
            stop.set()
            await traffic
        return fired, busy

    fired, busy = asyncio.run(scenario())
    assert fired > queue_threshold and busy > slots_threshold
    # The load has stopped: the queue drains and both signals fall back under their targets.
    wait_for(prometheus, "release", queue["query"], lambda v: v <= queue_threshold)
    wait_for(prometheus, "release", slots["query"], lambda v: v <= slots_threshold)
