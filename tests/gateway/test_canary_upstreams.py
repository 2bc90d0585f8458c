"""A canary across processes: `demigod gateway` in front of a stable and a candidate
`demigod worker` (two `upstreams` entries of one name, versions v1 and v2, as the
Kubernetes renderer writes them for a candidate Deployment). `demigod canary start` puts
the candidate at its first step (25 %): sessions split by the same hash as embedded
versions, each stays on its version and its worker; `demigod canary abort` (the weight
back to 0) moves every session, pinned ones included, back to stable.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from demigod.config import GatewayConfig, UpstreamConfig
from demigod.gateway.upstreams import Upstreams
from demigod.observability.metrics import Metrics
from demigod.observability.scrape import Snapshot
from demigod.processes import free_port
from demigod.routing.versions import session_fraction
from demigod.scaling.replica_set import publish
from tests.gateway.test_failover import environment, start, start_worker, wait_for

SESSIONS = [f"conversation-{index}" for index in range(24)]
FIRST_STEP = 25.0


@dataclass(frozen=True)
class Canary:
    gateway: str
    workers: dict[str, str]  # version -> the worker's URL
    config: Path
    tmp_path: Path

    def canary(self, *args: str) -> subprocess.Popen[str]:
        """`demigod canary ARGS` with the gateway's config."""
        return subprocess.Popen(
            [sys.executable, "-m", "demigod", "canary", *args, "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(self.tmp_path),
            cwd=self.tmp_path,
        )


@pytest.fixture(scope="module")
def canary(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canary]:
    tmp_path = tmp_path_factory.mktemp("canary-upstreams")
    ports = {"v1": free_port(), "v2": free_port()}
    workers = {version: f"http://127.0.0.1:{port}" for version, port in ports.items()}
    config = tmp_path / "mesh.yaml"
    config.write_text(
        f"""
upstreams:
  - {{name: tiny, version: v1, urls: [{workers["v1"]}]}}
  - {{name: tiny, version: v2, urls: [{workers["v2"]}]}}
canary:
  state_file: {tmp_path / "canary.json"}
  refresh_seconds: 0.2
  steps: [{FIRST_STEP}, 100]
  window_seconds: 3600  # the test steers the rollout; no window ends while it runs
  probes_per_window: 0
gateway:
  health_interval_seconds: 0.25
"""
    )
    processes = []
    try:
        processes += [start_worker(tiny_model, port, tmp_path) for port in ports.values()]
        gateway_port = free_port()
        processes.append(
            start(["gateway", "--config", str(config)], gateway_port, tmp_path, "/readyz")
        )
        yield Canary(f"http://127.0.0.1:{gateway_port}", workers, config, tmp_path)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


def answer(gateway: str, session: str) -> tuple[str, str]:
    """(version, worker URL) that answered one turn of `session`."""
    body = {"model": "tiny", "prompt": "Hello", "max_tokens": 1, "user": session}
    reply = httpx.post(f"{gateway}/v1/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    found = re.search(r"version=([^;]+);", reply.headers["x-demigod-route"])
    assert found is not None
    return found.group(1), reply.headers["x-demigod-replica"]


def candidate_weight(gateway: str) -> float | None:
    snapshot = Snapshot.parse(httpx.get(f"{gateway}/metrics").text, 0.0)
    return snapshot.by("demigod_canary_weight", "version", model="tiny").get("v2")


def weight_becomes(gateway: str, weight: float) -> Callable[[], bool]:
    return lambda: candidate_weight(gateway) == weight


def test_canary_start_splits_sessions_across_workers_and_abort_moves_them_back(
    canary: Canary,
) -> None:
    assert candidate_weight(canary.gateway) == 0.0  # declared from the start
    rollout = canary.canary("start", "tiny", "--url", canary.gateway, "--json")
    try:
        wait_for(weight_becomes(canary.gateway, FIRST_STEP / 100), "the gateway took 25 %")
        # Placed by the session hash every gateway process shares, then pinned.
        expected = {
            session: "v2" if session_fraction("tiny", session) < FIRST_STEP / 100 else "v1"
            for session in SESSIONS
        }
        assert {"v1", "v2"} == set(expected.values())
        for _turn in range(2):
            for session in SESSIONS:
                version, replica = answer(canary.gateway, session)
                assert version == expected[session], session
                assert replica == canary.workers[version]  # the candidate's own worker
        # What `canary start` compares each window: per-version counts and latencies.
        snapshot = Snapshot.parse(httpx.get(f"{canary.gateway}/metrics").text, 0.0)
        timed = snapshot.by(
            "demigod_version_request_duration_seconds_count", "version", model="tiny"
        )
        on_candidate = sum(version == "v2" for version in expected.values())
        assert timed == {"v1": 2.0 * (len(SESSIONS) - on_candidate), "v2": 2.0 * on_candidate}

        aborted = canary.canary("abort", "tiny", "--json")
        stdout, stderr = aborted.communicate(timeout=120)
        assert aborted.returncode == 0, stderr
        assert (json.loads(stdout)["status"], json.loads(stdout)["weight"]) == ("aborted", 0)
        wait_for(weight_becomes(canary.gateway, 0.0), "the gateway took the rollback")
        for session in SESSIONS:
            assert answer(canary.gateway, session) == ("v1", canary.workers["v1"])
    finally:
        rollout.terminate()
        rollout.communicate(timeout=30)


def test_a_pinned_version_reaches_its_worker(canary: Canary) -> None:
    assert answer(canary.gateway, "pin")[0] in {"v1", "v2"}
    for version, worker in canary.workers.items():
        body = {"model": f"tiny@{version}", "prompt": "Hello", "max_tokens": 1}
        reply = httpx.post(f"{canary.gateway}/v1/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-demigod-replica"] == worker
    missing = httpx.post(
        f"{canary.gateway}/v1/completions",
        json={"model": "tiny@v9", "prompt": "Hello", "max_tokens": 1},
    )
    assert missing.status_code == 404 and "available: v1, v2" in missing.text


def test_three_versions_of_one_upstream_are_a_clear_cli_error(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "demigod", "gateway", "--port", str(free_port())]
    for version in ("v1", "v2", "v3"):
        command += ["--upstream", f"tiny@{version}=http://127.0.0.1:9"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "more than two versions" in done.stderr


def test_a_candidates_replicas_are_published_under_name_at_version(
    canary: Canary, tmp_path: Path
) -> None:
    """With gateway.replicas_dir (`demigod ops autoscale`), a candidate's replica set is
    the one published as NAME@VERSION; NAME's is the stable's."""
    publish(tmp_path, "tiny", [canary.workers["v1"]])
    publish(tmp_path, "tiny@v2", [canary.workers["v2"]])
    configs = [UpstreamConfig(name="tiny", version=version) for version in ("v1", "v2")]
    upstreams = Upstreams(configs, GatewayConfig(replicas_dir=tmp_path), Metrics())

    async def follow() -> None:
        await upstreams.client.start()
        try:
            await upstreams.follow_replica_sets()
        finally:
            await upstreams.client.close()

    asyncio.run(follow())
    assert [r.url for r in upstreams.models["tiny"].replicas] == [canary.workers["v1"]]
    assert [r.url for r in upstreams.candidates["tiny"].replicas] == [canary.workers["v2"]]
