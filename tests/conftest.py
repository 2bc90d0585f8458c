"""Shared fixtures: one tiny model per test run, and real servers on free ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from demigod.ops.postgres_cluster import PostgresCluster, PostgresUnavailableError
from demigod.processes import ServerNotReadyError, free_port, wait_until_ready

SERVER_START_TIMEOUT = 60.0
PROJECT_DATA_DIR = Path(__file__).resolve().parents[1] / "var"


@pytest.fixture(scope="session")
def toolkit_data_dir() -> Path:
    """The project's data dir: the converter toolkit is fetched once there, not per run."""
    return PROJECT_DATA_DIR


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, toolkit_data_dir: Path) -> Path:
    """A random-init Mamba, through the real convert → quantize pipeline (seconds)."""
    from demigod.lifecycle.demo import build_test_model

    return build_test_model(tmp_path_factory.mktemp("tiny-model"), data_dir=toolkit_data_dir)


def require_binary(name: str) -> str:
    """The path of the `name` executable. Skips the test when it is missing, except under
    CI=true, where `.ci/run` installs it and a missing binary is a failure."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian packages: see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def running_prometheus(config_file: Path, workdir: Path, timeout: float = 60.0) -> Iterator[str]:
    """A real Prometheus on `config_file`, its data and log under `workdir`; yields its URL
    once ready, stops it after."""
    binary = require_binary("prometheus")
    port = free_port()
    log = workdir / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(process, f"{url}/-/ready", timeout=timeout, interval=0.5)
        except ServerNotReadyError as exc:
            pytest.fail(f"prometheus {exc}:\n{log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL server on loopback for the run (fsync off: tests only).
    Skips without the Debian package, except under CI=true, where it fails."""
    try:
        cluster = PostgresCluster()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc}: see .ci/run")
        pytest.skip(f"{exc}: see .ci/run")
    cluster.init()
    cluster.start({"fsync": "off"})
    yield cluster
    cluster.remove()


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    models: list[str],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    config: str | None = None,
    timeout: float = SERVER_START_TIMEOUT,
) -> Server:
    """`demigod serve` in a subprocess, as a user runs it; returns once /readyz says ready."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    command = [sys.executable, "-m", "demigod", "serve", "--port", str(port)]
    for model in models:
        command += ["--model", model]
    environment = {
        **os.environ,
        # One decode thread: the test client shares these two cores (see default_threads).
        "DEMIGOD_ENGINE__N_THREADS": "1",
        "DEMIGOD_DATA_DIR": str(tmp_path / "data"),
        # The suite's servers are the local demo: no authentication (tests/security turn it on).
        "DEMIGOD_SECURITY__AUTH": "off",
        **(env or {}),
    }
    if config is not None:
        config_file = tmp_path / f"mesh-{port}.yaml"
        config_file.write_text(config)
        command += ["--config", str(config_file)]
    process = subprocess.Popen(
        command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=environment, cwd=tmp_path
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{url}/readyz", timeout=timeout)
    except ServerNotReadyError as exc:
        raise RuntimeError(f"server {exc}:\n{log.read_text()}") from exc
    return Server(url, process, log)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the whole run, serving the tiny model as `tiny` (and `auto`)."""
    running = start_server([f"tiny={tiny_model}"], tmp_path_factory.mktemp("server"))
    yield running
    stop_server(running)


class FamilyModels:
    """Tiny random-init models of each architecture family, built once per run on demand:
    `hf(family)` the HF folder, `gguf(family)` its Q4_0 through the real convert/quantize."""

    def __init__(self, root: Path, toolkit: Path, mamba_gguf: Path | None = None) -> None:
        self._root, self._toolkit = root, toolkit
        if mamba_gguf is not None:  # the suite's tiny model is a Mamba built the same way
            folder = root / "mamba"
            folder.mkdir(parents=True, exist_ok=True)
            for suffix, source in (
                ("hf", mamba_gguf.parent / "demigod-test-hf"),
                ("mamba.F16.gguf", mamba_gguf.parent / "demigod-test.F16.gguf"),
                ("mamba.Q4_0.gguf", mamba_gguf),
            ):
                (folder / suffix).symlink_to(source)

    def hf(self, family: str) -> Path:
        from demigod.lifecycle.tiny_models import build_tiny

        folder = self._root / family / "hf"
        if not (folder / "config.json").is_file():
            build_tiny(family, folder, self._toolkit)
        return folder

    def f16(self, family: str) -> Path:
        from demigod.lifecycle.convert import convert_hf_to_gguf

        path = self._root / family / f"{family}.F16.gguf"
        if not path.is_file():
            convert_hf_to_gguf(self.hf(family), path, self._toolkit)
        return path

    def gguf(self, family: str) -> Path:
        from demigod.lifecycle.quantize import quantize_gguf

        path = self._root / family / f"{family}.Q4_0.gguf"
        if not path.is_file():
            quantize_gguf(self.f16(family), path, "Q4_0", threads=1)
        return path


@pytest.fixture(scope="session")
def family_models(
    tmp_path_factory: pytest.TempPathFactory, toolkit_data_dir: Path, tiny_model: Path
) -> FamilyModels:
    """Tiny models of every family in demigod.lifecycle.architectures (see FamilyModels)."""
    from demigod.lifecycle.toolkit import ensure_toolkit

    toolkit = ensure_toolkit(toolkit_data_dir)
    return FamilyModels(tmp_path_factory.mktemp("families"), toolkit, mamba_gguf=tiny_model)


@dataclass
class S3Server:
    """moto's standalone S3-protocol server; `endpoint_url` is what clients point at."""

    endpoint_url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-protocol server (moto's, from PyPI) on a free port, in its own process."""
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{url}/moto-api/", timeout=SERVER_START_TIMEOUT)
    except ServerNotReadyError as exc:
        raise RuntimeError(f"moto server {exc}:\n{log.read_text()}") from exc
    yield S3Server(url, process)
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials in the environment, where boto3 (and so demigod) reads them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "demigod-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "demigod-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
