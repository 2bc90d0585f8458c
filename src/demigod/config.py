"""The one typed home of configuration: `mesh.yaml`, overridden by `DEMIGOD_*` variables.

Precedence (highest first): explicit arguments (CLI flags), environment variables
(`DEMIGOD_PORT=9000`, nested fields with `__`: `DEMIGOD_ENGINE__N_CTX=4096`), the YAML
file, then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from demigod import __version__

DEFAULT_CONFIG_FILE = Path("mesh.yaml")
CONFIG_FILE_ENV = "DEMIGOD_CONFIG"


MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class Section(BaseModel):
    """A nested config section: an unknown key (`engine.n_ctxx`) is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class ModelConfig(Section):
    """One model the mesh serves: a GGUF file (llama.cpp) or a Hugging Face checkpoint
    folder (transformers, for families llama.cpp cannot run; docs/architectures.md)."""

    name: str = Field(pattern=MODEL_NAME_PATTERN, max_length=128)
    path: Path
    backend: Literal["llama.cpp", "transformers"] = Field(
        default="llama.cpp",
        description="llama.cpp: path is a GGUF file; transformers: an HF folder",
    )
    categories: list[str] = Field(default_factory=lambda: ["chat"])
    version: str = Field(default="local", description="shown in metrics and /v1/models")


class StateCacheConfig(Section):
    """Where saved recurrent states live (see demigod.engines.state_cache)."""

    enabled: bool = True
    ram_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0, description="RAM tier budget per model; LRU evicted"
    )
    disk_dir: Path | None = Field(
        default=Path("var/state-cache"), description="local disk tier; None: no disk tier"
    )
    disk_bytes: int = Field(default=4 * 1024**3, ge=0, description="disk tier budget, all models")
    shared_dir: Path | None = Field(
        default=None,
        description="directory shared by replicas (NFS, a mounted bucket); None: no shared tier",
    )
    settle_max_tokens: int = Field(
        default=64,
        ge=0,
        description="after answering a conversation, re-read at most this many tokens so the "
        "next turn starts after the returned text; longer replies restart from the prompt's "
        "state",
    )


class EngineConfig(Section):
    """llama.cpp engine knobs, shared by every model in the process."""

    n_ctx: int = Field(default=2048, ge=64, description="context window per sequence, in tokens")
    # Defaults measured on 2 cores (docs/benchmarks.md): 8 slots decode the most tokens per
    # second; a 128-token prefill chunk keeps running streams' worst gap near one second.
    slots: int = Field(
        default=8, ge=1, le=256, description="sequences decoded together (continuous batching)"
    )
    n_batch: int = Field(
        default=128,
        ge=1,
        description="prompt tokens per decode step: longer prompts are prefilled in chunks so "
        "running streams keep producing",
    )
    n_threads: int | None = Field(default=None, ge=1, description="None: half the cores")
    n_gpu_layers: int = Field(
        default=-1,
        ge=-1,
        description="layers of each model offloaded to a GPU: -1 all, 0 none; needs a GPU "
        "build of llama-cpp-python (docs/troubleshooting.md), else ignored",
    )
    cpu_weight_repacking: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="llama.cpp's repacked CPU weight layouts (its extra buffer types: "
        "AVX2/AVX-512 repacking, Intel AMX). auto: on, except where llama.cpp was built with "
        "AMX, whose matmul crashes on some CPUs (docs/troubleshooting.md)",
    )
    queue_size: int = Field(
        default=32, ge=1, description="requests waiting per model before 503 + Retry-After"
    )
    retry_after_seconds: int = Field(default=1, ge=1)
    state_cache: StateCacheConfig = Field(default_factory=StateCacheConfig)


class RoutingRule(Section):
    """One `routing.rules` entry: `auto` goes to `model` when every condition given holds."""

    model: str = Field(min_length=1, description="served model (or consensus group) to use")
    tenant: str | None = Field(default=None, description="only this tenant; None: any")
    category: str | None = Field(default=None, description="only this category; None: any")
    min_prompt_tokens: int | None = Field(default=None, ge=0, description="estimated, inclusive")
    max_prompt_tokens: int | None = Field(default=None, ge=0, description="estimated, inclusive")


class RoutingConfig(Section):
    """How model "auto" picks a model."""

    long_context_chars: int = Field(
        default=8000, ge=1, description="prompts this long are long_context, whatever they say"
    )
    min_confidence: float = Field(
        default=0.45, ge=0, le=1, description="below this the classifier's guess is not used"
    )
    fallback_category: str = Field(default="chat", description="routed when confidence is low")
    chars_per_token: float = Field(
        default=4.0, gt=0, description="prompt tokens are estimated as characters / this"
    )
    rules: list[RoutingRule] = Field(
        default_factory=list,
        description="tried in order before the category match; the first that matches wins",
    )


