"""`demigod ops drill`, as an operator runs it: a real destroy-and-restore with the backup
agent, Litestream or PostgreSQL's WAL archive, and a restored mesh answering again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from demigod.ops.postgres_cluster import PostgresCluster
from tests.conftest import S3Server

DRILL_TIMEOUT = 900


def _drill(tmp_path: Path, model: Path, config: dict[str, Any], *args: str) -> dict[str, Any]:
    config_file = tmp_path / "mesh.yaml"
    config_file.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), **config}))
    command = [sys.executable, "-m", "demigod", "ops", "drill", "--json", "--duration", "6"]
    done = subprocess.run(
        [*command, "--model", str(model), "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=DRILL_TIMEOUT,
        env={**os.environ, "DEMIGOD_ENGINE__N_THREADS": "1"},
        check=False,
    )
    assert done.stdout, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if report["ok"] else 1)
    return report


def _check(report: dict[str, Any]) -> None:
    assert report["ok"], report
    assert report["written"]["registry_events"] > 0
    assert report["written"]["audited_requests"] > 0
    assert report["write_failures"] == 0
    # What was lost is the newest writes only, and less than the target's worth of them.
    assert report["lost_is_newest"]
    assert 0 <= report["rpo_seconds"] <= report["targets"]["rpo_seconds"]
    for kind, lost in report["lost"].items():
        assert len(lost) < report["written"][kind], kind
    assert report["audit_verified"] and report["gap_recorded"]
    # The primary's files were deleted: the restored mesh serves a file from the backup.
    assert report["restore"]["models"]["fetched"], report["restore"]["models"]
    assert report["mttr_seconds"] > 0


def test_drill_sqlite_registry_to_s3(
    tmp_path: Path, tiny_model: Path, s3_server: S3Server, s3_credentials: None
) -> None:
    import boto3

    bucket = f"drill-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=s3_server.endpoint_url).create_bucket(Bucket=bucket)
    config = {"snapshots": {"endpoint_url": s3_server.endpoint_url, "bucket": bucket}}
    report = _drill(tmp_path, tiny_model, config)
    _check(report)
    assert report["registry"] == "sqlite"
    assert report["destination"].startswith(f"s3://{bucket}/demigod/backups/drill-")
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # its copy is removed


def test_drill_postgres_registry_to_a_directory(
    tmp_path: Path, tiny_model: Path, postgres: PostgresCluster
) -> None:
    # The PostgreSQL server's OS user archives WAL there: a folder it can reach (pytest's
    # tmp_path is private to this user).
    backups = Path(tempfile.mkdtemp(prefix="demigod-drill-backups-"))
    backups.chmod(0o755)
    # Segments close every 2 s, so a 6 s drill keeps some of its writes.
    config = {"ops": {"backup": {"dir": str(backups), "pg_archive_timeout_seconds": 2}}}
    try:
        report = _drill(tmp_path, tiny_model, config, "--postgres")
        _check(report)
        assert report["registry"] == "postgresql"
        assert report["destination"].startswith(str(backups / "drill-"))
        assert report["restore"]["registry"]["wal_files"] > 0
        assert list(backups.iterdir()) == []  # its copy is removed, folders included
    finally:
        shutil.rmtree(backups, ignore_errors=True)
