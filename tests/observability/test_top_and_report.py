"""`demigod top --once` and `demigod report energy` against a running mesh; the quantile
arithmetic they share with Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from demigod.observability.scrape import histogram_quantile
from tests.conftest import Server
from tests.observability.test_live_stack import completion


def cli_json(*args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "demigod", *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(result.stdout))


def test_quantile_matches_prometheus() -> None:
    # The alert unit test's "slow" model: every request in (5, 10]; Prometheus says 9.75.
    slow = {2.5: 0.0, 5.0: 0.0, 10.0: 60.0, float("inf"): 60.0}
    assert histogram_quantile(0.95, slow) == pytest.approx(9.75)
    assert histogram_quantile(0.5, {1.0: 10.0, float("inf"): 10.0}) == pytest.approx(0.5)
    assert histogram_quantile(0.99, {1.0: 0.0, float("inf"): 5.0}) == 1.0  # past the top
    assert histogram_quantile(0.95, {1.0: 0.0, float("inf"): 0.0}) is None


def test_report_energy_gives_joules_per_token(server: Server) -> None:
    completion(server, "report-1")
    (row,) = cli_json("report", "energy", "--url", server.url)
    assert row["model"] == "tiny"
    assert row["sources"] in (["estimate"], ["rapl"])
    assert isinstance(row["output_tokens"], float) and row["output_tokens"] >= 6
    assert isinstance(row["joules"], float) and row["joules"] > 0
    assert row["joules_per_token"] == pytest.approx(row["joules"] / row["output_tokens"])
    assert isinstance(row["decode_tokens_per_second"], float)
    assert row["decode_tokens_per_second"] > 0


def test_top_once_shows_each_model(server: Server) -> None:
    completion(server, "top-1")
    (row,) = cli_json("top", "--url", server.url, "--once", "--interval", "0.2")
    assert row["model"] == "tiny"
    assert isinstance(row["p95_seconds"], float) and row["p95_seconds"] > 0
    assert row["queue_depth"] == 0 and row["inflight"] == 0
    assert row["rps"] == 0  # nothing answered during the 0.2 s it watched


def test_unreachable_mesh_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demigod", "report", "energy", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "cannot read" in result.stderr