class ConsensusOptions(Section):
    """How one consensus fan-out aggregates (a named group, or a request's `consensus`)."""

    normaliser: str = Field(
        default="exact", description="exact, numbers or json:FIELD: what answers must agree on"
    )
    quorum: int | None = Field(
        default=None, ge=1, description="agreeing answers needed; None: more than half"
    )
    judge: str | None = Field(
        default=None, description="a served model that picks the winner instead of the vote"
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="per member answer")


class ConsensusGroup(ConsensusOptions):
    """A named consensus group: `model: NAME` fans out to `models`."""

    models: list[str] = Field(min_length=2, description="served models asked concurrently")


class ConsensusConfig(Section):
    """Consensus across models (docs/routing.md): named groups; `consensus:a,b,c` ad hoc."""

    groups: dict[str, ConsensusGroup] = Field(default_factory=dict)


class CanaryConfig(Section):
    """Versions of one model name and the canary controller (docs/routing.md)."""

    store: Literal["file", "registry"] = Field(
        default="file",
        description="where rollouts live: state_file, or the model registry (database_url)",
    )
    state_file: Path = Field(
        default=Path("var/canary.json"),
        description="file-backed canary store: each model's versions and candidate weight",
    )
    refresh_seconds: float = Field(
        default=1.0, gt=0, description="how often the gateway re-reads the canary store"
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="static candidate share in percent per model, used until the store has one",
    )
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        min_length=1,
        description="candidate percent after each healthy analysis window; ends at 100",
    )
    window_seconds: float = Field(default=300.0, gt=0, description="one analysis window")
    min_requests: int = Field(
        default=20, ge=1, description="candidate requests a window needs before it can advance"
    )
    probes_per_window: int = Field(
        default=3, ge=0, description="deep probes the controller sends each version per window"
    )
    max_error_rate_increase: float = Field(
        default=0.01, ge=0, le=1, description="candidate 5xx ratio may exceed stable's by this"
    )
    max_p95_increase_ratio: float = Field(
        default=0.25, ge=0, description="candidate p95 may exceed stable's by this fraction"
    )
    p95_slack_seconds: float = Field(
        default=0.05, ge=0, description="absolute p95 allowance on top of the ratio (bucket size)"
    )
    max_probe_pass_drop: float = Field(
        default=0.0, ge=0, le=1, description="candidate probe pass rate may trail stable's by this"
    )
    session_pins: int = Field(
        default=100_000, ge=0, description="sessions remembered per gateway so they keep a version"
    )

    @field_validator("steps")
    @classmethod
    def _steps_rise_to_100(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)) or steps[-1] != 100:
            raise ValueError("steps must rise strictly, each in (0, 100], and end at 100")
        return steps


