"""The Windmill scripts (deploy/windmill/f/demigod), each called through its `main` as a
Windmill worker would, against a live mesh: a real `demigod serve` on the registry."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from demigod.config import SnapshotConfig
from demigod.lifecycle.artefacts import local_path
from demigod.lifecycle.register import register_artefact
from demigod.lifecycle.snapshots import SnapshotStore
from demigod.registry import CANDIDATE, STABLE, Registry, default_database_url
from demigod.registry.schema import VersionRow
from tests.conftest import S3Server, Server, start_server, stop_server

WINDMILL = Path(__file__).resolve().parents[2] / "deploy" / "windmill"
sys.path.insert(0, str(WINDMILL))  # Windmill resolves `f.demigod.cli` from its workspace root

from f.demigod import promote_canary_watch, retire_cron  # noqa: E402


@pytest.fixture
def worker_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """What a Windmill worker has: `demigod` on PATH and the deployment's DEMIGOD_*."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    data = tmp_path / "data"
    monkeypatch.setenv("DEMIGOD_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    return data


def register_tiny(data: Path, tiny_model: Path) -> tuple[str, str]:
    """The tiny model's F16 and Q4_0 as versions of `tiny`: (f16, q4) labels."""
    with Registry(default_database_url(data)) as registry:
        f16 = register_artefact(
            registry,
            data,
            "tiny",
            tiny_model.with_name("demigod-test.F16.gguf"),
            categories=["chat"],
        )
        q4 = register_artefact(registry, data, "tiny", tiny_model, reference=f16.label)
        return f16.label, q4.label


@pytest.fixture
def live_mesh(worker_environment: Path, tiny_model: Path, tmp_path: Path) -> Iterator[Server]:
    """`demigod serve` of the registry: tiny's Q4_0 stable, its F16 the candidate."""
    f16, q4 = register_tiny(worker_environment, tiny_model)
    with Registry(default_database_url(worker_environment)) as registry:
        registry.move_alias("tiny", STABLE, q4)
        registry.move_alias("tiny", CANDIDATE, f16)
    config = """
canary:
  store: registry
  steps: [50, 100]
  window_seconds: 3
  min_requests: 2
  probes_per_window: 1
  max_p95_increase_ratio: 20
  refresh_seconds: 0.5
observability:
  deep_probe_interval_seconds: 0
"""
    server = start_server(
        [], tmp_path, env={"DEMIGOD_DATA_DIR": str(worker_environment)}, config=config
    )
    yield server
    stop_server(server)


def test_promote_canary_watch_ends_with_the_version_stable(
    live_mesh: Server, tmp_path: Path
) -> None:
    stop = threading.Event()

    def traffic() -> None:
        body = {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 4}
        with httpx.Client(base_url=live_mesh.url, timeout=60) as client:
            while not stop.is_set():
                client.post("/v1/completions", json={**body, "user": uuid.uuid4().hex})

    clients = [threading.Thread(target=traffic, daemon=True) for _ in range(2)]
    for client in clients:
        client.start()
    try:
        result: dict[str, Any] = promote_canary_watch.main(
            model="tiny",
            version="v1",
            gateway_url=live_mesh.url,
            config=str(next(tmp_path.glob("mesh-*.yaml"))),
            force_reason="test: the toy model has no recorded evaluations",
        )
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert (result["canary"], result["weight"], result["stable"]) == ("promoted", 100, "v1")
    # 50 % from the start, then one healthy window completes it at 100 %
    assert [w["decision"]["action"] for w in result["windows"]] == ["complete"]
    with Registry(default_database_url(Path(os.environ["DEMIGOD_DATA_DIR"]))) as registry:
        assert registry.alias("tiny", STABLE).version == "v1"  # type: ignore[union-attr]


def test_promote_canary_watch_refuses_a_version_the_gateway_does_not_serve(
    live_mesh: Server, tmp_path: Path, tiny_model: Path
) -> None:
    other = tmp_path / "copy.gguf"
    other.write_bytes(tiny_model.read_bytes() + b"\0")  # other bytes: a third version
    with Registry(default_database_url(Path(os.environ["DEMIGOD_DATA_DIR"]))) as registry:
        v3 = register_artefact(registry, Path(os.environ["DEMIGOD_DATA_DIR"]), "tiny", other).label
    with pytest.raises(RuntimeError, match=f"does not serve tiny@{v3}"):
        promote_canary_watch.main(model="tiny", version=v3, gateway_url=live_mesh.url, config="")


def test_retire_cron_retires_what_the_mesh_no_longer_uses(
    worker_environment: Path,
    tiny_model: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = f"retired-{uuid.uuid4().hex[:12]}"
    snapshots = SnapshotConfig(endpoint_url=s3_server.endpoint_url, bucket=bucket)
    SnapshotStore(snapshots).client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("DEMIGOD_SNAPSHOTS__ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("DEMIGOD_SNAPSHOTS__BUCKET", bucket)
    f16, q4 = register_tiny(worker_environment, tiny_model)
    with Registry(default_database_url(worker_environment)) as registry:
        registry.move_alias("tiny", STABLE, q4)
        registry.move_alias("tiny", CANDIDATE, q4)
        with registry.engine.begin() as connection:  # neither used for 120 days...
            connection.execute(
                update(VersionRow).values(last_used_at=datetime.now(UTC) - timedelta(days=120))
            )
        reference = registry.get_version("tiny", f16)
    # ...until the mesh starts serving the stable one
    server = start_server([], tmp_path, env={"DEMIGOD_DATA_DIR": str(worker_environment)})
    try:
        due = retire_cron.main(config="", dry_run=True)
        assert [(v["model"], v["version"]) for v in due["versions"]] == [("tiny", f16)]
        done = retire_cron.main(config="")
        (retired,) = done["versions"]
        assert retired["version"] == f16 and retired["snapshot_uri"].startswith(f"s3://{bucket}/")
        assert not local_path(reference.storage_uri).exists()
        reply = httpx.post(
            f"{server.url}/v1/completions",
            json={"model": "tiny", "prompt": "still serving", "max_tokens": 2},
            timeout=60,
        )
        assert reply.status_code == 200 and f"version={q4}" in reply.headers["x-demigod-route"]
        assert retire_cron.main(config="", dry_run=True)["count"] == 0
    finally:
        stop_server(server)
