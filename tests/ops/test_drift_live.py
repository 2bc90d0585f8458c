"""`demigod ops drift` against a live mesh started from a declared state (mesh.yaml + the
models lock file): a gateway and a worker serving the registry's stable version. Behind
git's back an alias is promoted, a config value changed, a worker stopped: each is reported
with its kind, by the command and by the watch mode's `demigod_drift{kind}`; restoring the
declared state clears it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from demigod.config import load_settings
from demigod.lifecycle.register import register_artefact
from demigod.observability.scrape import Snapshot
from demigod.ops.drift_check import check_drift
from demigod.processes import ServerNotReadyError, free_port, wait_until_ready
from demigod.registry import CANDIDATE, STABLE, Registry, default_database_url

START_TIMEOUT = 90.0


@dataclass
class Mesh:
    """The declared state (`home`: mesh.yaml, models.lock.yaml) and what runs from it."""

    home: Path
    gateway_port: int
    worker_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.home / "mesh.yaml"

    def start(self, role: str, extra_env: dict[str, str] | None = None) -> None:
        port = self.gateway_port if role == "gateway" else self.worker_port
        command = [sys.executable, "-m", "demigod", role, "--port", str(port)]
        command += ["--config", str(self.config)]
        if role == "worker":
            command += ["--model", "tiny"]
        log = (self.home / f"{role}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=self.home,
            env={**os.environ, **(extra_env or {})},  # as the drift check sees it
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(process, f"http://127.0.0.1:{port}/readyz", timeout=START_TIMEOUT)
        except ServerNotReadyError as exc:
            raise RuntimeError(f"{role} {exc}:\n{(self.home / f'{role}.log').read_text()}") from exc
        self.processes[role] = process

    def stop(self, role: str) -> None:
        process = self.processes.pop(role)
        process.terminate()
        process.wait(timeout=30)

    def kinds(self) -> set[tuple[str, str]]:
        """(kind, subject) of every drift found now."""
        report = check_drift(load_settings(self.config), self.home / "models.lock.yaml")
        return {(d.kind, d.subject) for d in report.drifts}

    def settle(self, expected: set[tuple[str, str]], timeout: float = 20.0) -> None:
        """Wait for the gateway's health checks to see a change, then compare."""
        deadline = time.monotonic() + timeout
        while (found := self.kinds()) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        assert found == expected


@pytest.fixture(scope="module")
def mesh(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    home = tmp_path_factory.mktemp("gitops")
    data = home / "var"
    with Registry(default_database_url(data)) as registry:
        v1 = register_artefact(registry, data, "tiny", tiny_model, categories=["chat"]).label
        f16 = tiny_model.with_name("demigod-test.F16.gguf")
        register_artefact(registry, data, "tiny", f16)
        registry.move_alias("tiny", STABLE, v1)
        registry.move_alias("tiny", CANDIDATE, v1)  # no canary: one version served
    running = Mesh(home, free_port(), free_port())
    running.config.write_text(
        f"""data_dir: {data}
upstreams:
  - {{name: tiny, urls: ["http://127.0.0.1:{running.worker_port}"], categories: [chat]}}
observability:
  deep_probe_interval_seconds: 0
security:
  auth: "off"
ops:
  gateway_url: http://127.0.0.1:{running.gateway_port}
  drift:
    interval_seconds: 0.5
    metrics_port: {free_port()}
"""
    )
    locked = subprocess.run(
        [sys.executable, "-m", "demigod", "ops", "lock", "--config", str(running.config)],
        cwd=home,
        capture_output=True,
        text=True,
    )
    assert locked.returncode == 0, locked.stderr
    running.start("worker")
    running.start("gateway")
    yield running
    for role in list(running.processes):
        running.stop(role)


def drift_cli(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "demigod", "ops", "drift", "--config", str(mesh.config)]
    return subprocess.run(
        [*command, *args], cwd=mesh.home, capture_output=True, text=True, timeout=120
    )


def test_the_declared_mesh_has_no_drift(mesh: Mesh) -> None:
    clean = drift_cli(mesh, "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["drift"] == []
    gateway, worker = (f"http://127.0.0.1:{p}" for p in (mesh.gateway_port, mesh.worker_port))
    assert report["nodes"] == [gateway, worker]  # the worker was reached through the gateway


def test_an_alias_promoted_behind_gits_back(mesh: Mesh) -> None:
    registry = Registry(default_database_url(mesh.home / "var"))
    try:
        registry.move_alias("tiny", STABLE, "v2")
        assert mesh.kinds() == {("alias", "tiny@stable")}
        found = drift_cli(mesh)
        assert found.returncode == 1 and "tiny@stable" in found.stdout
        registry.move_alias("tiny", STABLE, "v1")
    finally:
        registry.close()
    assert mesh.kinds() == set()


def test_a_config_value_changed_behind_gits_back(mesh: Mesh) -> None:
    mesh.stop("gateway")
    mesh.start("gateway", {"DEMIGOD_GATEWAY__MAX_ATTEMPTS": "3"})
    assert mesh.kinds() == {("config", "gateway.max_attempts")}
    mesh.stop("gateway")
    mesh.start("gateway")
    assert mesh.kinds() == set()


def test_a_stopped_worker_and_the_watch_mode(mesh: Mesh) -> None:
    settings = load_settings(mesh.config)
    watch = subprocess.Popen(
        [sys.executable, "-m", "demigod", "ops", "drift", "--watch", "--config", str(mesh.config)],
        cwd=mesh.home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics_url = f"http://127.0.0.1:{settings.ops.drift.metrics_port}/metrics"

    def exported() -> dict[str, float]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = httpx.get(metrics_url, timeout=2).text
                return Snapshot.parse(page, 0.0).by("demigod_drift", "kind")
            except httpx.HTTPError:
                time.sleep(0.5)
        raise AssertionError("the watch mode exported nothing")

    try:
        mesh.stop("worker")
        worker = f"http://127.0.0.1:{mesh.worker_port}"
        mesh.settle({("replica", f"tiny {worker}"), ("model_missing", "tiny@stable")})
        deadline = time.monotonic() + 30
        while (found := exported())["replica"] != 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert found["replica"] == 1 and found["model_missing"] == 1 and found["config"] == 0

        mesh.start("worker")
        mesh.settle(set())
        deadline = time.monotonic() + 30
        while set((found := exported()).values()) != {0.0} and time.monotonic() < deadline:
            time.sleep(0.5)
        assert set(found.values()) == {0.0}, found
    finally:
        watch.terminate()
        watch.wait(timeout=30)
