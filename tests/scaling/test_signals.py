"""What the autoscaler reads from a worker's /metrics, and the replica-set files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from demigod.config import AutoscaleConfig, Settings
from demigod.scaling.replica_set import publish, read_replica_sets, replica_set_path
from demigod.scaling.signals import ReplicaSignals, metric_values, parse_signals

METRICS = """\
# HELP demigod_queue_depth Requests waiting or running per model replica
# TYPE demigod_queue_depth gauge
demigod_queue_depth{model="tiny",replica="a"} 3.0
demigod_queue_depth{model="other",replica="a"} 7.0
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.5e+08
# HELP demigod_gpu_memory_used_bytes GPU memory in use
# TYPE demigod_gpu_memory_used_bytes gauge
demigod_gpu_memory_used_bytes{gpu="0"} 1.0e+09
demigod_gpu_memory_used_bytes{gpu="1"} 5.0e+08
"""


def test_a_workers_metrics_page_gives_its_signals() -> None:
    signals = parse_signals("http://w", "tiny", METRICS)
    assert signals == ReplicaSignals("http://w", 3.0, 2.5e8, 1.5e9)
    assert parse_signals("http://w", "tiny", "").gpu_memory_bytes is None


def test_averages_count_starting_replicas_as_idle() -> None:
    config = AutoscaleConfig(target_queue_depth=2.0, target_memory_bytes=10**9)
    ready = [ReplicaSignals("a", 6.0, 4e8, None), ReplicaSignals("b", 0.0, 2e8, None)]
    values = {m.name: m for m in metric_values(ready, replicas=3, config=config)}
    assert values["queue_depth"].value == 2.0  # 6 requests over 3 replicas, one starting
    assert values["memory"].value == 3e8  # memory: over those that report it
    assert "gpu_memory" not in values  # not targeted


def test_replica_sets_round_trip_and_a_bad_file_is_skipped(tmp_path: Path) -> None:
    publish(tmp_path, "tiny", ["http://127.0.0.1:9001/", "http://127.0.0.1:9002"])
    replica_set_path(tmp_path, "broken").write_text("{not json")
    sets = read_replica_sets(tmp_path)
    assert list(sets) == ["tiny"]
    assert sets["tiny"].urls == ("http://127.0.0.1:9001", "http://127.0.0.1:9002")
    assert read_replica_sets(tmp_path / "absent") == {}


def test_an_upstream_without_urls_needs_a_replicas_dir(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="replicas_dir"):
        Settings(upstreams=[{"name": "tiny", "urls": []}])
    Settings(upstreams=[{"name": "tiny"}], gateway={"replicas_dir": str(tmp_path)})


def test_autoscale_bounds_are_checked() -> None:
    with pytest.raises(ValidationError, match="min_replicas"):
        AutoscaleConfig(min_replicas=3, max_replicas=2)