class ObservabilityConfig(Section):
    """Energy accounting, background probes and the thresholds the rendered alerts use."""

    watts_per_core: float = Field(
        default=10.0,
        gt=0,
        description="energy estimate where RAPL is unreadable: CPU-seconds x this many watts",
    )
    powercap_dir: Path = Field(
        default=Path("/sys/class/powercap"), description="where the RAPL energy counters live"
    )
    deep_probe_interval_seconds: float = Field(
        default=60.0, ge=0, description="how often idle models get the deep probe; 0: never"
    )
    deep_probe_failures_before_restart: int = Field(
        default=3, ge=0, description="failed deep probes in a row that restart a model; 0: never"
    )
    scrape_interval_seconds: int = Field(default=15, ge=1, description="rendered prometheus.yml")
    worker_targets: list[str] = Field(
        default_factory=list, description="host:port of each worker Prometheus also scrapes"
    )
    drift_target: str | None = Field(
        default=None,
        description="host:port of `demigod ops drift --watch` (ops.drift.metrics_port); "
        "None: not scraped",
    )
    alert_p95_latency_seconds: float = Field(default=3.0, gt=0)
    alert_error_ratio: float = Field(default=0.05, gt=0, le=1)
    alert_queue_fill_ratio: float = Field(
        default=0.8, gt=0, le=1, description="queue depth alert: this share of engine.queue_size"
    )
    alert_waf_blocks_per_second: float = Field(default=1.0, gt=0)
    alert_webhook_url: str = Field(
        default="http://127.0.0.1:9095/alerts",
        description="Alertmanager webhook receiver (PagerDuty/Slack/Matrix bridge)",
    )
    log_content: bool = Field(
        default=False, description="put prompt and completion text in the request log line"
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL (a collector's /v1/traces); None: no traces sent",
    )


GIB = 1024**3


class TolerationConfig(Section):
    """A Kubernetes toleration a node class's taint needs (e.g. nvidia.com/gpu:NoSchedule)."""

    key: str = Field(min_length=1)
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = Field(default=None, description="with operator Equal")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class NodeClassConfig(Section):
    """A kind of node workers can be placed on: what one worker may use there, and how
    Kubernetes selects it (node labels, taints)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    accelerator: Literal["none", "nvidia"] = Field(
        default="none", description="nvidia: workers get nvidia.com/gpu and offload the model"
    )
    memory_bytes: int = Field(gt=0, description="RAM one worker may be given on such a node")
    cpu_cores: float = Field(gt=0, description="cores one worker is given (decode threads)")
    gpus: int = Field(default=0, ge=0, description="GPUs one worker may claim (nvidia)")
    gpu_memory_bytes: int = Field(default=0, ge=0, description="memory of each GPU (nvidia)")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[TolerationConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _gpus_on_gpu_classes(self) -> NodeClassConfig:
        if self.accelerator == "nvidia" and not (self.gpus and self.gpu_memory_bytes):
            raise ValueError(f"node class {self.name}: nvidia needs gpus and gpu_memory_bytes")
        if self.accelerator == "none" and (self.gpus or self.gpu_memory_bytes):
            raise ValueError(f"node class {self.name}: gpus need accelerator nvidia")
        return self


class ModelFootprintConfig(Section):
    """A model's measured size, declared for models whose GGUF is not on the rendering
    machine (`demigod deploy footprint MODEL` prints these numbers)."""

    parameters: int = Field(gt=0)
    weights_bytes: int = Field(gt=0, description="the GGUF file's size")
    state_bytes_per_sequence: int = Field(
        ge=0, description="one sequence's state at n_ctx tokens (hybrids: with their KV cells)"
    )


class PlacementConfig(Section):
    """Which node class each worker runs on and what it requests (demigod.deploy.placement):
    small models on CPU nodes, large ones on GPU nodes, the middle by measured memory."""

    cpu_max_parameters: int = Field(
        default=7_000_000_000, gt=0, description="models this small or smaller run on CPU nodes"
    )
    gpu_min_parameters: int = Field(
        default=12_000_000_000,
        gt=0,
        description="models larger than this run on GPU nodes; in between: by memory need",
    )
    overhead_bytes: int = Field(
        default=512 * 1024**2,
        ge=0,
        description="per worker on top of weights and states: Python, llama.cpp compute buffers",
    )
    memory_limit_ratio: float = Field(
        default=1.25, ge=1, description="memory limit = request x this (capped by the node class)"
    )
    node_classes: list[NodeClassConfig] = Field(
        default_factory=lambda: [
            NodeClassConfig(
                name="cpu",
                memory_bytes=32 * GIB,
                cpu_cores=8,
                node_selector={"demigod.io/node-class": "cpu"},
            ),
            NodeClassConfig(
                name="gpu",
                accelerator="nvidia",
                memory_bytes=64 * GIB,
                cpu_cores=8,
                gpus=1,
                gpu_memory_bytes=24 * GIB,
                node_selector={"nvidia.com/gpu.present": "true"},
                tolerations=[
                    TolerationConfig(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
                ],
            ),
        ],
        min_length=1,
    )
    footprints: dict[str, ModelFootprintConfig] = Field(
        default_factory=dict, description="declared sizes by model name; others are measured"
    )

    @model_validator(mode="after")
    def _consistent(self) -> PlacementConfig:
        if self.gpu_min_parameters < self.cpu_max_parameters:
            raise ValueError("gpu_min_parameters must be >= cpu_max_parameters")
        names = [node_class.name for node_class in self.node_classes]
        if len(names) != len(set(names)):
            raise ValueError(f"node class names must be unique: {names}")
        return self


class EnvironmentConfig(Section):
    """One Kustomize overlay (dev, stage, prod): its namespace and replica bounds."""

    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    gateway_replicas: int = Field(ge=1, description="gateway minimum (its HPA's floor)")
    gateway_max_replicas: int = Field(ge=1)
    worker_min_replicas: int = Field(
        ge=1, description="per model; >= 1: scale-to-zero is not supported (docs/kubernetes.md)"
    )
    worker_max_replicas: int = Field(ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> EnvironmentConfig:
        if self.gateway_max_replicas < self.gateway_replicas:
            raise ValueError("gateway_max_replicas must be >= gateway_replicas")
        if self.worker_max_replicas < self.worker_min_replicas:
            raise ValueError("worker_max_replicas must be >= worker_min_replicas")
        return self


class KubernetesSecretsConfig(Section):
    """Names of the Secrets the manifests reference; their contents are never rendered."""

    api_keys: str = Field(default="demigod-api-keys", description="key api-keys.json")
    s3: str = Field(default="demigod-s3", description="AWS_* variables for snapshots")
    audit_signing_key: str = Field(
        default="demigod-audit-signing-key", description="key signing-key.pem (Ed25519)"
    )
    env: str = Field(
        default="demigod-env",
        description="DEMIGOD_* variables holding credentials (DEMIGOD_DATABASE_URL, "
        "DEMIGOD_SECURITY__REDIS_URL); optional",
    )


def _default_environments() -> dict[str, EnvironmentConfig]:
    return {
        "dev": EnvironmentConfig(
            namespace="demigod-dev",
            gateway_replicas=1,
            gateway_max_replicas=2,
            worker_min_replicas=1,
            worker_max_replicas=2,
        ),
        "stage": EnvironmentConfig(
            namespace="demigod-stage",
            gateway_replicas=2,
            gateway_max_replicas=4,
            worker_min_replicas=1,
            worker_max_replicas=4,
        ),
        "prod": EnvironmentConfig(
            namespace="demigod",
            gateway_replicas=3,
            gateway_max_replicas=10,
            worker_min_replicas=5,
            worker_max_replicas=20,
        ),
    }


class ImagesConfig(Section):
    """The container images every deploy renderer (Podman, Kubernetes) references:
    REGISTRY/demigod-COMPONENT:TAG, COMPONENT gateway, worker-cpu or worker-cuda (a worker's
    by the node class placement chose). The names `make images` builds and the release
    workflow pushes (docs/containers.md#image-names)."""

    registry: str = Field(
        default="localhost",
        pattern=r"^[a-z0-9]([a-z0-9.:_-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$",
        description="`make images` tags localhost; the release pushes to vars.IMAGE_REGISTRY",
    )
    tag: str = Field(
        default=__version__,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="a fixed release tag (the package version by default), never latest",
    )

    @field_validator("tag")
    @classmethod
    def _fixed_tag(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("`latest` moves: name a release (the package version by default)")
        return value


class KubernetesConfig(Section):
    """What `demigod deploy render k8s` renders (docs/kubernetes.md): scaling signals and
    windows, disruption budget, the gateway's storage, the Secrets it references, the
    cluster's Prometheus and inference gateway. Images: the `images` section."""

    environments: dict[str, EnvironmentConfig] = Field(
        default_factory=_default_environments, min_length=1, description="Kustomize overlays"
    )
    max_unavailable_percent: int = Field(
        default=20,
        ge=0,
        le=100,
        description="of a model's replicas, in rollouts (drains: one pod at a time, which "
        "keeps this floor from 100 / max_unavailable_percent replicas on)",
    )
    max_surge_percent: int = Field(
        default=25, ge=1, le=100, description="extra replicas a rolling update may start"
    )
    queue_target_per_replica: float = Field(
        default=4.0, gt=0, description="scale out when requests waiting per worker exceed this"
    )
    state_usage_target: float = Field(
        default=0.8, gt=0, le=1, description="... or when this share of decode slots is in use"
    )
    gpu_memory_target: float = Field(
        default=0.9, gt=0, le=1, description="... or (GPU workers) this share of GPU memory"
    )
    polling_interval_seconds: int = Field(default=15, ge=1, description="KEDA's query interval")
    scale_up_window_seconds: int = Field(
        default=30, ge=0, description="stabilisation before adding replicas"
    )
    scale_down_window_seconds: int = Field(
        default=300, ge=0, description="stabilisation before removing replicas (model loads)"
    )
    model_load_bytes_per_second: int = Field(
        default=100 * 1024**2,
        gt=0,
        description="slowest expected read of a GGUF at startup: sizes the startup probe",
    )
    prometheus_url: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="where KEDA and prometheus-adapter query",
    )
    prometheus_namespace: str = Field(
        default="monitoring", description="Prometheus's namespace, allowed to scrape workers"
    )
    models_claim: str = Field(
        default="demigod-models", description="PersistentVolumeClaim holding the GGUF files"
    )
    models_mount: str = Field(default="/models", description="where workers see it")
    gateway_storage: str = Field(
        default="1Gi",
        pattern=r"^[1-9][0-9]*(Mi|Gi|Ti)$",
        description="each gateway replica's volume: its audit chain, canary state, API keys",
    )
    storage_class: str | None = Field(
        default=None, description="StorageClass of the gateway's volumes; None: the default"
    )
    secrets: KubernetesSecretsConfig = Field(default_factory=KubernetesSecretsConfig)
    inference_gateway: str = Field(
        default="inference-gateway", description="Gateway the HTTPRoute alternative attaches to"
    )
    endpoint_picker: str = Field(
        default="demigod-epp", description="the endpoint picker Service each InferencePool uses"
    )


# Asymmetric signatures only: a JWKS publishes public keys, so HMAC ("HS256") and "none"
# can never be verified against it and must never be accepted.
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")


class OIDCConfig(Section):
    """JWT access tokens from an OpenID provider (Keycloak, oidc-provider, ...)."""

    issuer: str | None = Field(
        default=None, description="exact `iss`; discovery at ISSUER/.well-known/...; None: no JWTs"
    )
    audience: str = Field(default="demigod", description="the gateway's id; `aud` must hold it")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        description="accepted signature algorithms (never read from the token)",
    )
    leeway_seconds: int = Field(default=30, ge=0, le=300, description="clock skew for exp/nbf/iat")
    tenant_claim: str = Field(
        default="tenant",
        description="claim naming the tenant (dotted path); else a tenant: scope, client_id, "
        "azp, sub",
    )
    scope_claim: str = Field(
        default="scope",
        description="claim with scopes or roles (space-separated string or list; dotted path, "
        "e.g. realm_access.roles for Keycloak)",
    )
    model_scope_prefix: str = Field(
        default="model:", description="scope PREFIX+NAME allows model NAME; PREFIX+* allows all"
    )
    tenant_scope_prefix: str = Field(
        default="tenant:",
        description="without a tenant claim, a scope or role PREFIX+NAME names the tenant",
    )
    jwks_refresh_min_seconds: float = Field(
        default=30.0, ge=0, description="at most one JWKS fetch per this interval (unknown kid)"
    )
    jwks_max_age_seconds: float = Field(
        default=3600.0, gt=0, description="refetch the JWKS when older (old keys kept on failure)"
    )
    http_timeout_seconds: float = Field(default=5.0, gt=0)
    max_token_bytes: int = Field(default=8192, ge=256, description="longer tokens: 401 oversized")

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg not in JWT_ALGORITHMS]
        if bad or not value:
            raise ValueError(f"unsupported JWT algorithms {bad}; choose from {JWT_ALGORITHMS}")
        return value


