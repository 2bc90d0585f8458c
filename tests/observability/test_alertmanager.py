"""A real Alertmanager on the rendered config delivers pages and warnings to the webhook,
each through its own receiver."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from demigod.processes import ServerNotReadyError, free_port, wait_until_ready
from tests.conftest import require_binary
from tests.observability.receiver import JsonReceiver
from tests.observability.test_live_stack import WAIT, wait_for
from tests.observability.test_rendered_config import render


@pytest.fixture(scope="module")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, JsonReceiver]]:
    binary = require_binary("prometheus-alertmanager")
    webhook = JsonReceiver()
    workdir = tmp_path_factory.mktemp("alertmanager")
    render(
        workdir / "config", env={"DEMIGOD_OBSERVABILITY__ALERT_WEBHOOK_URL": webhook.url("/alerts")}
    )
    port = free_port()
    log = workdir / "alertmanager.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'config' / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: a single instance
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(process, f"{url}/-/ready", timeout=WAIT, interval=0.5)
        except ServerNotReadyError as exc:
            pytest.fail(f"alertmanager {exc}:\n{log.read_text()}")
        yield url, webhook
    finally:
        process.terminate()
        process.wait(timeout=15)
        webhook.close()


def test_pages_and_warnings_reach_the_webhook(alertmanager: tuple[str, JsonReceiver]) -> None:
    url, webhook = alertmanager
    alerts = [
        {"labels": {"alertname": "DemigodDeepProbeFailing", "severity": "page", "model": "m"}},
        {"labels": {"alertname": "DemigodQueueDepthHigh", "severity": "warning", "model": "m"}},
    ]
    httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()

    def delivered() -> dict[str, str] | None:
        # After the rendered group_wait (30 s), one notification per alert group.
        found = {
            alert["labels"]["alertname"]: notification["receiver"]
            for notification in webhook.received
            for alert in notification["alerts"]
        }
        return found if len(found) == 2 else None

    assert wait_for("notifications", delivered) == {
        "DemigodDeepProbeFailing": "pager",
        "DemigodQueueDepthHigh": "team",
    }
    assert all(n["status"] == "firing" for n in webhook.received)
