"""`demigod deploy render k8s`: every Kustomize build succeeds, every object validates
against the pinned Kubernetes schemas or its CRD schema, checkov passes, and the objects
say what placement, the disruption budget and the scaling signals decided."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from demigod.cli import app
from demigod.config import load_settings
from demigod.deploy.kubernetes.names import GATEWAY
from demigod.deploy.kubernetes.serving import startup_seconds
from demigod.observability.metrics import ROUTER_METRICS
from demigod.routing.versions import split_versions
from tests.conftest import require_binary
from tests.deploy.checkov import checkov

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "overlay-dev.yaml"
VALIDATORS = HERE / "validators"
# The oldest Kubernetes the manifests support (PDB unhealthyPodEvictionPolicy is GA in 1.31)
# and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
# checkov waivers, each justified:
CHECKOV_SKIPS = {
    # Images are built here (`make images`) and pushed by the operator; the digest exists
    # only after the push, so overlays pin it with kustomize `images:` (README).
    "CKV_K8S_43",
    # IfNotPresent with an immutable version tag pulls the same bytes as Always, and lets
    # images loaded into the nodes (kind load, ctr import) run without a registry.
    "CKV_K8S_15",
    # demigod reads credentials as DEMIGOD_* variables (pydantic-settings) and boto3 reads
    # AWS_*: they come from Secrets by reference (envFrom), never from the manifests.
    "CKV_K8S_35",
    # alternatives/inference-gateway and gateway-api are namespace-free on purpose: they are
    # applied into an overlay's namespace (`kubectl apply -k DIR -n NS`); every overlay
    # sets its namespace, which the builds above check.
    "CKV_K8S_21",
}
# checkov judges a pod by all its containers: the gateway's StatefulSet fails the liveness
# (CKV_K8S_8) and readiness (CKV_K8S_9) checks for its backup sidecar alone, which has no
# probes on purpose. Readiness would take the gateway out of its Service whenever backups
# lag (serving must not depend on the destination); liveness has nothing to watch that the
# agent's exit does not already say (a fatal error ends it, the kubelet restarts it); a
# stale backup is alerted on by manifest.json's age (docs/operations.md#backups). The
# test asserts every other container's probes itself.
SIDECAR_WAIVERS = {"CKV_K8S_8", "CKV_K8S_9"}
GIB = 1024**3
MESH = {
    "models": [
        {"name": "chat", "path": "/srv/models/mamba-1.4b.Q4_0.gguf", "version": "2026-11-01"},
        {"name": "chat", "path": "/srv/models/mamba-1.4b-v2.Q4_0.gguf", "version": "2026-11-26"},
        {
            "name": "falcon-h1-34b",
            "path": "/srv/models/falcon-h1-34b.Q4_K_M.gguf",
            "categories": ["long_context"],
        },
    ],
    "canary": {"weights": {"chat": 10}},
    # Backups to the snapshots bucket, PostgreSQL registry: the sidecar and the CronJob.
    "database_url": "postgresql+psycopg://demigod@registry-db:5432/demigod",
    "snapshots": {"endpoint_url": "https://s3.example", "bucket": "demigod"},
    "ops": {"backup": {"full_every_hours": 6}},
    "placement": {
        "footprints": {
            "chat": {
                "parameters": 1_400_000_000,
                "weights_bytes": 860_000_000,
                "state_bytes_per_sequence": 1_622_016,
            },
            "falcon-h1-34b": {
                "parameters": 34_000_000_000,
                "weights_bytes": 20_000_000_000,
                "state_bytes_per_sequence": 400_000_000,
            },
        }
    },
}
BUILDS = (
    "overlays/dev",
    "overlays/stage",
    "overlays/prod",
    "alternatives/hpa/dev",
    "alternatives/hpa/stage",
    "alternatives/hpa/prod",
    "alternatives/inference-gateway",
    "alternatives/gateway-api",
)
CUSTOM_GROUPS = (
    "keda.sh/",
    "monitoring.coreos.com/",
    "gateway.networking.k8s.io/",
    "inference.networking.k8s.io/",
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered tree for MESH (declared footprints: no GGUF needed)."""
    root = tmp_path_factory.mktemp("k8s")
    (root / "mesh.yaml").write_text(yaml.safe_dump(MESH))
    result = CliRunner().invoke(
        app,
        [
            "deploy",
            "render",
            "k8s",
            "--config",
            str(root / "mesh.yaml"),
            "--out",
            str(root / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "out"


@pytest.fixture(scope="module")
def builds(tree: Path) -> dict[str, list[dict[str, Any]]]:
    """`kubectl kustomize` of every overlay and alternative, parsed."""
    kubectl = require_binary("kubectl")
    built = {}
    for name in BUILDS:
        done = subprocess.run(
            [kubectl, "kustomize", str(tree / name)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{name}: {done.stderr}"
        built[name] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return built


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _is_custom(obj: dict[str, Any]) -> bool:
    return obj["apiVersion"].startswith(CUSTOM_GROUPS)


def test_every_build_holds_the_expected_objects(builds: dict[str, list[dict[str, Any]]]) -> None:
    prod = builds["overlays/prod"]
    kinds = sorted({o["kind"] for o in prod})
    assert kinds == [
        "CronJob",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "ScaledObject",
        "Service",
        "ServiceMonitor",
        "StatefulSet",
    ]
    assert {o["metadata"]["namespace"] for o in prod} == {"demigod"}
    assert {o["metadata"]["namespace"] for o in builds["overlays/dev"]} == {"demigod-dev"}
    # The HPA alternative replaces every ScaledObject by an HPA on External metrics.
    hpa = builds["alternatives/hpa/prod"]
    assert not [o for o in hpa if o["kind"] == "ScaledObject"]
    external = [
        o
        for o in hpa
        if o["kind"] == "HorizontalPodAutoscaler" and "worker" in o["metadata"]["name"]
    ]
    assert len(external) == 3
    # No Secret is rendered, only referenced.
    for objects in builds.values():
        assert not [o for o in objects if o["kind"] == "Secret"]


def test_core_objects_validate_against_pinned_kubernetes_schemas(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    checked = 0
    for name, objects in builds.items():
        for obj in objects:
            if _is_custom(obj):
                continue
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    pytest.fail(
                        f"{name}: {obj['kind']}/{obj['metadata']['name']} "
                        f"on {version}: {exc.message}"
                    )
                checked += 1
    assert checked > 40


def test_custom_resources_validate_against_their_crd_schemas(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    node = require_binary("node")
    if not (VALIDATORS / "node_modules").is_dir():
        npm = require_binary("npm")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=VALIDATORS,
            check=True,
            timeout=300,
        )
    custom = [
        o
        for objects in builds.values()
        for o in objects
        if _is_custom(o) and o["kind"] != "InferencePool"
    ]
    assert {o["kind"] for o in custom} == {
        "ScaledObject",
        "ServiceMonitor",
        "PrometheusRule",
        "HTTPRoute",
    }
    done = subprocess.run(
        [node, "validate.mjs"],
        cwd=VALIDATORS,
        input=json.dumps(custom),
        capture_output=True,
        text=True,
        timeout=120,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(custom), done.stderr
    assert done.returncode == 0, [r for r in results if r["errors"]]
    # The validator does reject a broken object.
    broken = [{**custom[0], "spec": {**custom[0]["spec"], "minReplicaCount": "five"}}]
    failed = subprocess.run(
        [node, "validate.mjs"],
        cwd=VALIDATORS,
        input=json.dumps(broken),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "minReplicaCount" in failed.stdout


# InferencePool v1 (inference.networking.k8s.io), written from its published Go API types:
# spec.selector.matchLabels (1-64 labels), exactly one target port, and an endpoint picker
# reference whose port is required when its kind is Service (the CRD's CEL rule).
_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
INFERENCE_POOL_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "inference.networking.k8s.io/v1"},
        "kind": {"const": "InferencePool"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "targetPorts", "endpointPickerRef"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["matchLabels"],
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "minProperties": 1,
                            "maxProperties": 64,
                            "additionalProperties": {"type": "string", "maxLength": 63},
                        }
                    },
                },
                "targetPorts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["number"],
                        "properties": {
                            "number": {"type": "integer", "minimum": 1, "maximum": 65535}
                        },
                    },
                },
                "endpointPickerRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "group": {"type": "string", "maxLength": 253},
                        "kind": {
                            "type": "string",
                            "pattern": "^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
                            "maxLength": 63,
                        },
                        "name": _NAME,
                        "port": {
                            "type": "object",
                            "required": ["number"],
                            "properties": {
                                "number": {"type": "integer", "minimum": 1, "maximum": 65535}
                            },
                        },
                        "failureMode": {"enum": ["FailOpen", "FailClose"]},
                    },
                },
            },
        },
    },
}


