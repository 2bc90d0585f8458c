"""deploy/environments/{dev,stage,prod}: what the deploy workflow applies. Each mesh.yaml
loads, its lock file reads and pins the versions mesh.yaml serves, its committed render
is what `demigod deploy render k8s` makes of it now (`demigod ops drift --check manifest`,
as the workflow runs it, with its credentials set: a version bump or a mesh.yaml change
without a re-render fails here, and so would credentials reaching the pods' settings),
and that render builds into valid objects in the environment's namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from demigod.config import Settings, load_settings
from demigod.ops.lockfile import read_lock
from demigod.registry import STABLE
from tests.conftest import require_binary
from tests.deploy.test_kubernetes import CUSTOM_GROUPS, KUBERNETES_VERSIONS

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "stage", "prod")


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DEMIGOD_")}


def _deploy_workflow_environment() -> dict[str, str]:
    """The DEMIGOD_* variables deploy.yml's job sets besides the config (the registry, the
    gateway, the admin key), with stand-in values: its drift step renders with them."""
    job = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())["jobs"]["deploy"]
    names = [n for n in job["env"] if n.startswith("DEMIGOD_") and n != "DEMIGOD_CONFIG"]
    assert {"DEMIGOD_OPS__API_KEY", "DEMIGOD_DATABASE_URL"} <= set(names)
    stand_ins = {
        "DEMIGOD_DATABASE_URL": "postgresql+psycopg://u:p@db.example/demigod",
        "DEMIGOD_OPS__GATEWAY_URL": "http://gateway.example:8080",
    }
    return {name: stand_ins.get(name, "stand-in") for name in names}


def _settings(environment: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(ROOT)  # the workflows run there; mesh.yaml's paths are relative to it
    for name in [n for n in os.environ if n.startswith("DEMIGOD_")]:
        monkeypatch.delenv(name)
    return load_settings(Path("deploy/environments") / environment / "mesh.yaml")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_declared_state_is_one_story(environment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(environment, monkeypatch)
    home = Path("deploy/environments") / environment
    drift = settings.ops.drift
    assert (drift.lock_file, drift.manifests) == (home / "models.lock.yaml", home / "k8s")
    assert drift.kubernetes_overlay == environment
    assert list(settings.kubernetes.environments) == [environment]
    lock = read_lock(drift.lock_file)
    served = {model.name: model.version for model in settings.models}
    assert served and {name: lock.models[name][STABLE].version for name in served} == served
    # Every served model is sized without its file here.
    assert set(served) <= set(settings.placement.footprints)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_committed_render_is_current(environment: str) -> None:
    config = f"deploy/environments/{environment}/mesh.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "demigod", "ops", "drift", "--check", "manifest", "--json",
         "--config", config],
        cwd=ROOT, env=_clean_environment() | _deploy_workflow_environment(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    found = json.loads(done.stdout)["drift"] if done.stdout else done.stderr
    assert done.returncode == 0, (
        f"{found}\nre-render: demigod deploy render k8s --config {config} "
        f"--out deploy/environments/{environment}/k8s"
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_overlay_builds_valid_objects_in_its_namespace(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(environment, monkeypatch)
    kubectl = require_binary("kubectl")
    overlay = f"deploy/environments/{environment}/k8s/overlays/{environment}"
    built = subprocess.run([kubectl, "kustomize", overlay], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    objects = [o for o in yaml.safe_load_all(built.stdout) if o]
    namespace = settings.kubernetes.environments[environment].namespace
    assert {o["metadata"]["namespace"] for o in objects} == {namespace}
    core = [o for o in objects if not o["apiVersion"].startswith(CUSTOM_GROUPS)]
    for obj in core:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    kinds = {o["kind"] for o in objects}
    assert {"StatefulSet", "Deployment", "ScaledObject", "NetworkPolicy"} <= kinds
