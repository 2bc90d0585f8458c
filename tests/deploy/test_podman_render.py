"""`demigod deploy render podman`'s objects: pods, ports, volumes, and the Quadlet units
that must say what the pods say. (tests/containers runs the pods for real.)"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from demigod.config import ModelConfig, Settings
from demigod.deploy.podman import (
    PodmanTarget,
    container_units,
    kube_unit,
    render_podman,
    render_pods,
)
from demigod.deploy.served import NotServableError, ServedModel, served_model

TARGET = PodmanTarget(
    gateway_image="gw:1",
    worker_image="cpu:1",
    gpu_worker_image="cuda:1",
    gateway_port=9000,
    first_worker_port=9100,
    replicas={"demigod-chat": 2},
    name="mesh",
)
# [Container] keys of podman-container.unit(5), the ones the renderer may write.
QUADLET_CONTAINER_KEYS = {
    "ContainerName", "Image", "Exec", "Network", "User", "Group", "ReadOnly",
    "NoNewPrivileges", "DropCapability", "Environment", "Volume", "Tmpfs", "HealthCmd",
    "HealthInterval", "HealthRetries", "PodmanArgs",
}  # fmt: skip


def served(tmp_path: Path, name: str, category: str) -> ServedModel:
    path = tmp_path / name / "a.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")
    return served_model(ModelConfig(name=name, path=path, categories=[category], version="v2"))


@pytest.fixture
def pods(tmp_path: Path) -> list[dict]:
    models = [served(tmp_path, "demigod-code", "code"), served(tmp_path, "demigod-chat", "chat")]
    return render_pods(Settings(), models, {}, TARGET)


def env_of(pod: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def test_one_pod_per_replica_on_consecutive_ports_then_the_gateway(pods: list[dict]) -> None:
    names = [pod["metadata"]["name"] for pod in pods]
    assert names == [
        "mesh-worker-demigod-code-0",
        "mesh-worker-demigod-chat-0",
        "mesh-worker-demigod-chat-1",
        "mesh-gateway",
    ]
    assert [env_of(pod)["DEMIGOD_PORT"] for pod in pods] == ["9100", "9101", "9102", "9000"]
    upstreams = json.loads(env_of(pods[-1])["DEMIGOD_UPSTREAMS"])
    assert {u["name"]: u["urls"] for u in upstreams} == {
        "demigod-code": ["http://127.0.0.1:9100"],
        "demigod-chat": ["http://127.0.0.1:9101", "http://127.0.0.1:9102"],
    }
    assert all(u["version"] == "v2" for u in upstreams)


def test_podman_gets_host_networking_without_ports_and_probes_it_can_run(
    pods: list[dict],
) -> None:
    for pod in pods:
        assert pod["spec"]["hostNetwork"] is True
        [container] = pod["spec"]["containers"]
        assert "ports" not in container  # Podman 4.3 refuses them on the host network
        command = container["livenessProbe"]["exec"]["command"]
        assert command[:2] == ["python", "-c"] and command[-1].endswith("/healthz")


def test_state_lives_in_named_volumes_and_models_are_mounted_read_only(
    pods: list[dict], tmp_path: Path
) -> None:
    claims = []
    for pod in pods[:-1]:
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["models"]["hostPath"]["path"].startswith(str(tmp_path))
        claims.append(volumes["state-cache"]["persistentVolumeClaim"]["claimName"])
    assert len(set(claims)) == 3  # one state cache per replica
    gateway = {v["name"]: v for v in pods[-1]["spec"]["volumes"]}
    assert gateway["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "mesh-data"}}
    # Podman names an emptyDir's volume after it: each pod's scratch is its own.
    scratch = [v["name"] for pod in pods for v in pod["spec"]["volumes"] if "emptyDir" in v]
    assert len(set(scratch)) == len(pods)


def unit_entries(text: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections[current] = []
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            sections[current].append((key, value))
    return sections


def test_a_container_unit_runs_what_the_pod_runs(pods: list[dict]) -> None:
    for pod in pods:
        [text] = container_units(pod).values()
        entries = unit_entries(text)
        assert {key for key, _ in entries["Container"]} <= QUADLET_CONTAINER_KEYS
        container = dict(entries["Container"])
        [spec] = pod["spec"]["containers"]
        assert container["Image"] == spec["image"]
        assert shlex.split(container["Exec"]) == spec["args"]
        # systemd unquotes like a shell for these values (% doubled for its specifiers).
        environment = dict(
            shlex.split(value.replace("%%", "%"))[0].split("=", 1)
            for key, value in entries["Container"]
            if key == "Environment"
        )
        assert environment == env_of(pod)
        assert dict(entries["Service"])["Restart"] == "always"
    assert "Yaml=demigod.yaml" in kube_unit("demigod.yaml")


def test_model_names_that_collide_as_pod_names_are_refused(tmp_path: Path) -> None:
    models = [served(tmp_path, "a.b", "chat"), served(tmp_path, "a-b", "chat")]
    with pytest.raises(ValueError, match="collide"):
        render_pods(Settings(), models, {}, TARGET)


def test_a_hugging_face_folder_cannot_be_served_by_a_worker_image(tmp_path: Path) -> None:
    config = ModelConfig(name="zamba", path=tmp_path, backend="transformers")
    with pytest.raises(NotServableError, match=r"llama\.cpp only"):
        served_model(config)


def test_resource_limits_become_podman_run_flags(tmp_path: Path) -> None:
    from demigod.deploy.placement import ModelFootprint, place

    model = served(tmp_path, "demigod-code", "code")
    settings = Settings()
    placement = place("demigod-code", ModelFootprint(10**8, 10**8, 10**6), settings.engine,
                      settings.placement)  # fmt: skip
    [worker, _] = render_pods(settings, [model], {"demigod-code": placement}, TARGET)
    limits = worker["spec"]["containers"][0]["resources"]["limits"]
    [text] = container_units(worker).values()
    flags = dict(unit_entries(text)["Container"])["PodmanArgs"].split()
    cpus = float(limits["cpu"].removesuffix("m")) / 1000
    assert flags == [f"--cpus={cpus:g}", f"--memory={limits['memory'].removesuffix('Mi')}m"]


def test_no_container_opens_the_registry_and_a_registry_canary_needs_a_server(
    pods: list[dict], tmp_path: Path
) -> None:
    """The registry is read when rendering (pinned versions) and never mounted: workers
    get their one model, the gateway its upstreams (docs/containers.md). Only a canary kept
    in the registry needs it at run time, and then only a server the containers reach."""
    for pod in pods:
        env = env_of(pod)
        mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert "DEMIGOD_DATABASE_URL" not in env
        assert mounts <= {"/models", "/var/cache/demigod/state", "/var/lib/demigod", "/tmp"}
    workers, gateway = pods[:-1], pods[-1]
    assert all(len(json.loads(env_of(pod)["DEMIGOD_MODELS"])) == 1 for pod in workers)
    assert "DEMIGOD_MODELS" not in env_of(gateway) and "DEMIGOD_UPSTREAMS" in env_of(gateway)

    models = [served(tmp_path / "x", "demigod-code", "code")]
    in_registry = Settings().model_copy(
        update={"canary": Settings().canary.model_copy(update={"store": "registry"})}
    )
    with pytest.raises(ValueError, match="needs database_url"):
        render_pods(in_registry, models, {}, TARGET)
    shared = in_registry.model_copy(update={"database_url": "postgresql+psycopg://db/demigod"})
    gateway_env = env_of(render_pods(shared, models, {}, TARGET)[-1])
    assert gateway_env["DEMIGOD_DATABASE_URL"] == "postgresql+psycopg://db/demigod"


def test_backups_join_the_gateway_pod_and_a_timer_takes_full_copies(tmp_path: Path) -> None:
    """With a destination configured, the gateway's pod runs the backup agent on its data
    volume (its own Quadlet unit too) and `systemd/` holds the full copy's timer; without
    one, none of it is rendered."""
    models = [served(tmp_path, "demigod-code", "code")]
    plain = render_podman(Settings(), models, {}, TARGET, tmp_path / "plain")
    assert not [p for p in plain if "backup" in p.name]
    assert len(render_pods(Settings(), models, {}, TARGET)[-1]["spec"]["containers"]) == 1

    settings = Settings(ops={"backup": {"dir": str(tmp_path / "backups")}})
    written = render_podman(settings, models, {}, TARGET, tmp_path / "out")
    gateway = render_pods(settings, models, {}, TARGET)[-1]
    agent, sidecar = gateway["spec"]["containers"]
    assert sidecar["image"] == agent["image"] == TARGET.gateway_image
    assert sidecar["args"] == ["ops", "backup", "--continuous", "--json"]
    assert env_of({"spec": {"containers": [sidecar]}})["DEMIGOD_DATA_DIR"] == "/var/lib/demigod"
    data = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    assert data["data"] == "/var/lib/demigod"
    assert data["mesh-gateway-tmp"] == "/tmp"  # the pod's scratch, as Podman names it
    # The destination directory is the host's, at the same path (the settings name it).
    assert data["backups"] == str(tmp_path / "backups")
    volumes = {v["name"]: v for v in gateway["spec"]["volumes"]}
    assert volumes["backups"]["hostPath"]["path"] == str(tmp_path / "backups")
    units = container_units(gateway)
    assert list(units) == ["mesh-gateway.container", "mesh-gateway-backup.container"]
    backup_unit = dict(unit_entries(units["mesh-gateway-backup.container"])["Container"])
    assert shlex.split(backup_unit["Exec"]) == sidecar["args"]
    names = {str(p.relative_to(tmp_path / "out")) for p in written}
    assert {"systemd/demigod-backup-full.service", "systemd/demigod-backup-full.timer"} <= names
    service = (tmp_path / "out" / "systemd" / "demigod-backup-full.service").read_text()
    assert "--volume mesh-data:/var/lib/demigod" in service and "gw:1 ops backup" in service
    assert f'--volume "{tmp_path}/backups:{tmp_path}/backups"' in service
    notes = (tmp_path / "out" / "SYSTEMD.md").read_text()
    assert "systemctl enable --now demigod-backup-full.timer" in notes