def test_inference_pools_match_the_published_api(builds: dict[str, list[dict[str, Any]]]) -> None:
    objects = builds["alternatives/inference-gateway"]
    pools = [o for o in objects if o["kind"] == "InferencePool"]
    assert [p["metadata"]["name"] for p in pools] == ["demigod-chat", "demigod-falcon-h1-34b"]
    for pool in pools:
        jsonschema.validate(pool, INFERENCE_POOL_SCHEMA)
        ref = pool["spec"]["endpointPickerRef"]
        assert ref.get("kind", "Service") != "Service" or "port" in ref  # the CEL rule
    # The pool selects every worker pod of the model (stable and candidate), and only those.
    workers = [
        o
        for o in builds["overlays/dev"]
        if o["kind"] == "Deployment" and "worker" in o["metadata"]["name"]
    ]
    chat = pools[0]["spec"]["selector"]["matchLabels"]
    chosen = [
        w["metadata"]["name"]
        for w in workers
        if chat.items() <= w["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert chosen == ["demigod-worker-chat", "demigod-worker-chat-candidate"]
    # The endpoint picker reads DemiGod pods through DemiGod's metric names.
    epp = _find(objects, "ConfigMap", "demigod-endpoint-picker")
    config = yaml.safe_load(epp["data"]["demigod-epp.yaml"])
    engine = config["plugins"][0]["parameters"]["engineConfigs"][0]
    assert engine == {
        "name": "demigod",
        "queuedRequestsSpec": ROUTER_METRICS["queued"],
        "runningRequestsSpec": ROUTER_METRICS["running"],
        "kvUsageSpec": ROUTER_METRICS["cache_usage"],
    }


def test_checkov_passes_on_the_manifests(
    builds: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    for name, objects in builds.items():
        (tmp_path / f"{name.replace('/', '-')}.yaml").write_text(yaml.safe_dump_all(objects))
    reports = checkov(tmp_path, "kubernetes", CHECKOV_SKIPS)
    failed = [
        (check["check_id"], check["resource"])
        for one in reports
        for check in one["results"]["failed_checks"]
        if not (
            check["check_id"] in SIDECAR_WAIVERS
            and check["resource"].startswith("StatefulSet.")
            and check["resource"].endswith(f".{GATEWAY}")
        )
    ]
    assert not failed
    for objects in builds.values():
        for workload in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
            for container in workload["spec"]["template"]["spec"]["containers"]:
                if container["name"] != "backup":
                    assert {"livenessProbe", "readinessProbe"} <= container.keys()
    assert sum(one["summary"]["passed"] for one in reports) > 100


def test_workers_are_placed_sized_and_budgeted(builds: dict[str, list[dict[str, Any]]]) -> None:
    prod = builds["overlays/prod"]
    chat = _find(prod, "Deployment", "demigod-worker-chat")
    falcon = _find(prod, "Deployment", "demigod-worker-falcon-h1-34b")
    chat_pod, falcon_pod = chat["spec"]["template"]["spec"], falcon["spec"]["template"]["spec"]
    assert chat_pod["nodeSelector"] == {"demigod.io/node-class": "cpu"}
    assert "tolerations" not in chat_pod
    assert falcon_pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert falcon_pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert falcon_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # chat: 860 MB weights + 8 slots x 1.55 MiB + 256 MiB cache + 512 MiB overhead.
    assert chat_pod["containers"][0]["resources"]["requests"]["memory"] == "1601Mi"
    # The startup probe waits out the model's load at the slowest expected read.
    settings = load_settings(None, **{"placement": MESH["placement"]})
    probe = falcon_pod["containers"][0]["startupProbe"]
    assert (
        probe["failureThreshold"] * probe["periodSeconds"]
        >= startup_seconds(20_000_000_000, settings)
        > 400
    )
    # Rollouts keep >= 80 % serving; drains take one pod at a time, never none
    # (tests/deploy/test_disruption.py): the gateway's and every worker's PDB.
    assert chat["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "20%", "maxSurge": "25%"}
    for objects in builds.values():
        for workload in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
            name = workload["metadata"]["name"]
            pdb = _find(objects, "PodDisruptionBudget", name)["spec"]
            assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb, name
            assert pdb["selector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]
            assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    # The candidate serves its own file under the same name.
    candidate = _find(prod, "Deployment", "demigod-worker-chat-candidate")
    candidate_env = _environment(candidate["spec"]["template"]["spec"]["containers"][0])
    assert (
        json.loads(candidate_env["DEMIGOD_MODELS"])[0]["path"] == "/models/mamba-1.4b-v2.Q4_0.gguf"
    )
    for deployment in (chat, falcon, candidate, _find(prod, "StatefulSet", "demigod-gateway")):
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["automountServiceAccountToken"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["runAsNonRoot"] is True


def test_no_autoscaled_workload_carries_a_replica_count(
    tree: Path, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Every Deployment and StatefulSet of every build is the target of exactly one
    autoscaler (the gateway's HPA; each worker's ScaledObject, or HPA in the alternative),
    and none carries `spec.replicas`: `kubectl apply -k` (deploy.yml) and Terraform would
    otherwise reset the count the autoscaler chose on every apply. No file of the tree
    sets one either (the base is no tree of its own: every build autoscales it)."""
    built_workloads = 0
    for name, objects in builds.items():
        targets = [
            o["spec"]["scaleTargetRef"]
            for o in objects
            if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
        ]
        for workload in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
            ref = {
                "apiVersion": "apps/v1",
                "kind": workload["kind"],
                "name": workload["metadata"]["name"],
            }
            assert targets.count(ref) == 1, f"{name}: {ref} has {targets.count(ref)} autoscalers"
            assert "replicas" not in workload["spec"], f"{name}: {ref}"
            built_workloads += 1
    assert built_workloads == 6 * 4  # 3 overlays + 3 HPA alternatives, gateway + 3 workers
    for path in sorted(tree.rglob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj.get("kind") in ("Deployment", "StatefulSet"):
                assert "replicas" not in obj.get("spec", {}), path.relative_to(tree)


def test_scaled_objects_scale_on_the_workers_own_series(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    dev = builds["overlays/dev"]
    chat = _find(dev, "ScaledObject", "demigod-worker-chat")["spec"]
    falcon = _find(dev, "ScaledObject", "demigod-worker-falcon-h1-34b")["spec"]
    assert (chat["minReplicaCount"], chat["maxReplicaCount"]) == (1, 2)
    behavior = chat["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 30
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    queries = {t["name"]: t["metadata"]["query"] for t in chat["triggers"]}
    scope = 'namespace="demigod-dev",service="demigod-worker-chat"'
    assert queries == {
        "queue": f"sum(demigod_num_requests_waiting{{{scope}}})",
        "state-slots": f"avg(demigod_kv_cache_usage_perc{{{scope}}})",
    }
    assert [t["name"] for t in falcon["triggers"]] == ["queue", "state-slots", "gpu-memory"]
    # The scraped Service carries the job the alert rules name.
    service = _find(dev, "Service", "demigod-worker-chat")
    assert service["metadata"]["labels"]["demigod.io/job"] == "demigod-worker"


def _environment(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_pods_settings_load_and_hold_no_credentials(
    builds: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./mesh.yaml: the pod's variables alone
    prod = builds["overlays/prod"]
    gateway = _find(prod, "StatefulSet", "demigod-gateway")["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    assert "DEMIGOD_DATABASE_URL" not in _environment(container)  # from the env Secret
    for name, value in _environment(container).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert [(u.name, u.urls, u.version) for u in settings.upstreams] == [
        ("chat", ["http://demigod-worker-chat:8081"], "2026-11-01"),
        ("chat", ["http://demigod-worker-chat-candidate:8081"], "2026-11-26"),
        ("falcon-h1-34b", ["http://demigod-worker-falcon-h1-34b:8081"], "local"),
    ]
    # The candidate Deployment's Service is chat's canary candidate at the gateway, which
    # splits sessions by the declared weight (tests/gateway/test_canary_upstreams.py).
    _, candidates = split_versions(settings.upstreams)
    assert [(c.name, c.version) for c in candidates] == [("chat", "2026-11-26")]
    assert settings.canary.weights == {"chat": 10}
    service = _find(prod, "Service", "demigod-worker-chat-candidate")
    candidate = _find(prod, "Deployment", "demigod-worker-chat-candidate")
    assert service["spec"]["selector"] == candidate["spec"]["selector"]["matchLabels"]
    assert str(settings.security.api_keys_file) == "/var/run/secrets/demigod/api-keys/api-keys.json"
    assert settings.database_url is None and settings.security.redis_url is None
    assert not [
        n for n in _environment(container) if n in ("DEMIGOD_PLACEMENT", "DEMIGOD_KUBERNETES")
    ]
    # Credentials come from Secrets by reference only.
    assert container["envFrom"] == [
        {"secretRef": {"name": "demigod-env", "optional": True}},
        {"secretRef": {"name": "demigod-s3", "optional": True}},
    ]
    secrets = {v["secret"]["secretName"] for v in gateway["volumes"] if "secret" in v}
    assert secrets == {"demigod-api-keys", "demigod-audit-signing-key"}


def test_each_gateway_replica_keeps_its_data_on_a_volume_of_its_own(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    """The audit log, canary state and API keys survive a restart: the gateway is a
    StatefulSet whose `data` volume is a PersistentVolumeClaim per replica (kept when it
    shrinks or is deleted), not an emptyDir; its HPA sizes that set, within the overlay's
    bounds."""
    prod = builds["overlays/prod"]
    gateway = _find(prod, "StatefulSet", "demigod-gateway")
    spec = gateway["spec"]
    [claim] = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    pod = spec["template"]["spec"]
    container, _backup = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/var/lib/demigod"
    assert "data" not in {v["name"] for v in pod["volumes"]}, "the claim backs it, no pod volume"
    settings = {e["name"]: e["value"] for e in container["env"]}
    assert settings["DEMIGOD_DATA_DIR"] == "/var/lib/demigod"  # audit log and canary state under it
    assert pod["securityContext"]["fsGroup"] == 10001
    _find(prod, "Service", spec["serviceName"])
    hpa = _find(prod, "HorizontalPodAutoscaler", "demigod-gateway")["spec"]
    assert "replicas" not in spec and (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "demigod-gateway",
    }
    assert not [o for o in prod if o["kind"] == "Deployment" and o["metadata"]["name"] == GATEWAY]


def test_backups_run_beside_the_gateway_and_on_a_schedule(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    """With a destination configured, each gateway replica runs the backup agent on its own
    `data` claim, with the gateway's settings, Secrets and Secret files; a PostgreSQL
    registry also gets its base backups from a CronJob."""
    prod = builds["overlays/prod"]
    pod = _find(prod, "StatefulSet", "demigod-gateway")["spec"]["template"]["spec"]
    gateway, sidecar = pod["containers"]
    assert sidecar["name"] == "backup" and sidecar["image"] == gateway["image"]
    assert sidecar["args"] == ["ops", "backup", "--continuous", "--json"]
    # The files the gateway writes and reads (audit log, keys), where the gateway has them.
    assert sorted(map(str, gateway["volumeMounts"])) == sorted(map(str, sidecar["volumeMounts"]))
    assert sidecar["envFrom"][:2] == gateway["envFrom"]
    assert sidecar["envFrom"][2]["secretRef"]["name"] == "demigod-backup-credentials"
    for name in ("DEMIGOD_DATA_DIR", "DEMIGOD_AUDIT", "DEMIGOD_SECURITY", "DEMIGOD_OPS"):
        assert _environment(sidecar)[name] == _environment(gateway)[name], name
    assert "full_every_hours" in _environment(sidecar)["DEMIGOD_OPS"]
    cronjob = _find(prod, "CronJob", "demigod-gateway-backup-full")
    assert cronjob["metadata"]["namespace"] == "demigod"
    assert cronjob["spec"]["schedule"] == "0 */6 * * *"
    [job] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert job["args"] == ["ops", "backup", "--json"]
    assert job["envFrom"] == sidecar["envFrom"]  # the database URL from the env Secret


def test_backups_are_rendered_only_with_a_destination(tmp_path: Path) -> None:
    from demigod.deploy.footprint import place_models
    from demigod.deploy.kubernetes import render_files

    def gateway_containers(files: dict[str, str]) -> list[str]:
        statefulset = next(yaml.safe_load_all(files["base/gateway.yaml"]))
        return [c["name"] for c in statefulset["spec"]["template"]["spec"]["containers"]]

    without = {key: value for key, value in MESH.items() if key != "snapshots"}
    settings = load_settings(None, **without)
    files = render_files(settings, place_models(settings))
    assert "base/backup.yaml" not in files
    assert gateway_containers(files) == ["gateway"]
    sqlite = load_settings(None, **{k: v for k, v in MESH.items() if k != "database_url"})
    files = render_files(sqlite, place_models(sqlite))
    assert "base/backup.yaml" not in files  # Litestream in the sidecar takes full snapshots
    assert gateway_containers(files) == ["gateway", "backup"]
    to_dir = {**without, "ops": {"backup": {"dir": str(tmp_path)}}}
    with pytest.raises(ValueError, match="no pod mounts"):
        render_files(load_settings(None, **to_dir), place_models(settings))


def test_golden_dev_overlay(builds: dict[str, list[dict[str, Any]]]) -> None:
    """The dev overlay as built, so a review shows what a change does to the manifests.
    UPDATE_GOLDEN=1 rewrites it."""
    text = yaml.safe_dump_all(builds["overlays/dev"], sort_keys=True, width=100)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "rendered dev overlay changed; UPDATE_GOLDEN=1 to accept"
