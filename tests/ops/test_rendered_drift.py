"""Drift of kinds `manifest` and `container` without containers: a committed render against
a fresh one (through `demigod ops drift --check manifest`, as the deploy workflow runs
it), workloads compared on plain objects, and a cluster that does not answer (a real
kubectl against a kubeconfig pointing at a closed port). tests/containers compares a
real Podman deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from demigod.config import load_settings
from demigod.ops.container_drift import ContainerSpec, Workload, declared_workloads, workload_drift
from demigod.ops.drift_check import check_drift
from demigod.ops.manifest_drift import manifest_drift
from demigod.processes import free_port
from tests.conftest import require_binary
from tests.deploy.test_kubernetes import MESH


def drift(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEMIGOD_")}
    return subprocess.run(
        [sys.executable, "-m", "demigod", "ops", "drift", "--json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=clean,
        timeout=300,
    )


@pytest.fixture
def declared(tmp_path: Path) -> Path:
    """A mesh.yaml whose render is committed under k8s/ and named in ops.drift."""
    config = {**MESH, "ops": {"drift": {"manifests": "k8s"}}}
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(config))
    render = ["deploy", "render", "k8s", "-c", "mesh.yaml", "-o", "k8s"]
    subprocess.run(
        [sys.executable, "-m", "demigod", *render],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return tmp_path


def test_the_committed_render_is_checked_against_a_fresh_one(declared: Path) -> None:
    clean = drift("--check", "manifest", "-c", "mesh.yaml", cwd=declared)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["drift"] == []

    # mesh.yaml changed without a re-render: the objects it changes are named.
    config = yaml.safe_load((declared / "mesh.yaml").read_text())
    config["kubernetes"] = {"scale_up_window_seconds": 45}
    (declared / "mesh.yaml").write_text(yaml.safe_dump(config))
    stale = drift("--check", "manifest", "-c", "mesh.yaml", cwd=declared)
    assert stale.returncode == 1, stale.stderr
    found = json.loads(stale.stdout)["drift"]
    assert {d["kind"] for d in found} == {"manifest"}
    scaled = [d for d in found if d["subject"].startswith("overlays/dev/scaled-objects.yaml")]
    assert scaled and scaled[0]["declared"].startswith(
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.stabilizationWindowSeconds=45"
    )
    assert scaled[0]["running"].startswith("spec.advanced.") and "=30" in scaled[0]["running"]
    assert scaled[0]["where"] == "k8s"


def test_a_hand_edit_and_files_added_or_lost_are_drift(
    declared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(declared / "mesh.yaml")
    gateway = declared / "k8s" / "base" / "gateway.yaml"
    edited = gateway.read_text().replace("minReplicas: 1\n", "minReplicas: 4\n", 1)
    assert edited != gateway.read_text()
    gateway.write_text(edited)
    (declared / "k8s" / "base" / "extra.yaml").write_text("kind: ConfigMap\n")
    (declared / "k8s" / "prometheus-adapter-rules.yaml").unlink()
    monkeypatch.chdir(declared)
    report = check_drift(settings, checks=["manifest"])
    found = {(d.subject, d.declared, d.running) for d in report.drifts}
    edit = (
        "base/gateway.yaml HorizontalPodAutoscaler/demigod-gateway",
        "spec.minReplicas=1",
        "spec.minReplicas=4",
    )
    assert edit in found
    assert ("base/extra.yaml", "(absent)", "committed") in found
    assert ("prometheus-adapter-rules.yaml", "rendered", "(absent)") in found
    # A comment or a reformatting changes no object: no drift.
    tree = declared / "reformatted"
    tree.mkdir()
    (tree / "a.yaml").write_text("# edited\nkind: A\nmetadata:\n  name: x\n")
    assert manifest_drift({"a.yaml": "kind: A\nmetadata: {name: x}\n"}, tree) == []


def _pod(name: str, image: str = "gw:1", env: dict[str, str] | None = None) -> dict[str, Any]:
    container = {
        "name": "gateway",
        "image": image,
        "args": ["gateway", "--port", "8080"],
        "env": [{"name": k, "value": v} for k, v in (env or {"DEMIGOD_PORT": "8080"}).items()],
    }
    return {"kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


def test_workloads_differ_by_presence_readiness_image_arguments_and_environment() -> None:
    declared = declared_workloads([_pod("mesh-gateway"), _pod("mesh-worker-a-0")])
    assert workload_drift(declared, declared, "podman") == []
    spec = declared["Pod/mesh-gateway"].containers["gateway"]
    running = {
        "Pod/mesh-gateway": Workload(
            "Pod",
            "mesh-gateway",
            {"gateway": ContainerSpec("gw:2", ("gateway",), {"DEMIGOD_PORT": "9"})},
        ),
        "Pod/mesh-old": Workload("Pod", "mesh-old", {"gateway": spec}),
    }
    found = {(d.kind, d.subject): d for d in workload_drift(declared, running, "podman")}
    assert found["container", "Pod/mesh-worker-a-0"].running == "(absent)"
    assert found["container", "Pod/mesh-old"].declared == "(absent)"
    assert found["container", "Pod/mesh-gateway gateway image"].running == "gw:2"
    assert found["container", "Pod/mesh-gateway gateway args"].running == "gateway"
    env = found["container", "Pod/mesh-gateway gateway env DEMIGOD_PORT"]
    assert env.declared.startswith("sha256:") and env.running.startswith("sha256:")
    assert "8080" not in env.declared + env.running  # values stay private
    stopped = {**declared, "Pod/mesh-worker-a-0": Workload("Pod", "mesh-worker-a-0",
               declared["Pod/mesh-worker-a-0"].containers, ready=0)}  # fmt: skip
    [not_ready] = workload_drift(declared, stopped, "podman")
    assert (not_ready.subject, not_ready.declared, not_ready.running) == (
        "Pod/mesh-worker-a-0",
        "1 ready",
        "0 ready",
    )


def test_a_cluster_that_does_not_answer_is_reported_unreachable(
    declared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_binary("kubectl")
    port = free_port()  # nothing listens there
    kubeconfig = declared / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "here", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "here",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    config = yaml.safe_load((declared / "mesh.yaml").read_text())
    config["ops"]["drift"] |= {"kubernetes_overlay": "prod", "kube_context": "here"}
    (declared / "mesh.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(declared)
    report = check_drift(load_settings(declared / "mesh.yaml"), checks=["containers"])
    [unreachable] = report.drifts
    assert (unreachable.kind, unreachable.subject) == ("unreachable", "kubernetes")
    assert unreachable.where == "kubernetes (here)"
    assert f"127.0.0.1:{port}" in unreachable.running


def test_cluster_workloads_are_read_from_kubectl_json(tmp_path: Path) -> None:
    """What `kubectl get -o json` returns for a rolled-out Deployment (shape as the API
    server sends it) against the rendered one: a `kubectl` on PATH prints it."""
    from demigod.ops.container_drift import kubernetes_workloads

    rendered = {
        "kind": "Deployment",
        "metadata": {"name": "demigod-worker-chat", "labels": {}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "worker", "image": "r/demigod-worker-cpu:1", "args": ["worker"],
             "env": [{"name": "DEMIGOD_PORT", "value": "8081"}]}]}}},
    }  # fmt: skip
    live = json.loads(json.dumps(rendered))
    live["spec"]["replicas"] = 3  # the autoscaler's
    live["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    )
    live["status"] = {"replicas": 3, "readyReplicas": 2}
    printer = tmp_path / "kubectl"
    printer.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps({'items': [live]})}\nEOF\n")
    printer.chmod(0o755)
    running = kubernetes_workloads("ns", "demigod", kubectl=str(printer))
    declared = declared_workloads([rendered])
    [not_ready] = workload_drift(declared, running, "kubernetes")
    assert (not_ready.declared, not_ready.running) == ("3 ready", "2 ready")
