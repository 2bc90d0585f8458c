"""kill -9 in the middle of a lifecycle step: nothing half-registered, no partial file
under a final name, and a re-run finishes cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from demigod.cli import app
from demigod.lifecycle.artefacts import PARTIAL_MARK, local_path, sha256_file
from demigod.registry import Registry, default_database_url

pytestmark = pytest.mark.slow


def quantize_process(data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "demigod", "models", "quantize", "tiny", "v1", "--type", "Q8_0"],
        env={**os.environ, "DEMIGOD_DATA_DIR": str(data_dir), "DEMIGOD_ENGINE__N_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate: object, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.005)


def assert_consistent(data_dir: Path) -> None:
    """Every registered version's file is there with its sha256; every file in the store
    under a final name holds the content its name says (names are sha256 prefixes)."""
    with Registry(default_database_url(data_dir)) as registry:
        for version in registry.list_versions("tiny"):
            path = local_path(version.storage_uri)
            assert path.is_file() and sha256_file(path) == version.sha256, version
    for stored in (data_dir / "store").rglob("*"):
        if stored.is_file() and PARTIAL_MARK not in stored.name:
            assert sha256_file(stored).startswith(stored.name.split(".")[0]), stored


def test_a_quantize_killed_at_any_point_leaves_nothing_half_done(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DEMIGOD_DATA_DIR", str(data_dir))
    f16 = tiny_model.with_name("demigod-test.F16.gguf")
    result = CliRunner().invoke(app, ["models", "register", "tiny", str(f16), "--json"])
    assert result.exit_code == 0, result.output
    store = data_dir / "store" / "tiny"
    work = data_dir / "work"

    def quantizing() -> bool:  # the quantizer is writing its partial output
        return any(PARTIAL_MARK in p.name for p in work.rglob("*"))

    def importing() -> bool:  # the result is going into (or just reached) the store
        return len(list(store.iterdir())) > 1

    killed_at = []
    for moment in (quantizing, importing):
        process = quantize_process(data_dir)
        wait_for(moment, process)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed_at.append(moment.__name__)
        process.wait()
        assert_consistent(data_dir)
    assert killed_at, "the step finished before it could be killed"

    finished = quantize_process(data_dir)
    assert finished.wait(timeout=120) == 0
    assert_consistent(data_dir)
    with Registry(default_database_url(data_dir)) as registry:
        versions = registry.list_versions("tiny")
        assert [(v.label, v.quantization) for v in versions] == [("v1", "F16"), ("v2", "Q8_0")]
        assert registry.get_version("tiny", "candidate").label == "v2"
    # The re-run swept what the killed runs left behind.
    assert not [p for p in work.rglob("*") if PARTIAL_MARK in p.name]
    assert not [p for p in store.iterdir() if PARTIAL_MARK in p.name]
    again = CliRunner().invoke(
        app, ["models", "quantize", "tiny", "v1", "--type", "Q8_0", "--json"]
    )
    assert json.loads(again.stdout)["label"] == "v2"  # the same content: the same version
