"""End to end: `demigod canary start` against a real server rolls a bad candidate back.

The rollout lives in the model registry (`canary.store: registry`). The candidate is
genuinely worse, not flagged: the same model name served by a much wider and deeper Mamba
(same pipeline, same engine), so every token costs it more. The p95 judgement is by ratio
alone (`p95_slack_seconds: 0`): on a fast, quiet machine both versions answer in tens of
milliseconds and the default absolute slack would hide a 2x regression.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demigod.observability.scrape import Snapshot
from tests.conftest import Server, start_server, stop_server

CLI_TIMEOUT = 120
SLOW_HIDDEN, SLOW_LAYERS = 384, 6


@pytest.fixture(scope="module")
def slow_candidate(tmp_path_factory: pytest.TempPathFactory, toolkit_data_dir: Path) -> Path:
    """A wider, deeper Mamba through the same convert -> Q4_0 pipeline: several times the
    tiny model's work per token."""
    if (prebuilt := os.environ.get("DEMIGOD_TEST_SLOW_MODEL")) is not None:
        return Path(prebuilt)
    from demigod.lifecycle.demo import build_test_model

    return build_test_model(
        tmp_path_factory.mktemp("candidate"),
        data_dir=toolkit_data_dir,
        hidden_size=SLOW_HIDDEN,
        num_layers=SLOW_LAYERS,
    )


@pytest.fixture(scope="module")
def canary_server(
    tiny_model: Path, slow_candidate: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    home = tmp_path_factory.mktemp("canary")
    config = f"""
models:
  - {{name: tiny, path: {tiny_model}, version: v1}}
  - {{name: tiny, path: {slow_candidate}, version: v2}}
canary:
  store: registry
  steps: [50, 100]
  window_seconds: 8
  min_requests: 4
  probes_per_window: 1
  p95_slack_seconds: 0
  refresh_seconds: 0.5
observability:
  deep_probe_interval_seconds: 0
"""
    running = start_server([], home, config=config)
    yield running, home
    stop_server(running)


def version_of(reply: httpx.Response) -> str:
    found = re.search(r"version=([^;]+);", reply.headers["x-demigod-route"])
    assert found is not None
    return found.group(1)


def demigod(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = next(home.glob("mesh-*.yaml"))
    command = [sys.executable, "-m", "demigod", "canary", *args, "--config", str(config)]
    environment = {**os.environ, "DEMIGOD_DATA_DIR": str(home / "data")}  # as the server's
    return subprocess.run(
        command,
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def test_a_slow_candidate_is_rolled_back_to_zero(canary_server: tuple[Server, Path]) -> None:
    server, home = canary_server
    stop = threading.Event()
    served: list[str] = []
    failed: list[str] = []  # an assert inside the thread would only warn: collected here

    def traffic() -> None:
        body = {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 32, "ignore_eos": True}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                reply = client.post("/v1/completions", json={**body, "user": uuid.uuid4().hex})
                if reply.status_code != 200:
                    failed.append(f"{reply.status_code} {reply.text}")
                    return
                served.append(version_of(reply))

    clients = [threading.Thread(target=traffic) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        done = demigod(home, "start", "tiny", "--url", server.url, "--json")
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert not any(client.is_alive() for client in clients)
    assert not failed, f"traffic failed during the rollout: {failed}"
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    end = lines[-1]
    assert end["event"] == "end" and end["status"] == "rolled_back" and end["weight"] == 0
    assert "p95" in end["reason"], end["reason"]
    window = lines[0]
    assert window["decision"]["action"] == "rollback"
    assert window["candidate"]["p95_seconds"] > window["stable"]["p95_seconds"]
    # Deep probes ran against each version: the 4-token probe plus the Hemlock probe cases.
    assert window["stable"]["probes"] == window["candidate"]["probes"] >= 2
    assert {"v1", "v2"} <= set(served)  # the candidate did get its 50 % first

    # The gateway follows the store: every new session now lands on stable.
    with httpx.Client(base_url=server.url, timeout=60) as client:
        snapshot = Snapshot.parse(client.get("/metrics").text, 0.0)
        for _ in range(20):
            if snapshot.by("demigod_canary_weight", "version", model="tiny").get("v2") == 0:
                break
            threading.Event().wait(0.25)
            snapshot = Snapshot.parse(client.get("/metrics").text, 0.0)
        assert snapshot.by("demigod_canary_weight", "version", model="tiny") == {
            "v1": 1.0,
            "v2": 0.0,
        }
        rollbacks = snapshot.by("demigod_canary_rollbacks_total", "version", model="tiny")
        assert rollbacks == {"v1": 0.0, "v2": 1.0}  # both exported from the start
        body = {"model": "tiny", "prompt": "hi", "max_tokens": 1}
        after = [
            version_of(client.post("/v1/completions", json={**body, "user": f"new{i}"}))
            for i in range(10)
        ]
    assert after == ["v1"] * 10

    status = demigod(home, "status", "tiny", "--json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)
    assert (row["status"], row["weight"]) == ("rolled_back", 0)
    assert [e["action"] for e in row["events"]] == ["start", "rollback"]
    # The operator commands act on the same store.
    from demigod.registry import Registry

    with Registry.open(None, home / "data") as registry:  # the store is the registry
        actions = [e.action for e in registry.events("tiny")]
    assert actions == ["canary.start", "canary.rollback"]
    aborted = demigod(home, "abort", "tiny", "--json")
    assert aborted.returncode == 0 and json.loads(aborted.stdout)["status"] == "aborted"
    missing = demigod(home, "abort", "ghost")
    assert missing.returncode == 2 and "no canary of 'ghost'" in missing.stderr
