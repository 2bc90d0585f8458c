"""`demigod ops backup` then `demigod ops restore`, as an operator runs them: real state
made through the CLI and a gateway (a registry with a stable and a candidate version, an
API key, a canary half-way, audited requests), a one-shot backup to a directory, the data
dir deleted, a restore into a fresh one, and the restored mesh checked through the CLI and
a gateway started on it. Then model files the backup holds corrupt: fetched from the
snapshot store where a retirement put one, else refused with what each source said."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from demigod.lifecycle.artefacts import local_path
from demigod.security.audit.layout import list_segments
from demigod.security.audit.records import AuditRecord
from tests.conftest import S3Server, Server, start_server, stop_server

CLI_TIMEOUT = 300
NODE = "gw-1"
KEY_TENANT = "acme"
CANARY_TIMEOUT = 120


def _config(home: Path, name: str, **extra: Any) -> Path:
    """A mesh.yaml whose data dir (canary state inside it) is `home/name`, backing up to
    `home/backups`; the canary's window is long, so a rollout stays half-way."""
    data = home / name
    config = {
        "data_dir": str(data),
        "engine": {"n_threads": 1, "slots": 2},
        "audit": {"node": NODE},
        "canary": {
            "state_file": str(data / "canary.json"),
            "steps": [50, 100],
            "window_seconds": 600,
            "probes_per_window": 1,
            "refresh_seconds": 0.5,
        },
        "observability": {"deep_probe_interval_seconds": 0},
        "ops": {"backup": {"dir": str(home / "backups")}},
        **extra,
    }
    path = home / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _environment() -> dict[str, str]:
    # One decode thread: the suite shares two cores; authentication as deployed (on).
    return {**os.environ, "DEMIGOD_ENGINE__N_THREADS": "1", "DEMIGOD_SECURITY__AUTH": "required"}


