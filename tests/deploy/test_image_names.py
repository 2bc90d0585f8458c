"""One naming scheme for the container images (demigod.deploy.images): what `make images`
builds, what the release workflow pushes, what the deploy workflow applies and what every
renderer references agree.

The workflows' steps are run as written, with `sudo` a shell function that records the
command it was given instead of running it (nothing is built or pushed here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from demigod import __version__
from demigod.cli import app
from demigod.config import load_settings
from demigod.deploy.images import COMPONENTS, WORKER_CPU, ImageSet, image_name
from tests.conftest import require_binary
from tests.deploy.test_kubernetes import MESH

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ENVIRONMENTS = ("dev", "stage", "prod")
REGISTRY = "harbor.example.com/team"
SHA = "0123456789ab"
# Stands in for sudo: appends the command it would run to $CALLS, runs nothing. It reads
# its stdin to the end, as `buildah login --password-stdin` does: a pipe into it closed
# early would kill the writer (SIGPIPE, exit 141 under pipefail).
RECORD_SUDO = 'sudo() { echo "$*" >> "$CALLS"; cat > /dev/null; }\n'


def _steps(workflow: str, job: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return list(document["jobs"][job]["steps"])


def _step(workflow: str, job: str, starts: str) -> dict[str, Any]:
    [step] = [s for s in _steps(workflow, job) if s.get("name", "").startswith(starts)]
    return step


def _run_recorded(script: str, env: dict[str, str], cwd: Path) -> list[list[str]]:
    calls = cwd / "calls"
    calls.write_text("")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", RECORD_SUDO + script],
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **env, "CALLS": str(calls)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line.split() for line in calls.read_text().splitlines()]


def _pushed_by_release(component: str, registry: str, tmp_path: Path) -> set[str]:
    """The image references release.yml's images job pushes for `component`."""
    env = {"COMPONENT": component, "VERSION": __version__, "SHA": SHA}
    env |= {"IMAGE_REGISTRY": registry, "REGISTRY_PASSWORD": "x", "REGISTRY_USERNAME": "u"}
    tagged = _run_recorded(_step("release.yml", "images", "tag semver")["run"], env, tmp_path)
    [tag] = [call for call in tagged if call[:2] == ["buildah", "tag"]]
    # The image `make images` built is the one tagged for the registry.
    assert tag[2] == ImageSet("localhost", __version__).ref(component)
    pushed = _run_recorded(_step("release.yml", "images", "push")["run"], env, tmp_path)
    pushes = [call for call in pushed if call[:2] == ["buildah", "push"]]
    refs = {call[-1].removeprefix("docker://") for call in pushes}
    assert refs == set(tag[3:]), "the pushed tags are the ones applied"
    return refs


def test_every_component_has_a_containerfile_titled_with_its_image_name() -> None:
    for component in COMPONENTS:
        containerfile = (ROOT / "containers" / f"{component}.Containerfile").read_text()
        assert f'org.opencontainers.image.title="{image_name(component)}"' in containerfile


def test_make_images_tags_each_component_as_the_renderers_name_it() -> None:
    script = (ROOT / "containers" / "build-images").read_text()
    [template] = re.findall(r'^\s*tag="([^"]+)"', script, re.MULTILINE)
    for component in COMPONENTS:
        tag = template.replace("$name", component).replace("$VERSION", __version__)
        assert tag == ImageSet("localhost", __version__).ref(component)
    makefile = (ROOT / "Makefile").read_text()
    [default] = re.findall(r"^IMAGES \?= (.+)$", makefile, re.MULTILINE)
    assert set(default.split()) <= set(COMPONENTS)
    assert all(component in makefile for component in COMPONENTS)


def test_release_pushes_every_component_under_the_registry_with_the_version(
    tmp_path: Path,
) -> None:
    document = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    images = document["jobs"]["images"]
    assert images["strategy"]["matrix"]["component"] == list(COMPONENTS)
    assert images["env"]["IMAGE_REGISTRY"] == "${{ vars.IMAGE_REGISTRY }}"
    for component in COMPONENTS:
        wanted = ImageSet(REGISTRY, __version__).ref(component)
        assert _pushed_by_release(component, REGISTRY, tmp_path) == {wanted, f"{wanted}-{SHA}"}