class TenantConfig(Section):
    """One tenant's limits; None means unlimited."""

    requests_per_minute: int | None = Field(default=None, ge=0)
    tokens_per_minute: int | None = Field(default=None, ge=0)
    concurrent_requests: int | None = Field(default=None, ge=0)
    tokens_per_day: int | None = Field(default=None, ge=0)
    models: list[str] | None = Field(default=None, description="allowed models; None: all")


class SecurityConfig(Section):
    """Identity (JWT, API keys), tenants and quotas (docs/security.md)."""

    auth: Literal["required", "off"] = Field(
        default="required", description="off: every request is the anonymous tenant (demo only)"
    )
    oidc: OIDCConfig = Field(default_factory=OIDCConfig)
    api_keys_file: Path | None = Field(
        default=None, description="hashed API keys; None: DATA_DIR/security/api-keys.json"
    )
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    default_tenant: TenantConfig = Field(
        default_factory=TenantConfig, description="limits of tenants not listed in `tenants`"
    )
    redis_url: str | None = Field(
        default=None, description="shared quota counters for several replicas; None: in memory"
    )
    concurrency_lease_seconds: int = Field(
        default=900, ge=1, description="a crashed replica's concurrent slots free after this"
    )
    admin_tenants: list[str] = Field(
        default_factory=list,
        description="tenants whose keys or tokens may read GET /admin/state (`demigod ops "
        "drift`); with auth off every caller may",
    )


