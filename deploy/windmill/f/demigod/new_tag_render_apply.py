"""Windmill script: a release tag goes out to one environment: render the deployment for
the tag's images from the environment's mesh.yaml, apply it (Kubernetes: the environment's
Kustomize overlay; Podman: `podman kube play`), wait for the gateway, smoke-test it."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import httpx
from f.demigod.cli import demigod_json, run_demigod

READY_TIMEOUT_SECONDS = 900.0
SMOKE_FAILED = 1  # `demigod ops smoke`'s exit status on a failed verdict


def main(
    tag: str,
    environment: str,
    gateway_url: str,
    target: Literal["kubernetes", "podman"] = "kubernetes",
    config: str = "",
    image_registry: str = "localhost",
    render_options: list[str] | None = None,
) -> dict[str, Any]:
    """`config` defaults to deploy/environments/ENVIRONMENT/mesh.yaml; `render_options` are
    passed to `demigod deploy render` (Podman: --name, --port, --worker-port, --replicas).
    Raises when a command fails or the gateway is not ready in time."""
    config = config or f"deploy/environments/{environment}/mesh.yaml"
    out = Path(tempfile.mkdtemp(prefix=f"demigod-{environment}-{tag}-"))
    options = list(render_options or [])
    # The images `make images` builds and the release pushes: REGISTRY/demigod-COMPONENT:TAG
    # (demigod.deploy.images), the worker's image chosen by its placement.
    images = {"DEMIGOD_IMAGES__REGISTRY": image_registry, "DEMIGOD_IMAGES__TAG": tag}
    if target == "kubernetes":
        render = ["deploy", "render", "k8s", "--out", str(out), *options]
        run_demigod(*render, config=config, env=images)
        overlay = str(out / "overlays" / environment)
        _run("kubectl", "apply", "--server-side", "--force-conflicts", "-k", overlay)
        _run("kubectl", "rollout", "status", "--timeout=15m", "-k", overlay)
        applied = [overlay]
    else:
        render = ["deploy", "render", "podman", "--out", str(out), *options]
        run_demigod(*render, config=config, env=images)
        pods = out / "demigod.yaml"
        _run("podman", "kube", "play", "--replace", str(pods))
        applied = [str(pods)]
    _wait_ready(gateway_url)
    smoke = demigod_json(
        "ops", "smoke", "--url", gateway_url, config=config, ok_codes=(0, SMOKE_FAILED)
    )
    return {
        "tag": tag,
        "environment": environment,
        "target": target,
        "applied": applied,
        "smoke": smoke,
    }


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {done.stderr[-2000:]}")


def _wait_ready(gateway_url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{gateway_url.rstrip('/')}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{gateway_url} not ready after {READY_TIMEOUT_SECONDS:g}s")
