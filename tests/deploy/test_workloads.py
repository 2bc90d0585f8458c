"""The shared workload objects: what each container is told, and that it reads it back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from demigod.config import Settings, UpstreamConfig, load_settings
from demigod.deploy.workloads import (
    AUDIT_DIR,
    DATA_DIR,
    MODELS_DIR,
    RUN_AS_UID,
    STATE_CACHE_DIR,
    WorkerModel,
    gateway_container,
    pod_spec,
    worker_container,
    worker_upstream,
)

CODE = WorkerModel(name="demigod-code", version="v3", categories=("code",), file_name="a.gguf")


@dataclass(frozen=True)
class Grant:
    cpu_cores: float

    def kubernetes(self) -> dict[str, dict[str, str]]:
        return {"requests": {"cpu": "2500m"}, "limits": {"cpu": "2500m", "memory": "1Gi"}}


def user_settings() -> Settings:
    return Settings.model_validate(
        {
            "port": 9000,
            "log_level": "DEBUG",
            "engine": {"n_ctx": 4096, "slots": 4},
            "routing": {"rules": [{"model": "demigod-code", "category": "math"}]},
            "security": {"tenants": {"acme": {"requests_per_minute": 60}}},
            "waf": {"default_action": "flag"},
        }
    )


def settings_inside(container: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the container's process loads from its environment (no mesh.yaml)."""
    monkeypatch.delenv("DEMIGOD_CONFIG", raising=False)
    monkeypatch.chdir("/")
    for variable in container["env"]:  # type: ignore[attr-defined]
        monkeypatch.setenv(variable["name"], variable["value"])
    return load_settings()


def test_a_worker_reads_back_its_one_model_and_the_users_engine_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = worker_container(user_settings(), CODE, image="worker:1", port=8123)
    inside = settings_inside(container, monkeypatch)

    [model] = inside.models
    assert (model.name, model.version, model.categories) == ("demigod-code", "v3", ["code"])
    assert model.path == Path(MODELS_DIR / "a.gguf")
    assert (inside.engine.n_ctx, inside.engine.slots) == (4096, 4)
    assert inside.engine.state_cache.disk_dir == Path(STATE_CACHE_DIR)
    assert inside.data_dir == Path(DATA_DIR)
    assert inside.log_level == "DEBUG"
    # The gateway in front authenticates, screens and audits; the worker does not repeat it.
    assert inside.security.auth == "off"
    assert not inside.audit.enabled and not inside.waf.enabled
    assert inside.upstreams == [] and inside.database_url is None
    assert container["args"] == [
        "worker", "--model", "demigod-code", "--host", "0.0.0.0", "--port", "8123",
    ]  # fmt: skip


def test_the_gateway_reads_back_its_upstreams_and_the_users_policies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upstream = worker_upstream(CODE, ["http://w0:8081", "http://w1:8081"])
    container = gateway_container(user_settings(), [upstream], image="gateway:1", port=9000)
    inside = settings_inside(container, monkeypatch)

    assert inside.upstreams == [
        UpstreamConfig(
            name="demigod-code",
            urls=["http://w0:8081", "http://w1:8081"],
            categories=["code"],
            version="v3",
        )
    ]
    assert inside.models == []
    assert inside.routing.rules[0].category == "math"
    assert inside.security.tenants["acme"].requests_per_minute == 60
    assert inside.security.auth == "required" and inside.waf.default_action == "flag"
    assert inside.audit.dir == Path(AUDIT_DIR)
    assert inside.canary.state_file.parent == Path(DATA_DIR)


def test_decode_threads_follow_the_cpu_grant_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    granted = worker_container(Settings(), CODE, image="w", resources=Grant(cpu_cores=2.5))
    assert granted["resources"] == Grant(2.5).kubernetes()
    assert settings_inside(granted, monkeypatch).engine.n_threads == 2

    configured = Settings.model_validate({"engine": {"n_threads": 1}})
    pinned = worker_container(configured, CODE, image="w", resources=Grant(cpu_cores=4))
    assert settings_inside(pinned, monkeypatch).engine.n_threads == 1


def test_containers_run_unprivileged_on_a_read_only_root_with_probes() -> None:
    for container in (
        worker_container(Settings(), CODE, image="w", port=8081),
        gateway_container(Settings(), [], image="g", port=8080),
    ):
        context = container["securityContext"]
        assert context["runAsNonRoot"] and context["runAsUser"] == RUN_AS_UID
        assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
        assert context["capabilities"] == {"drop": ["ALL"]}
        port = container["ports"][0]["containerPort"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    worker = worker_container(Settings(), CODE, image="w")
    models = next(m for m in worker["volumeMounts"] if m["mountPath"] == str(MODELS_DIR))
    assert models["readOnly"] is True


def test_a_pod_spec_backs_every_mounted_volume() -> None:
    worker = worker_container(Settings(), CODE, image="w")
    with pytest.raises(ValueError, match="no volume source for models, state-cache"):
        pod_spec([worker], {"tmp": {"emptyDir": {}}})
    spec = pod_spec(
        [worker],
        {name: {"emptyDir": {}} for name in ("models", "state-cache", "tmp", "unused")},
        host_network=True,
    )
    assert [v["name"] for v in spec["volumes"]] == ["models", "state-cache", "tmp"]
    assert spec["hostNetwork"] is True and spec["restartPolicy"] == "Always"
    assert spec["securityContext"]["runAsNonRoot"] is True