class PromotionGates(Section):
    """What `demigod models promote` requires of a version before it becomes `stable`."""

    max_perplexity_delta: float = Field(
        default=0.05, ge=0, description="perplexity at most this much above its F16 reference"
    )
    min_hemlock_pass_rate: float = Field(default=0.95, ge=0, le=1)
    eval_score_epsilon: float = Field(
        default=0.01, ge=0, description="lm-eval score at least the current stable's minus this"
    )


class LifecycleConfig(Section):
    """The model lifecycle (docs/lifecycle.md): promotion gates, validation, retirement."""

    gates: PromotionGates = Field(default_factory=PromotionGates)
    retire_after_days: int = Field(
        default=90, ge=1, description="versions neither served nor promoted this long retire"
    )
    validation_text: Path | None = Field(
        default=None, description="held-out text for perplexity; None: the shipped one"
    )
    validation_n_ctx: int = Field(default=512, ge=16, description="perplexity window, tokens")
    validation_stride: int = Field(default=256, ge=1, description="sliding window step")
    validation_max_tokens: int = Field(default=4096, ge=16, description="of the held-out text")
    hemlock_suite: Path | None = Field(
        default=None, description="Hemlock regression suite (YAML); None: the shipped one"
    )
    lm_eval_tasks: list[str] | None = Field(
        default=None, description="lm-evaluation-harness tasks; None: the shipped offline task"
    )

    @model_validator(mode="after")
    def _stride_within_window(self) -> LifecycleConfig:
        if self.validation_stride > self.validation_n_ctx:
            raise ValueError("validation_stride must not exceed validation_n_ctx")
        return self


