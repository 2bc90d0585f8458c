"""Pod templates of the gateway and the workers: non-root, read-only root filesystem,
no service-account token, probes, and Secrets mounted by reference."""

from __future__ import annotations

import math

from demigod.config import KubernetesConfig
from demigod.deploy.kubernetes.names import CONFIG_MAP, GATEWAY_PORT, WORKER_PORT
from demigod.deploy.placement import Placement

CONFIG_DIR = "/etc/demigod"
CONFIG_PATH = f"{CONFIG_DIR}/mesh.yaml"
DATA_DIR = "/var/lib/demigod"
SECRETS_DIR = "/var/run/secrets/demigod"
API_KEYS_PATH = f"{SECRETS_DIR}/api-keys/api-keys.json"
SIGNING_KEY_PATH = f"{SECRETS_DIR}/audit/signing-key.pem"
USER_ID = 10001  # the images' unprivileged user
PROBE_PERIOD_SECONDS = 5
STARTUP_FLOOR_SECONDS = 60  # process start, imports, a small model's load


def _security_context() -> dict[str, object]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _probes(port: int, startup_seconds: int) -> dict[str, object]:
    """Liveness on /healthz (process up), readiness on /readyz (models loaded); the
    startup probe holds liveness off for `startup_seconds`, the model's load."""

    def http(path: str, failures: int) -> dict[str, object]:
        return {
            "httpGet": {"path": path, "port": port},
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        }

    return {
        "startupProbe": http("/healthz", math.ceil(startup_seconds / PROBE_PERIOD_SECONDS)),
        "livenessProbe": http("/healthz", 6),
        "readinessProbe": http("/readyz", 2),
    }


def startup_seconds(weights_bytes: int, config: KubernetesConfig) -> int:
    """Time a worker may take to start: the GGUF read at the slowest expected rate, twice
    (page-in and llama.cpp's own pass), plus a floor for the process itself."""
    return STARTUP_FLOOR_SECONDS + math.ceil(2 * weights_bytes / config.model_load_bytes_per_second)


def _pod(
    containers: list[dict[str, object]], volumes: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "fsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 60,  # streams finish; the server drains for 10 s
        "containers": containers,
        "volumes": volumes,
    }


_COMMON_VOLUMES = [
    {"name": "config", "configMap": {"name": CONFIG_MAP}},
    {"name": "data", "emptyDir": {}},
    {"name": "tmp", "emptyDir": {}},
]
_COMMON_MOUNTS = [
    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
    {"name": "data", "mountPath": DATA_DIR},
    {"name": "tmp", "mountPath": "/tmp"},
]


def worker_pod(placed: Placement, args: list[str], config: KubernetesConfig) -> dict[str, object]:
    """A worker serving `placed.model` on the node class placement chose."""
    threads = max(1, math.floor(placed.resources.cpu_cores))
    container = {
        "name": "worker",
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "worker",
            *args,
            "--host",
            "0.0.0.0",
            "--port",
            str(WORKER_PORT),
            "--config",
            CONFIG_PATH,
        ],
        "ports": [{"name": "http", "containerPort": WORKER_PORT}],
        "env": [{"name": "DEMIGOD_ENGINE__N_THREADS", "value": str(threads)}],
        "resources": placed.resources.kubernetes(),
        "securityContext": _security_context(),
        "volumeMounts": [
            *_COMMON_MOUNTS,
            {"name": "models", "mountPath": config.models_mount, "readOnly": True},
        ],
        **_probes(WORKER_PORT, startup_seconds(placed.need.weights, config)),
    }
    pod = _pod(
        [container],
        [
            *_COMMON_VOLUMES,
            {
                "name": "models",
                "persistentVolumeClaim": {"claimName": config.models_claim, "readOnly": True},
            },
        ],
    )
    if selector := placed.node_selector():
        pod["nodeSelector"] = selector
    if tolerations := placed.tolerations():
        pod["tolerations"] = tolerations
    return pod


def gateway_pod(config: KubernetesConfig) -> dict[str, object]:
    """The gateway: API keys and the audit signing key are Secret volumes, S3 credentials
    Secret variables; none of them is in the rendered files."""
    secrets = config.secrets
    container = {
        "name": "gateway",
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "gateway",
            "--host",
            "0.0.0.0",
            "--port",
            str(GATEWAY_PORT),
            "--config",
            CONFIG_PATH,
        ],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
        "envFrom": [
            {"secretRef": {"name": secrets.env, "optional": True}},
            {"secretRef": {"name": secrets.s3, "optional": True}},
        ],
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "2000m", "memory": "1Gi"},
        },
        "securityContext": _security_context(),
        "volumeMounts": [
            *_COMMON_MOUNTS,
            {"name": "api-keys", "mountPath": f"{SECRETS_DIR}/api-keys", "readOnly": True},
            {"name": "audit-key", "mountPath": f"{SECRETS_DIR}/audit", "readOnly": True},
        ],
        **_probes(GATEWAY_PORT, STARTUP_FLOOR_SECONDS),
    }
    return _pod(
        [container],
        [
            *_COMMON_VOLUMES,
            {"name": "api-keys", "secret": {"secretName": secrets.api_keys, "defaultMode": 0o440}},
            {
                "name": "audit-key",
                "secret": {"secretName": secrets.audit_signing_key, "defaultMode": 0o440},
            },
        ],
    )
