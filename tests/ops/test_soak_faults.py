"""The soak and fault benchmarks in short, as CI runs them: the long runs and their
numbers are in docs/benchmarks.md (bench/soak.py, bench/faults.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import require_binary

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(script: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_a_short_soak_answers_everything(tiny_model: Path) -> None:
    require_binary("redis-server")
    [result] = _bench(
        "soak.py", "--model", str(tiny_model), "--minutes", "0.5", "--window", "10",
        "--capacity-seconds", "8",
    )  # fmt: skip
    assert result["redis"] and result["requests"] > 0
    assert result["errors"] == 0, result["error_codes"]
    assert len(result["windows"]) >= 2
    assert set(result["rss_growth"]) == {"gateway", "worker-0", "worker-1"}


def test_redis_and_postgres_restarts_and_a_network_cut(tiny_model: Path) -> None:
    require_binary("redis-server")
    results = {
        r["scenario"]: r
        for r in _bench(
            "faults.py", "--model", str(tiny_model), "--rate", "4", "--outage", "2", "--settle", "3"
        )
    }
    redis = results["redis"]
    assert redis["unclear_errors"] == 0, redis  # 200, or 503 quota_unavailable
    assert redis["audit"]["missing"] == redis["audit"]["status_differs"] == 0
    assert redis["after"].get("200", 0) > 0 and redis["quota_counters_after_restart"] > 0

    postgres = results["postgres"]
    assert set(postgres["requests"]) == {"200"}, postgres  # serving never noticed
    assert postgres["registry_writes"]["ok_after_restart"] > 0
    assert postgres["audit"]["missing"] == postgres["audit"]["status_differs"] == 0

    netcut = results["netcut"]
    if "skipped" not in netcut:  # needs root and ip netns
        assert netcut["detected_seconds"] is not None, netcut
        assert netcut["failed_after_cut"] == 0, netcut
        # Requests caught on the cut replica are retried when it is marked down, not
        # after the gateway's 10 s request timeout (None: no request came in between).
        caught = netcut["worst_latency_caught_in_the_cut"]
        assert caught is None or caught < 10, netcut