class AuditConfig(Section):
    """The tamper-evident audit log (docs/audit.md): hash-chained JSONL, signed checkpoints."""

    enabled: bool = Field(default=True, description="one record per API request and admin event")
    dir: Path | None = Field(
        default=None, description="where the log lives; None: <data_dir>/audit"
    )
    node: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="this process's chain (a subfolder of dir); None: <hostname>-<port>",
    )
    include_text: bool = Field(
        default=False, description="store request bodies in records, not only their sha256"
    )
    checkpoint_every_records: int = Field(
        default=1000, ge=1, description="sign a Merkle checkpoint after this many records..."
    )
    checkpoint_every_seconds: float = Field(
        default=300.0, gt=0, description="...or this long after the first unsealed record"
    )
    signing_key_path: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM); None: <data_dir>/audit-signing-key.pem, "
        "generated with mode 0600 on first use",
    )
    tsa_url: str | None = Field(
        default=None, description="RFC 3161 timestamp authority; None: checkpoints unstamped"
    )
    tsa_cert_path: Path | None = Field(
        default=None, description="PEM: the TSA's certificate or its CA, trusted by verify"
    )
    tsa_timeout_seconds: float = Field(default=10.0, gt=0)
    retention_days: int = Field(
        default=183, ge=1, description="segments older than this are deleted (>= 6 months)"
    )
    rotate_bytes: int = Field(
        default=64 * 1024 * 1024, ge=4096, description="start a new segment past this size"
    )
    max_group_records: int = Field(
        default=256,
        ge=1,
        description="group commit: most records written per fsync; responses wait for theirs",
    )


class SnapshotConfig(Section):
    """Where retired versions are snapshotted: any S3-compatible store (AWS, MinIO, Ceph).
    Credentials come from the environment as boto3 reads them (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role), never from this file."""

    endpoint_url: str | None = Field(
        default=None, description="e.g. http://minio:9000; None: AWS S3 itself"
    )
    bucket: str | None = Field(default=None, description="None: snapshots are not configured")
    prefix: str = Field(default="demigod/snapshots/", description="key prefix inside the bucket")
    region: str | None = Field(default=None, description="None: from the environment")
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="path", description="path: bucket in the URL path (MinIO, Ceph, AWS)"
    )
    multipart_threshold_bytes: int = Field(
        default=64 * 1024**2, ge=5 * 1024**2, description="larger files upload in parts"
    )
    multipart_chunk_bytes: int = Field(
        default=16 * 1024**2, ge=5 * 1024**2, description="part size (S3's minimum is 5 MiB)"
    )


WafAction = Literal["block", "flag", "log"]
ScreenedRole = Literal["system", "user", "assistant", "tool", "developer"]


class WafConfig(Section):
    """The prompt-injection screen (demigod.security.waf) on the chat and completion routes."""

    enabled: bool = True
    default_action: WafAction = Field(
        default="block",
        description="block: 400 prompt_injection; flag: x-demigod-waf header + log; log: log only",
    )
    tenant_actions: dict[str, WafAction] = Field(
        default_factory=dict, description="per-tenant action, overriding default_action"
    )
    threshold: float = Field(
        default=0.74,
        ge=0,
        le=1,
        description="model score at which the model alone flags a request (x-demigod-waf; "
        "chosen on the validation split: <= 1 % of benign texts suspected; "
        "bench/waf_quality.py)",
    )
    block_threshold: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="model score at which the model alone blocks (rules always block); "
        "between threshold and this, a tenant whose action is block gets flag instead. "
        "1.0: the model never blocks alone — at the score above every validation benign "
        "text (0.83) it blocked 1.7 % of an independent set's benign texts and 6 % of its "
        "long documents (docs/security-waf.md, round five)",
    )
    roles: list[ScreenedRole] = Field(
        default_factory=lambda: list[ScreenedRole](["user", "tool"]),
        description="chat message roles screened (tool results carry fetched documents)",
    )
    tools: bool = Field(
        default=True,
        description="screen tool definitions (names, descriptions, parameter schemas' text): "
        "tool lists often come from third parties (MCP servers) and templates render them",
    )
    max_chars: int = Field(
        default=200_000, ge=1, description="characters read per message (bounded cost)"
    )