def demigod(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "demigod", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=_environment(),
        cwd=config.parent,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"demigod {' '.join(args)}:\n{done.stderr[-3000:]}"
    return done


def demigod_json(config: Path, *args: str) -> Any:
    return json.loads(demigod(config, *args, "--json").stdout)


def _serve(config: Path) -> Server:
    settings = yaml.safe_load(config.read_text())
    home = config.parent / f"{config.stem}-gateway"
    home.mkdir(exist_ok=True)
    return start_server(
        [],
        home,
        env={"DEMIGOD_DATA_DIR": settings["data_dir"], "DEMIGOD_SECURITY__AUTH": "required"},
        config=config.read_text(),
        timeout=180,
    )


def _complete(server: Server, key: str | None, request_id: str) -> httpx.Response:
    headers = {"x-request-id": request_id}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    body = {"model": "tiny", "prompt": "once upon", "max_tokens": 2, "user": request_id}
    return httpx.post(f"{server.url}/v1/completions", json=body, headers=headers, timeout=60)


def _register(config: Path, tiny_model: Path) -> tuple[str, str]:
    """tiny's F16 as v1, promoted to stable; its Q4_0 as v2, the candidate."""
    stable = demigod_json(
        config, "models", "register", "tiny", str(tiny_model.with_name("demigod-test.F16.gguf"))
    )["label"]
    demigod(config, "models", "promote", "tiny", stable, "--force", "--reason", "test mesh")
    candidate = demigod_json(config, "models", "register", "tiny", str(tiny_model))["label"]
    return stable, candidate


def _canary_half_way(config: Path, server: Server) -> None:
    """`demigod canary start` puts the candidate at the first step; the host is lost
    (its controller killed) during the first analysis window."""
    start = ["canary", "start", "tiny", "--url", server.url, "--config", str(config)]
    controller = subprocess.Popen(
        [sys.executable, "-m", "demigod", *start],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment(),
        cwd=config.parent,
    )
    try:
        deadline = time.monotonic() + CANARY_TIMEOUT
        while time.monotonic() < deadline:
            assert controller.poll() is None, "demigod canary start exited early"
            states = demigod_json(config, "canary", "status")
            if states and states[0]["status"] == "running":
                return
            time.sleep(0.5)
        raise AssertionError("the canary never started")
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait()


def _records(data_dir: Path, node: str) -> list[AuditRecord]:
    return [
        AuditRecord.from_line(line)
        for _, path in list_segments(data_dir / "audit" / node)
        for line in path.read_bytes().splitlines()
    ]


def _versions(config: Path) -> dict[str, dict[str, Any]]:
    return {v["label"]: v for v in demigod_json(config, "models", "show", "tiny")["versions"]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_restore_brings_back_keys_canary_audit_and_models(tmp_path: Path, tiny_model: Path) -> None:
    primary = _config(tmp_path, "primary")
    stable, candidate = _register(primary, tiny_model)
    created = demigod_json(primary, "keys", "create", "--tenant", KEY_TENANT, "--name", "ci")
    key = created["key"]

    gateway = _serve(primary)
    try:
        assert _complete(gateway, None, "anonymous").status_code == 401
        for n in range(3):
            reply = _complete(gateway, key, f"before-loss-{n}")
            assert reply.status_code == 200, reply.text
        _canary_half_way(primary, gateway)
        backup = subprocess.run(
            [sys.executable, "-m", "demigod", "ops", "backup", "--json", "--config", str(primary)],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            env=_environment(),
            check=False,
        )
        assert backup.returncode == 0, backup.stderr[-3000:]
        copied = json.loads(backup.stdout)
    finally:
        gateway.process.kill()  # the host is lost: no clean shutdown
        gateway.process.wait()
    assert copied["errors"] == []
    assert set(copied["state_files"]) == {
        "audit-signing-key.pem",
        "api-keys.json",
        "canary.json",
        "canary.events",
    }
    assert sorted(copied["models"]["copied"]) == [f"tiny@{stable}", f"tiny@{candidate}"]
    shutil.rmtree(tmp_path / "primary")

    restored = _config(tmp_path, "restored")
    done = demigod(restored, "ops", "restore", "--json")
    report = json.loads(done.stdout)
    assert report["source"] == str(tmp_path / "backups")
    assert set(report["state_files"]) == set(copied["state_files"])
    assert report["registry"]["kind"] == "sqlite"
    assert report["registry"]["from"].startswith("registry/sqlite-snapshots/")
    # The primary's model files went with it: each came back from the backup.
    assert report["models"]["verified"] == report["models"]["missing"] == []
    assert report["models"]["bad_copies"] == []
    assert sorted(report["models"]["fetched"]) == sorted(
        f"tiny@{label} <- {tmp_path / 'backups'}/models/{_versions(restored)[label]['sha256']}"
        for label in (stable, candidate)
    )
    # The rollout came back half-way, with no controller: the operator is told.
    [unsteered] = report["pending"]
    assert "the canary of tiny was running" in unsteered and "canary abort tiny" in unsteered
    assert "still to do:" in done.stderr

    # API keys: the key's hash is back, and `keys list` shows it.
    restored_data = tmp_path / "restored"
    keys_file = json.loads((restored_data / "security" / "api-keys.json").read_text())
    assert hashlib.sha256(key.encode()).hexdigest() in json.dumps(keys_file)
    assert [k["id"] for k in demigod_json(restored, "keys", "list")] == [created["id"]]

    # Canary state: the same versions at the same weight, still running.
    [canary] = demigod_json(restored, "canary", "status")
    assert (canary["model"], canary["stable"], canary["candidate"]) == ("tiny", stable, candidate)
    assert (canary["weight"], canary["status"]) == (50, "running")
    refused = demigod(restored, "canary", "start", "tiny", check=False)
    assert refused.returncode != 0
    assert "already running at 50%" in " ".join(refused.stderr.split())

    # Model files: where the registry now says, hashing to what it recorded.
    versions = _versions(restored)
    for label in (stable, candidate):
        path = local_path(versions[label]["storage_uri"])
        assert path.is_relative_to(restored_data), path
        assert _sha256(path) == versions[label]["sha256"]

    # The audit log: the requests before the loss, then the gap, and it verifies.
    records = _records(restored_data, NODE)
    request_ids = {r.data.get("request_id") for r in records if r.kind == "request"}
    assert {f"before-loss-{n}" for n in range(3)} <= request_ids
    gap = records[-1]
    assert gap.kind == "audit.restore"
    assert gap.data["backup"] == str(tmp_path / "backups")
    assert gap.data["restored_through_seq"] == records[-2].seq
    verified = demigod_json(restored, "audit", "verify")
    assert verified["ok"], verified

    # A gateway on the restored data: the key authenticates, the canary weight applies,
    # the chain goes on and still verifies.
    gateway = _serve(restored)
    try:
        assert _complete(gateway, None, "anonymous-after").status_code == 401
        for n in range(4):
            reply = _complete(gateway, key, f"after-restore-{n}")
            assert reply.status_code == 200, reply.text
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=30).text
        assert f'demigod_canary_weight{{model="tiny",version="{candidate}"}} 0.5' in metrics
    finally:
        stop_server(gateway)
    after = _records(restored_data, NODE)
    assert [r.kind for r in after[: len(records)]] == [r.kind for r in records]
    assert "after-restore-0" in {r.data.get("request_id") for r in after}
    assert demigod_json(restored, "audit", "verify")["ok"]


def test_a_corrupt_backup_copy_is_fetched_from_the_snapshot_or_refused(
    tmp_path: Path, tiny_model: Path, s3_server: S3Server, s3_credentials: None
) -> None:
    import boto3

    bucket = f"restore-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=s3_server.endpoint_url).create_bucket(Bucket=bucket)
    snapshots = {"snapshots": {"endpoint_url": s3_server.endpoint_url, "bucket": bucket}}
    primary = _config(tmp_path, "primary", **snapshots)
    stable, candidate = _register(primary, tiny_model)
    # The candidate goes to the snapshot store and back: the registry keeps its snapshot.
    demigod(primary, "models", "promote", "tiny", stable, "--to", "candidate")
    retired = demigod_json(primary, "models", "retire", "tiny", candidate)
    [snapshot_uri] = [r["snapshot_uri"] for r in retired]
    demigod(primary, "models", "restore", "tiny", candidate)
    assert demigod_json(primary, "ops", "backup")["errors"] == []
    shutil.rmtree(tmp_path / "primary")

    # Every model copy in the backup is damaged: a changed byte.
    versions: dict[str, str] = {}
    for copy in (tmp_path / "backups" / "models").iterdir():
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0xFF
        copy.write_bytes(bytes(data))
        versions[copy.name] = str(copy)

    restored = _config(tmp_path, "restored", **snapshots)
    done = demigod(restored, "ops", "restore", "--json", check=False)
    assert done.returncode == 1, done.stderr[-3000:]
    models = json.loads(done.stdout)["models"]
    sha = {label: v["sha256"] for label, v in _versions(restored).items()}
    stable_copy = f"{tmp_path / 'backups'}/models/{sha[stable]}"
    candidate_copy = f"{tmp_path / 'backups'}/models/{sha[candidate]}"
    assert set(versions.values()) == {stable_copy, candidate_copy}
    # The retired-and-restored version comes from its snapshot, verified.
    assert models["fetched"] == [f"tiny@{candidate} <- {snapshot_uri}"]
    path = local_path(_versions(restored)[candidate]["storage_uri"])
    assert _sha256(path) == sha[candidate]
    # The other has nowhere good to come from: refused, saying why for each source.
    assert models["missing"] == [
        f"tiny@{stable}: the backup's copy {stable_copy} does not match the registry's "
        "sha256; no snapshot (it was never retired)"
    ]
    assert sorted(models["bad_copies"]) == sorted(
        f"tiny@{label}: the backup's copy {copy} does not match the registry's sha256"
        for label, copy in ((stable, stable_copy), (candidate, candidate_copy))
    )
    stderr = " ".join(done.stderr.split())  # rich wraps long lines
    assert f"model file missing: tiny@{stable}: the backup's copy" in stderr
    assert f"bad copy: tiny@{candidate}: the backup's copy" in stderr
    # No unverified file was left in the restored store.
    store = tmp_path / "restored" / "store" / "tiny"
    assert [p.name for p in store.iterdir() if sha[stable][:16] in p.name] == []

    # Later the restored file is lost too, and so is its snapshot: `--models-only` (the
    # model step alone) names both failures rather than saying it has no copy at all.
    path.unlink()
    bucket_key = snapshot_uri.removeprefix(f"s3://{bucket}/")
    boto3.client("s3", endpoint_url=s3_server.endpoint_url).delete_object(
        Bucket=bucket, Key=bucket_key
    )
    again = demigod(restored, "ops", "restore", "--models-only", "--json", check=False)
    assert again.returncode == 1, again.stderr[-3000:]
    [lost] = [m for m in json.loads(again.stdout)["missing"] if m.startswith(f"tiny@{candidate}")]
    assert lost.startswith(
        f"tiny@{candidate}: the backup's copy {candidate_copy} does not match the registry's "
        f"sha256; snapshot: downloading {snapshot_uri} failed"
    ), lost
