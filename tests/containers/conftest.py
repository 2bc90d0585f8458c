"""Real containers: the images built once per run from containers/*.Containerfile, and the
deployment `demigod deploy render podman` writes, started with `podman kube play`.

Everything started here carries a name unique to the run and is removed at the end, also
when a test fails (pods, containers, named volumes).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from demigod.registry import STABLE, Registry
from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
# This machine's Podman needs runc and lower ulimits (containers/containers.conf says why).
CONTAINERS_CONF = ROOT / "containers" / "containers.conf"
BUILD_TIMEOUT = 3600  # a cold build compiles llama.cpp; a cached one takes seconds
READY_TIMEOUT = 180.0
# Two demo-named models made from the suite's tiny model: one replica of code, two of chat.
MODELS = {"demigod-code": ["code"], "demigod-chat": ["chat"]}
REPLICAS = {"demigod-chat": 2}


def podman_environment() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, timeout: float = 300, merged: bool = False) -> str:
    """Run `podman ARGS` with this machine's containers.conf; returns stdout (and stderr
    after it when `merged`: `podman logs` writes the container's stderr there)."""
    done = subprocess.run(
        ["podman", *args],
        env=podman_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr if merged else done.stdout


@dataclass(frozen=True)
class Images:
    gateway: str
    worker: str
    build_seconds: float
    sbom_dir: Path  # one CycloneDX JSON per image


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    """The gateway and worker-cpu images, built once per run by `make images`' script
    (the base rootfs and the llama-cpp-python wheel come from ~/.cache/demigod when there)."""
    for binary in ("podman", "buildah", "debootstrap", "runc", "catatonit"):
        require_binary(binary)
    started = time.monotonic()
    sbom_dir = tmp_path_factory.mktemp("sbom")
    done = subprocess.run(
        [str(ROOT / "containers" / "build-images"), "gateway", "worker-cpu"],
        cwd=ROOT,
        env={**podman_environment(), "SBOM_DIR": str(sbom_dir)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"image build failed:\n{done.stdout}\n{done.stderr[-6000:]}")
    print(done.stdout, file=sys.stderr)  # image sizes and build times, for the log
    tags = dict(line.split("\t")[0].rsplit(":", 1) for line in done.stdout.splitlines()[1:])
    return Images(
        gateway=f"localhost/demigod-gateway:{tags['localhost/demigod-gateway']}",
        worker=f"localhost/demigod-worker-cpu:{tags['localhost/demigod-worker-cpu']}",
        build_seconds=time.monotonic() - started,
        sbom_dir=sbom_dir,
    )


def free_port_run(count: int) -> int:
    """The first of `count` consecutive loopback ports nothing listens on now."""
    for _ in range(200):
        first = 20000 + secrets.randbelow(30000)
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


def register_models(data_dir: Path, gguf: Path) -> None:
    """The registry a deployment is rendered from: each model's stable version is a copy of
    the tiny model in the registry's store."""
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    with Registry.open(None, data_dir) as registry:
        for name, categories in MODELS.items():
            stored = data_dir / "store" / name / f"{digest[:16]}.gguf"
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_bytes(gguf.read_bytes())
            registry.ensure_model(name, categories=categories)
            version = registry.add_version(
                name,
                sha256=digest,
                storage_uri=stored.as_uri(),
                quantization="Q4_0",
                size_bytes=stored.stat().st_size,
            )
            registry.move_alias(name, STABLE, version.label)


@dataclass
class Deployment:
    name: str
    pod_file: Path
    gateway: str  # base URL
    worker_urls: dict[str, list[str]]  # model -> replica base URLs
    data_dir: Path

    def containers(self) -> list[str]:
        """Names of this deployment's containers (infra containers left out)."""
        out = podman(
            "ps", "-a", "--filter", f"label=app.kubernetes.io/part-of={self.name}",
            "--format", "{{.Names}}",
        )  # fmt: skip
        return [name for name in out.split() if not name.endswith("-infra")]

    def container_of(self, url: str) -> str:
        """The worker container serving replica `url`."""
        for model, urls in self.worker_urls.items():
            if url in urls:
                return f"{self.name}-worker-{model}-{urls.index(url)}-worker"
        raise KeyError(url)

    def play(self) -> None:
        podman("kube", "play", str(self.pod_file))
        wait_ready(self)

    def down(self) -> None:
        podman("kube", "down", str(self.pod_file), check=False)


MESH_CONFIG = """
engine:
  n_threads: 1
  state_cache: {{ram_bytes: 16777216}}
gateway:
  health_interval_seconds: 0.25
  health_timeout_seconds: 0.5
  breaker_open_seconds: 1.0
  request_timeout_seconds: 30
security:
  auth: "off"
audit:
  checkpoint_every_records: 10
placement:
  node_classes:
    - {{name: this-host, memory_bytes: 2147483648, cpu_cores: 1}}
data_dir: {data_dir}
"""


def rendered_upstreams(pod_file: Path) -> dict[str, list[str]]:
    """Each model's replica URLs, as the rendered gateway container is told them."""
    pods = list(yaml.safe_load_all(pod_file.read_text()))
    [gateway] = [p for p in pods if p["metadata"]["name"].endswith("-gateway")]
    env = {e["name"]: e["value"] for e in gateway["spec"]["containers"][0]["env"]}
    return {u["name"]: u["urls"] for u in json.loads(env["DEMIGOD_UPSTREAMS"])}


def wait_ready(deployment: Deployment) -> None:
    """Until the gateway answers ready and sees every worker replica up."""
    expected = sum(len(urls) for urls in deployment.worker_urls.values())
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            metrics = httpx.get(f"{deployment.gateway}/metrics", timeout=2).text
            up = [
                line
                for line in metrics.splitlines()
                if line.startswith("demigod_upstream_up{") and line.endswith(" 1.0")
            ]
            if len(up) == expected:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    logs = {
        name: podman("logs", "--tail", "30", name, check=False, merged=True)[-3000:]
        for name in deployment.containers()
    }
    raise RuntimeError(f"deployment not ready in {READY_TIMEOUT}s:\n{json.dumps(logs, indent=1)}")


@pytest.fixture(scope="module")
def deployment(
    images: Images, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """`demigod deploy render podman` of a registry holding the two models, played with
    `podman kube play`; downed and its volumes removed afterwards, whatever happened."""
    root = tmp_path_factory.mktemp("podman")
    data_dir = root / "data"
    register_models(data_dir, tiny_model)
    config = root / "mesh.yaml"
    config.write_text(MESH_CONFIG.format(data_dir=data_dir))
    name = f"dgtest-{secrets.token_hex(3)}"
    gateway_port = free_port_run(1)
    worker_port = free_port_run(3)
    out = root / "rendered"
    subprocess.run(
        [
            sys.executable, "-m", "demigod", "deploy", "render", "podman", "--out", str(out),
            "--config", str(config), "--name", name, "--port", str(gateway_port),
            "--worker-port", str(worker_port), "--gateway-image", images.gateway,
            "--worker-image", images.worker,
            *[f"--replicas={model}={count}" for model, count in REPLICAS.items()],
        ],
        check=True,
        cwd=root,
    )  # fmt: skip
    worker_urls = rendered_upstreams(out / "demigod.yaml")
    running = Deployment(name, out / "demigod.yaml", f"http://127.0.0.1:{gateway_port}",
                         worker_urls, data_dir)  # fmt: skip
    try:
        running.play()
        yield running
    finally:
        running.down()
        volumes = podman("volume", "ls", "--format", "{{.Name}}", check=False).split()
        for volume in volumes:
            if volume.startswith(f"{name}-"):
                podman("volume", "rm", "--force", volume, check=False)