class UpstreamConfig(Section):
    """A model served by OpenAI-compatible endpoints elsewhere: `demigod worker`s, vLLM,
    llama-server, TGI, Ollama, trtllm-serve. Each URL is one replica."""

    name: str = Field(pattern=MODEL_NAME_PATTERN, max_length=128)
    urls: list[str] = Field(
        default_factory=list,
        description="base URL of each replica, without /v1; empty: only those published in "
        "gateway.replicas_dir (`demigod ops autoscale`)",
    )
    served_name: str | None = Field(
        default=None, description="the model name the upstream knows; None: the same name"
    )
    categories: list[str] = Field(default_factory=lambda: ["chat"])
    version: str = Field(
        default="remote",
        description="the version its replicas serve; a second entry of the name with another "
        "version is the canary candidate of the first (docs/routing.md)",
    )
    fallback: list[str] = Field(
        default_factory=list, description="models tried in order when no replica can serve"
    )
    health_path: str = Field(
        default="/readyz", description="GET; 200 means ready (llama-server, vLLM: /health)"
    )
    api_key: str | None = Field(default=None, description="sent as Authorization: Bearer")

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream URL must start with http:// or https://: {url!r}")
        return [url.rstrip("/") for url in urls]


class GatewayConfig(Section):
    """How the gateway balances, checks and retries upstream replicas (docs/gateway.md)."""

    health_interval_seconds: float = Field(
        default=1.0, gt=0, description="GET each replica's health_path this often"
    )
    health_timeout_seconds: float = Field(default=1.0, gt=0)
    breaker_failures: int = Field(
        default=5, ge=1, description="consecutive failed requests that open a replica's breaker"
    )
    breaker_open_seconds: float = Field(
        default=5.0, gt=0, description="then one trial request (half-open) may close it again"
    )
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    request_timeout_seconds: float = Field(
        default=600.0, gt=0, description="whole request, streams included"
    )
    max_attempts: int = Field(
        default=2,
        ge=1,
        description="replicas tried per model for a request failing before "
        "its first byte (connect error, 5xx)",
    )
    retry_after_seconds: int = Field(default=1, ge=1, description="on 503 when none can serve")
    max_connections: int = Field(
        default=1000, ge=1, description="pooled upstream connections per gateway process"
    )
    replicas_dir: Path | None = Field(
        default=None,
        description="published replica sets (`demigod ops autoscale`'s replicas_dir), re-read "
        "every health interval: an upstream's replicas become the URLs published for it; "
        "None: the configured URLs only",
    )


class DriftConfig(Section):
    """`demigod ops drift` (docs/operations.md#drift): what git declares, where the running
    containers are, how often to look."""

    lock_file: Path = Field(
        default=Path("models.lock.yaml"),
        description="alias -> version and sha256 per model (`demigod ops lock` writes it)",
    )
    manifests: Path | None = Field(
        default=None,
        description="the committed `deploy render k8s` tree, compared with a fresh render of "
        "this file (kind manifest); None: not compared",
    )
    podman_deployment: Path | None = Field(
        default=None,
        description="the Pod YAML `deploy render podman` wrote and this host plays, compared "
        "with the pods Podman runs (kind container); None: not compared",
    )
    kubernetes_overlay: str | None = Field(
        default=None,
        description="an overlay of `manifests` (dev, stage, prod) compared with the cluster "
        "through `kubectl get` (kind container); None: no cluster is compared",
    )
    kube_context: str | None = Field(
        default=None, description="kubectl's context (KUBECONFIG's current one when None)"
    )
    interval_seconds: float = Field(default=60.0, gt=0, description="--watch: between checks")
    metrics_port: int = Field(
        default=9109, ge=0, le=65535, description="--watch: where demigod_drift is exported"
    )

    @model_validator(mode="after")
    def _overlay_of_manifests(self) -> DriftConfig:
        if self.kubernetes_overlay is not None and self.manifests is None:
            raise ValueError("kubernetes_overlay names an overlay of `manifests`: set both")
        return self


class BackupConfig(Section):
    """`demigod ops backup|restore|drill` (docs/operations.md#backups): where the registry,
    the audit log, keys and model files are copied, and how often. S3 goes through the
    `snapshots` client (endpoint, region, bucket, credentials from the environment)."""

    dir: Path | None = Field(
        default=None,
        description="back up to this directory (another disk, an NFS mount); None: the "
        "snapshots bucket under `prefix`",
    )
    prefix: str = Field(default="demigod/backups/", description="key prefix in the bucket")
    interval_seconds: float = Field(
        default=1.0,
        gt=0,
        le=300,
        description="how often the running agent ships new audit records and changed files, "
        "and Litestream's sync interval: the SQLite and audit RPO",
    )
    full_every_hours: float = Field(
        default=24.0,
        gt=0,
        description="a fresh full copy this often: Litestream's snapshot interval, and the "
        "schedule rendered for PostgreSQL base backups (CronJob, systemd timer)",
    )
    retention_hours: float = Field(
        default=168.0,
        gt=0,
        description="full copies (and the WAL they need) older than this are deleted; the "
        "newest is always kept",
    )
    pg_archive_timeout_seconds: int = Field(
        default=10,
        ge=1,
        description="PostgreSQL's archive_timeout that `ops pg-archive-settings` prints: "
        "the PostgreSQL RPO",
    )
    models: bool = Field(
        default=True,
        description="also copy model files (once per sha256), so a restore can verify and "
        "refetch them",
    )


