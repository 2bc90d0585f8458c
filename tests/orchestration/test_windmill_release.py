"""Windmill's first release step, `new_tag_render_apply`, called through its `main` with
the Podman target against this host: the tag's images (built once per run, as in
tests/containers) rendered from a mesh.yaml, played with `podman kube play`, smoke-tested
through the live gateway. Also: the release flow chains the scripts with their own
parameters."""

from __future__ import annotations

import inspect
import os
import re
import secrets
import sys
from pathlib import Path

import pytest
import yaml

from tests.containers.conftest import (
    CONTAINERS_CONF,
    MESH_CONFIG,
    Images,
    free_port_run,
    images,  # noqa: F401 (the session fixture that builds the images)
    podman,
    register_models,
)

WINDMILL = Path(__file__).resolve().parents[2] / "deploy" / "windmill"
sys.path.insert(0, str(WINDMILL))

from f.demigod import new_tag_render_apply, promote_canary_watch, retire_cron  # noqa: E402

SCRIPTS = {
    "f/demigod/new_tag_render_apply": new_tag_render_apply,
    "f/demigod/promote_canary_watch": promote_canary_watch,
    "f/demigod/retire_cron": retire_cron,
}


def test_new_tag_render_apply_plays_the_tag_and_smoke_tests_it(
    images: Images,  # noqa: F811
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CONTAINERS_CONF", str(CONTAINERS_CONF))  # this host's Podman (runc)
    data = tmp_path / "data"
    register_models(data, tiny_model)
    config = tmp_path / "mesh.yaml"
    config.write_text(MESH_CONFIG.format(data_dir=data))
    tag = images.gateway.rsplit(":", 1)[1]
    name, port = f"dgwm-{secrets.token_hex(3)}", free_port_run(1)
    options = ["--name", name, "--port", str(port), "--worker-port", str(free_port_run(2))]
    pods: Path | None = None
    try:
        result = new_tag_render_apply.main(
            tag=tag,
            environment="dev",
            gateway_url=f"http://127.0.0.1:{port}",
            target="podman",
            config=str(config),
            image_registry="localhost",
            render_options=options,
        )
        pods = Path(result["applied"][0])
        assert result["smoke"]["verdict"] == "pass", result["smoke"]
        running = podman(
            "ps", "--filter", f"label=app.kubernetes.io/part-of={name}", "--format", "{{.Image}}"
        ).split()  # fmt: skip
        assert {image for image in running if "demigod" in image} == {images.gateway, images.worker}
    finally:
        if pods is not None:
            podman("kube", "down", str(pods), check=False)
        for volume in podman("volume", "ls", "--format", "{{.Name}}", check=False).split():
            if volume.startswith(f"{name}-"):
                podman("volume", "rm", "--force", volume, check=False)


def test_the_release_flow_chains_the_scripts_with_their_parameters() -> None:
    flow = yaml.safe_load((WINDMILL / "f" / "demigod" / "release.flow" / "flow.yaml").read_text())
    inputs = set(flow["schema"]["properties"])
    steps = flow["value"]["modules"]
    assert [step["value"]["path"] for step in steps] == list(SCRIPTS)
    for step in steps:
        parameters = inspect.signature(SCRIPTS[step["value"]["path"]].main).parameters
        given = step["value"]["input_transforms"]
        assert set(given) <= set(parameters), step["id"]
        required = {n for n, p in parameters.items() if p.default is inspect.Parameter.empty}
        assert required <= set(given), f"{step['id']} misses {required - set(given)}"
        for transform in given.values():
            if transform["type"] == "javascript":
                assert set(re.findall(r"flow_input\.(\w+)", transform["expr"])) <= inputs
