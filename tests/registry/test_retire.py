"""Retire to a real S3-protocol server (moto) and restore, with sha256 checks both ways."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from demigod.cli import app
from demigod.config import SnapshotConfig
from demigod.lifecycle.artefacts import local_path, sha256_file
from demigod.lifecycle.snapshots import SnapshotStore, parse_s3_uri
from demigod.registry import Registry, default_database_url
from demigod.registry.schema import VersionRow
from tests.conftest import S3Server


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output if code else result.stdout


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, s3_credentials: None
) -> Path:
    bucket = f"retired-{uuid.uuid4().hex[:12]}"
    SnapshotStore(
        SnapshotConfig(endpoint_url=s3_server.endpoint_url, bucket=bucket)
    ).client.create_bucket(Bucket=bucket)
    data = tmp_path / "data"
    monkeypatch.setenv("DEMIGOD_DATA_DIR", str(data))
    monkeypatch.setenv("DEMIGOD_SNAPSHOTS__ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("DEMIGOD_SNAPSHOTS__BUCKET", bucket)
    return data


def test_unused_versions_retire_to_s3_and_restore_verified(
    tiny_model: Path, data_dir: Path, s3_server: S3Server
) -> None:
    f16 = tiny_model.with_name("demigod-test.F16.gguf")
    cli("models", "register", "tiny", str(f16), "--json")
    cli("models", "register", "tiny", str(tiny_model), "--reference", "v1", "--json")
    assert json.loads(cli("models", "retire", "--dry-run", "--json")) == []  # all fresh
    with Registry(default_database_url(data_dir)) as registry:
        long_ago = datetime.now(UTC) - timedelta(days=120)
        with registry.engine.begin() as connection:  # as if neither was used for 120 days
            connection.execute(update(VersionRow).values(last_used_at=long_ago))
        original = registry.get_version("tiny", "v1")

    # v2 is `candidate`: an aliased version never retires by TTL.
    due = json.loads(cli("models", "retire", "--dry-run", "--json"))
    assert [(d["model"], d["version"]) for d in due] == [("tiny", "v1")]
    (retired,) = json.loads(cli("models", "retire", "--json"))
    assert retired["snapshot_uri"].startswith("s3://") and retired["deleted"]
    assert not local_path(original.storage_uri).exists()
    with Registry(default_database_url(data_dir)) as registry:
        assert registry.get_version("tiny", "v1").status == "retired"
        assert registry.events("tiny")[-1].action == "version.retired"
    assert "models restore" in cli("models", "promote", "tiny", "v1", "--to", "beta", code=1)
    assert "candidate" in cli("models", "retire", "tiny", "v2", code=1)

    restored = json.loads(cli("models", "restore", "tiny", "v1", "--json"))
    assert restored["status"] == "ready"
    assert sha256_file(local_path(restored["storage_uri"])) == original.sha256

    # A snapshot that changed in the bucket is refused on the way back.
    (again,) = json.loads(cli("models", "retire", "tiny", "v1", "--json"))
    bucket, key = parse_s3_uri(again["snapshot_uri"])
    store = SnapshotStore(SnapshotConfig(endpoint_url=s3_server.endpoint_url, bucket=bucket))
    store.client.put_object(Bucket=bucket, Key=key, Body=b"GGUF tampered")
    assert "expected" in cli("models", "restore", "tiny", "v1", code=1)
    with Registry(default_database_url(data_dir)) as registry:
        assert registry.get_version("tiny", "v1").status == "retired"
