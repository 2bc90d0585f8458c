"""`demigod ops autoscale` behind a real `demigod gateway`: load rises, workers are added
and the gateway routes to them without a restart; load falls, workers are drained and
stopped after the stabilisation window, and no request fails on the way."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from demigod.processes import free_port

SCALE_DOWN_WINDOW = 6.0
HEAVY_CLIENTS = 6
TIMEOUT = 240.0
BODY = {"model": "tiny", "prompt": "once upon a time", "max_tokens": 24, "ignore_eos": True}


@dataclass
class Ticks:
    """The autoscaler's decisions (its --json lines), read as they come."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("{"):
                with self.lock:
                    self.seen.append(json.loads(line))

    def wait_for(self, what: str, test: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for tick in self.seen:
                    if test(tick):
                        return tick
            time.sleep(0.2)
        raise AssertionError(f"no tick where {what}: {self.seen[-5:]}")


@dataclass
class Load:
    """`clients` threads sending completions through the gateway until stopped."""

    url: str
    clients: int
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._send, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    response = client.post("/v1/completions", json=BODY)
                    if response.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.fixture
def mesh(tmp_path: Path, tiny_model: Path) -> Iterator[tuple[str, Ticks]]:
    replicas_dir = tmp_path / "replicas"
    config = {
        "data_dir": str(tmp_path / "data"),
        "models": [{"name": "tiny", "path": str(tiny_model)}],
        "upstreams": [{"name": "tiny", "urls": []}],
        "engine": {"n_threads": 1, "slots": 1, "queue_size": 64},
        "security": {"auth": "off"},
        "waf": {"enabled": False},
        "gateway": {"replicas_dir": str(replicas_dir), "health_interval_seconds": 0.5},
        "ops": {
            "autoscale": {
                "min_replicas": 1,
                "max_replicas": 3,
                "target_queue_depth": 1.0,
                "interval_seconds": 0.5,
                "scale_down_window_seconds": SCALE_DOWN_WINDOW,
                "replicas_dir": str(replicas_dir),
            }
        },
    }
    config_file = tmp_path / "mesh.yaml"
    config_file.write_text(yaml.safe_dump(config))
    demigod = [sys.executable, "-m", "demigod"]
    scaler = subprocess.Popen(
        [*demigod, "ops", "autoscale", "--model", "tiny", "--json", "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "autoscale.log").open("w"),
        text=True,
        cwd=tmp_path,
    )
    ticks = Ticks()
    threading.Thread(target=ticks.follow, args=(scaler,), daemon=True).start()
    port = free_port()
    gateway = subprocess.Popen(
        [*demigod, "gateway", "--port", str(port), "--config", str(config_file)],
        stdout=(tmp_path / "gateway.log").open("w"),
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # the first worker loads, is published, and the gateway learns it
            try:
                if httpx.post(f"{url}/v1/completions", json=BODY, timeout=30).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url, ticks
    finally:
        scaler.terminate()  # drains and stops its workers
        try:
            scaler.wait(timeout=90)
        except subprocess.TimeoutExpired:
            scaler.kill()
        gateway.terminate()
        gateway.wait(timeout=30)


def _upstream_replicas(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        1
        for line in text.splitlines()
        if line.startswith('demigod_upstream_up{model="tiny"') and line.endswith(" 1.0")
    )


def test_replicas_follow_the_load_and_scale_down_drops_no_request(
    mesh: tuple[str, Ticks],
) -> None:
    url, ticks = mesh
    heavy = Load(url, HEAVY_CLIENTS).start()
    light = Load(url, 1)
    try:
        ticks.wait_for("3 replicas are wanted", lambda t: t["desired"] == 3)
        ticks.wait_for("3 replicas are ready", lambda t: t["ready"] == 3)
        deadline = time.monotonic() + 30
        while _upstream_replicas(url) < 3:  # the gateway learned them without a restart
            assert time.monotonic() < deadline, "the gateway did not pick up the new replicas"
            time.sleep(0.5)

        light.start()  # requests keep flowing through the scale-down
        heavy.finish()
        quiet_from = time.time()
        down = ticks.wait_for(
            "scaled back down", lambda t: t["time"] > quiet_from and t["replicas"] == 1
        )
        # Not before the stabilisation window: every recommendation in it had to agree.
        assert down["time"] - quiet_from >= SCALE_DOWN_WINDOW - 1.0, down
        time.sleep(5)  # the drained workers stop while the light load carries on
    finally:
        heavy.finish()
        light.finish()
    assert heavy.ok > 0 and light.ok > 0
    assert heavy.failed == [] and light.failed == []
    assert _upstream_replicas(url) == 1
