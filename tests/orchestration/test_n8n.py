"""The n8n workflow deploy/n8n/deploy-smoke-test.json in a real n8n (npm, on loopback):
imported and published with n8n's own CLI, its webhook triggered as the deploy workflow
does; the smoke test must reach a live `demigod serve` (a chat through the gateway and the
deep probe) and the verdict must reach a local Matrix/Slack-style webhook receiver.

n8n's environment names a gateway nothing listens on: the smoke test must go where the
webhook's body says (`gateway_url`, what the deploy workflow sends), and fall back to the
environment only when the body names none."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from demigod.observability.scrape import Snapshot
from demigod.processes import free_port
from tests.conftest import Server, require_binary, start_server, stop_server
from tests.observability.receiver import JsonReceiver
from tests.orchestration.n8n_home import ensure_n8n

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "deploy" / "n8n" / "deploy-smoke-test.json"
WORKFLOW_ID = json.loads(WORKFLOW.read_text())["id"]
ACTIVATED = f'Activated workflow "{json.loads(WORKFLOW.read_text())["name"]}"'
N8N_START_TIMEOUT = 180.0
CLI_TIMEOUT = 300


@dataclass
class N8n:
    url: str
    environment: dict[str, str]
    log: Path
    environment_gateway: str  # DEMIGOD_GATEWAY_URL: nothing listens there


@pytest.fixture(scope="module")
def n8n_cli() -> Path:
    require_binary("node")
    return ensure_n8n(require_binary("npm"))


@pytest.fixture(scope="module")
def receiver() -> Iterator[JsonReceiver]:
    listening = JsonReceiver()
    yield listening
    listening.close()


@pytest.fixture(scope="module")
def gateway(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A live `demigod serve`; its own background deep probes off, so each one counted
    is the smoke test's."""
    config = "observability:\n  deep_probe_interval_seconds: 0\n"
    running = start_server(
        [f"tiny={tiny_model}"], tmp_path_factory.mktemp("gateway"), config=config
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def n8n(
    n8n_cli: Path,
    receiver: JsonReceiver,
    gateway: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[N8n]:
    home = tmp_path_factory.mktemp("n8n")
    port = free_port()
    nowhere = f"http://127.0.0.1:{free_port()}"
    environment = {
        **os.environ,
        "N8N_USER_FOLDER": str(home),
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_RUNNERS_BROKER_PORT": str(free_port()),  # the Code node's task runner
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        # What the workflow reads: the gateway when the webhook names none (here one
        # nothing listens on), where to post the verdict.
        "N8N_BLOCK_ENV_ACCESS_IN_NODE": "false",
        "DEMIGOD_GATEWAY_URL": nowhere,
        "DEMIGOD_NOTIFY_WEBHOOK_URL": receiver.url("/matrix-hook"),
        "DEMIGOD_API_KEY": "",
    }
    for command in (
        ["import:workflow", f"--input={WORKFLOW}"],
        ["publish:workflow", f"--id={WORKFLOW_ID}"],
    ):
        done = subprocess.run(
            [str(n8n_cli), *command],
            env=environment,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    log = home / "n8n.log"
    process = subprocess.Popen(
        [str(n8n_cli), "start"], env=environment, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + N8N_START_TIMEOUT
    while ACTIVATED not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, f"n8n did not activate:\n{log.read_text()}"
        time.sleep(0.5)
    yield N8n(f"http://127.0.0.1:{port}", environment, log, nowhere)
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def trigger(n8n: N8n, version: str, gateway_url: str | None) -> dict[str, object]:
    """POST the deploy webhook as deploy.yml does: environment, version, gateway_url."""
    body = {"environment": "dev", "version": version}
    if gateway_url is not None:
        body["gateway_url"] = gateway_url
    reply = httpx.post(f"{n8n.url}/webhook/demigod-deploy", json=body, timeout=CLI_TIMEOUT)
    assert reply.status_code == 200, reply.text
    verdict: dict[str, object] = reply.json()
    return verdict


def test_the_deploy_workflow_sends_the_gateway_url_in_the_body() -> None:
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "{environment: $env, version: $version, gateway_url: $url}" in deploy


@pytest.mark.timeout(3600)  # the first run installs n8n (npm ci) when .ci/run did not
def test_a_deploy_webhook_smoke_tests_the_gateway_and_posts_the_verdict(
    n8n: N8n, receiver: JsonReceiver, gateway: Server
) -> None:
    # The body's gateway (with a trailing slash, as a URL variable may have one) wins over
    # the environment's, where nothing listens.
    verdict = trigger(n8n, "0.1.0", f"{gateway.url}/")
    assert verdict["verdict"] == "pass", verdict
    assert (verdict["chat_status"], verdict["deep_probe"]) == (200, {"tiny": "ok"})
    assert receiver.received == [verdict]
    assert receiver.received[0]["text"] == "DemiGod smoke test PASS on dev 0.1.0"
    # The smoke test went through the live gateway: one chat answered, one deep probe
    # passed, under n8n's request id.
    metrics = Snapshot.parse(httpx.get(f"{gateway.url}/metrics", timeout=10).text, 0.0)
    assert metrics.by("demigod_requests_total", "status", model="tiny") == {"200": 1.0}
    assert metrics.by("demigod_probe_success", "model") == {"tiny": 1.0}
    assert '"request_id": "n8n-smoke-' in gateway.log_text()

    # A body without gateway_url: the environment's gateway, which does not answer.
    verdict = trigger(n8n, "0.1.1", None)
    assert verdict["verdict"] == "fail", verdict
    assert "ECONNREFUSED" in str(receiver.received[-1]["text"])
    assert n8n.environment_gateway.removeprefix("http://") in str(receiver.received[-1]["text"])
    metrics = Snapshot.parse(httpx.get(f"{gateway.url}/metrics", timeout=10).text, 0.0)
    assert metrics.by("demigod_requests_total", "status", model="tiny") == {"200": 1.0}

    # The gateway is gone: the next deploy's smoke test fails, and says so.
    stop_server(gateway)
    verdict = trigger(n8n, "0.1.2", gateway.url)
    assert verdict["verdict"] == "fail"
    assert receiver.received[-1]["text"].startswith("DemiGod smoke test FAIL on dev 0.1.2")
    assert "ECONNREFUSED" in str(receiver.received[-1]["text"])
