"""Variables for deploy/terraform (modules router and model): per environment, the gateway's
replicas and each model's quantization, GPU placement and measured footprint, so the
Terraform placement module can check the rendered manifests against the same rule."""

from __future__ import annotations

import re

from demigod.config import EnvironmentConfig, ModelConfig, Settings
from demigod.deploy.kubernetes.names import dns_label
from demigod.deploy.placement import Placement

# The quantization llama.cpp writes at the end of a GGUF's name: mamba-1.4b.Q4_K_M.gguf.
_QUANTIZATION = re.compile(r"[.-]((?:I?Q\d\w*)|BF16|F16|F32)$", re.IGNORECASE)


def quantization(model: ModelConfig) -> str:
    found = _QUANTIZATION.search(model.path.stem)
    return found.group(1).upper() if found else "unknown"


def terraform_variables(
    settings: Settings, placements: list[Placement], environment: EnvironmentConfig
) -> dict[str, object]:
    """The ENV.tfvars.json document (the stable version's numbers per model name)."""
    engine, placement = settings.engine, settings.placement
    models: dict[str, object] = {}
    for model, placed in zip(settings.models, placements, strict=True):
        footprint = placed.footprint
        models.setdefault(
            model.name,
            {
                "label": dns_label(model.name),
                "quantization": quantization(model),
                "gpu": placed.on_gpu,
                "footprint": {
                    "parameters": footprint.parameters,
                    "weights_bytes": footprint.weights_bytes,
                    "state_bytes_per_sequence": footprint.state_bytes_per_sequence,
                },
            },
        )
    return {
        "router_replicas": environment.gateway_replicas,
        "models": models,
        "sizing": {
            "slots": engine.slots,
            "state_cache_bytes": engine.state_cache.ram_bytes if engine.state_cache.enabled else 0,
            "overhead_bytes": placement.overhead_bytes,
            "memory_limit_ratio": placement.memory_limit_ratio,
            "cpu_max_parameters": placement.cpu_max_parameters,
            "gpu_min_parameters": placement.gpu_min_parameters,
            "node_classes": [
                c.model_dump(exclude={"node_selector", "tolerations"})
                for c in placement.node_classes
            ],
        },
    }