def _workload_images(objects: list[dict[str, Any]]) -> dict[str, str]:
    images = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Pod"):
            spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
            images[obj["metadata"]["name"]] = spec["containers"][0]["image"]
    return images


def test_the_renderers_pick_each_image_by_placement(tmp_path: Path) -> None:
    """MESH (tests/deploy/test_kubernetes) places `chat` on CPU nodes and `falcon-h1-34b`
    on GPU nodes."""
    images = ImageSet("registry.example.org/demigod", "9.8.7")
    config = {**MESH, "images": {"registry": images.registry, "tag": images.tag}}
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(config))
    rendered = CliRunner().invoke(
        app, ["deploy", "render", "k8s", "-c", str(tmp_path / "mesh.yaml"), "-o", str(tmp_path)]
    )
    assert rendered.exit_code == 0, rendered.output
    objects = [
        o
        for path in sorted((tmp_path / "base").glob("*.yaml"))
        for o in yaml.safe_load_all(path.read_text())
        if o
    ]
    assert _workload_images(objects) == {
        "demigod-gateway": images.gateway,
        "demigod-worker-chat": images.worker(on_gpu=False),
        "demigod-worker-chat-candidate": images.worker(on_gpu=False),
        "demigod-worker-falcon-h1-34b": images.worker(on_gpu=True),
    }

    # Podman: the same models, their files here (any bytes: the footprints are declared).
    podman_config = {**config, "data_dir": str(tmp_path / "data")}
    del podman_config["database_url"]  # render podman reads the registry: a local SQLite one
    podman_config["models"] = []
    for model in MESH["models"][::2]:  # one version each
        path = tmp_path / "models" / Path(model["path"]).name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"GGUF")
        podman_config["models"].append({**model, "path": str(path)})
    (tmp_path / "podman.yaml").write_text(yaml.safe_dump(podman_config))
    out = tmp_path / "podman"
    rendered = CliRunner().invoke(
        app, ["deploy", "render", "podman", "-c", str(tmp_path / "podman.yaml"), "-o", str(out)]
    )
    assert rendered.exit_code == 0, rendered.output
    pods = [p for p in yaml.safe_load_all((out / "demigod.yaml").read_text()) if p]
    assert _workload_images(pods) == {
        "demigod-worker-chat-0": images.worker(on_gpu=False),
        "demigod-worker-falcon-h1-34b-0": images.worker(on_gpu=True),
        "demigod-gateway": images.gateway,
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_deploy_applies_the_environments_committed_render_of_released_images(
    environment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy.yml applies deploy/environments/ENV/k8s/overlays/ENV; every image it names is
    one release.yml pushed to the environment's registry, and the workflow refuses to
    deploy when the registry release.yml pushes to (vars.IMAGE_REGISTRY) is another."""
    kubectl = require_binary("kubectl")
    monkeypatch.chdir(ROOT)
    for name in list(os.environ):
        if name.startswith("DEMIGOD_"):
            monkeypatch.delenv(name)
    config = Path("deploy/environments") / environment / "mesh.yaml"
    settings = load_settings(config)
    registry = settings.images.registry
    assert settings.images.tag == __version__, "each release deploys its own images"

    apply = _step("deploy.yml", "deploy", "apply")["run"]
    [overlay] = re.findall(r"-k \"([^\"]+)\"", apply.splitlines()[0])
    overlay = overlay.replace("$ENVIRONMENT", environment)
    built = subprocess.run([kubectl, "kustomize", overlay], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    applied = set(_workload_images([o for o in yaml.safe_load_all(built.stdout) if o]).values())
    pushed = set().union(*(_pushed_by_release(c, registry, tmp_path) for c in COMPONENTS))
    assert applied <= pushed
    assert ImageSet(registry, __version__).ref(WORKER_CPU) in applied

    guard = _step("deploy.yml", "deploy", "the images are release.yml's")["run"]
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DEMIGOD_CONFIG": str(config),
        "ENVIRONMENT": environment,
    }
    for pushed_to, status in ((registry, 0), ("elsewhere.example.com/x", 1)):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", guard],
            env={**os.environ, **env, "IMAGE_REGISTRY": pushed_to},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == status, done.stdout + done.stderr