class AutoscaleConfig(Section):
    """`demigod ops autoscale` (docs/operations.md#autoscaling): worker processes of one
    model on one host, scaled by the Kubernetes HPA algorithm (demigod.scaling.hpa)."""

    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=4, ge=1)
    target_queue_depth: float = Field(
        default=6.0,
        gt=0,
        description="requests waiting or running per replica the scaler aims at "
        "(engine.slots is where a replica starts to queue)",
    )
    target_memory_bytes: int | None = Field(
        default=None, gt=0, description="resident memory per replica to aim at; None: unused"
    )
    target_gpu_memory_bytes: int | None = Field(
        default=None, gt=0, description="GPU memory per replica to aim at; None: unused"
    )
    tolerance: float = Field(
        default=0.1, ge=0, description="no change while value/target is this close to 1"
    )
    interval_seconds: float = Field(default=5.0, gt=0, description="between decisions")
    scale_up_window_seconds: float = Field(
        default=0.0, ge=0, description="a rise must be wanted this long (Kubernetes: 0)"
    )
    scale_down_window_seconds: float = Field(
        default=300.0, ge=0, description="a fall must be wanted this long (Kubernetes: 300)"
    )
    drain_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="a replica being removed gets this long to finish its requests",
    )
    replicas_dir: Path = Field(
        default=Path("var/replicas"),
        description="where the replica set of each model is published (gateway.replicas_dir)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscaleConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class OpsConfig(Section):
    """`demigod ops ...`: operating a deployed mesh (drift, smoke tests; backups, restore,
    autoscaling)."""

    gateway_url: str | None = Field(
        default=None, description="the running gateway; None: http://host:port from this file"
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="key of a security.admin_tenants tenant (admin state, smoke tests); set "
        "it as DEMIGOD_OPS__API_KEY, never in the file",
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="per HTTP request")
    drift: DriftConfig = Field(default_factory=DriftConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)
    autoscale: AutoscaleConfig = Field(default_factory=AutoscaleConfig)


class Settings(BaseSettings):
    """Everything `demigod serve` needs. Every field is also a `DEMIGOD_<FIELD>` variable."""

    model_config = SettingsConfigDict(
        env_prefix="DEMIGOD_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Field(default=Path("var"), description="demo models, caches, toolkits")
    models: list[ModelConfig] = Field(
        default_factory=list, description="models to serve; empty means build and serve the demo"
    )
    default_model: str | None = Field(
        default=None,
        description="where auto goes when no model serves the category; None: first chat model",
    )
    database_url: str | None = Field(
        default=None,
        description="model registry (SQLAlchemy URL, e.g. postgresql+psycopg://...); "
        "None: SQLite in data_dir/registry.db",
    )
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    upstreams: list[UpstreamConfig] = Field(
        default_factory=list, description="models served by remote OpenAI-compatible replicas"
    )
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    placement: PlacementConfig = Field(default_factory=PlacementConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)

    audit: AuditConfig = Field(default_factory=AuditConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    waf: WafConfig = Field(default_factory=WafConfig)
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _upstreams_have_replicas(self) -> Settings:
        if self.gateway.replicas_dir is None:
            empty = [upstream.name for upstream in self.upstreams if not upstream.urls]
            if empty:
                raise ValueError(
                    f"upstreams {', '.join(empty)} list no urls: give them urls, or set "
                    "gateway.replicas_dir where their replica sets are published"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def resolve_config_file(config_file: Path | None = None) -> Path | None:
    """The file settings are read from: `config_file`, else `$DEMIGOD_CONFIG` or ./mesh.yaml
    when present, else None (defaults and variables only).

    Raises FileNotFoundError when an explicitly named file does not exist.
    """
    if config_file is None:
        config_file = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        return config_file if config_file.is_file() else None
    if not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")
    return config_file


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from `config_file` (or `$DEMIGOD_CONFIG`, or ./mesh.yaml if present).

    Raises FileNotFoundError when an explicitly named file does not exist, and
    pydantic.ValidationError naming the bad field when a value is invalid.
    """
    config_file = resolve_config_file(config_file)

    class FileSettings(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})

    clean = {key: value for key, value in overrides.items() if value is not None}
    return FileSettings(**clean)


def settings_json_schema() -> dict[str, Any]:
    """The JSON Schema of `mesh.yaml` (for editors: mesh.schema.json is this, committed)."""
    schema = Settings.model_json_schema()
    schema["title"] = "Phoenix DemiGod mesh.yaml"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
