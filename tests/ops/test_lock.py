"""`demigod ops lock` writes the registry's served aliases; drift finds an alias moved later."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import yaml

from demigod.processes import free_port
from demigod.registry import CANDIDATE, STABLE, Registry


def demigod(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demigod", *args], cwd=cwd, capture_output=True, text=True
    )


def add_version(registry: Registry, model: str, path: Path, content: bytes) -> str:
    path.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    return registry.add_version(
        model, sha256=digest, storage_uri=str(path), quantization="Q4_0", size_bytes=len(content)
    ).label


def test_lock_then_an_alias_moved_behind_gits_back_is_drift(tmp_path: Path) -> None:
    with Registry.open(None, tmp_path / "var") as registry:
        registry.ensure_model("chat", categories=["chat"])
        v1 = add_version(registry, "chat", tmp_path / "a.gguf", b"first")
        v2 = add_version(registry, "chat", tmp_path / "b.gguf", b"second")
        registry.move_alias("chat", STABLE, v1)
        registry.move_alias("chat", CANDIDATE, v2)
    # nothing listens there: the gateway is unreachable, the registry is still compared
    (tmp_path / "mesh.yaml").write_text(f"data_dir: var\nport: {free_port()}\n")

    written = demigod("ops", "lock", "--json", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    lock = yaml.safe_load((tmp_path / "models.lock.yaml").read_text())
    assert lock["models"]["chat"] == {
        "candidate": {"version": v2, "sha256": hashlib.sha256(b"second").hexdigest()},
        "stable": {"version": v1, "sha256": hashlib.sha256(b"first").hexdigest()},
    }

    clean = demigod("ops", "drift", "--json", cwd=tmp_path)
    kinds = {d["kind"] for d in json.loads(clean.stdout)["drift"]}
    assert kinds == {"unreachable"}, clean.stdout

    with Registry.open(None, tmp_path / "var") as registry:
        registry.move_alias("chat", STABLE, v2)
    moved = demigod("ops", "drift", "--json", cwd=tmp_path)
    assert moved.returncode == 1
    alias = [d for d in json.loads(moved.stdout)["drift"] if d["kind"] == "alias"]
    assert [(d["subject"], d["declared"][:2], d["running"][:2]) for d in alias] == [
        ("chat@stable", v1, v2)
    ]


def test_a_missing_or_malformed_lock_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = demigod("ops", "drift", cwd=tmp_path)
    assert missing.returncode == 2 and "demigod ops lock" in missing.stderr
    (tmp_path / "models.lock.yaml").write_text("models:\n  chat:\n    stable: {version: v1}\n")
    malformed = demigod("ops", "drift", cwd=tmp_path)
    assert malformed.returncode == 2 and "sha256" in malformed.stderr
