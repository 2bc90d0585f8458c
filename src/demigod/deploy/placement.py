"""Where a model's worker runs and what it asks for: the one placement rule that every
renderer (Kubernetes, Podman, Terraform) uses.

Parameters decide the clear cases (seed §3): a model of at most `cpu_max_parameters` goes to
a CPU node class, one of more than `gpu_min_parameters` to a GPU node class. In between, the
measured memory need decides: the smallest CPU class that holds it, else the smallest GPU
class whose GPUs hold it. Requests and limits come from the same numbers, so what the
scheduler reserves is what placement assumed.

Pure: no I/O, no clock. The numbers come from `demigod.deploy.footprint` (measured from the
GGUF) or from `placement.footprints` in mesh.yaml.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from demigod.config import EngineConfig, NodeClassConfig, PlacementConfig

MIB = 1024**2


class PlacementError(ValueError):
    """No declared node class can hold the model."""


@dataclass(frozen=True)
class ModelFootprint:
    """A model's measured size: parameters, the GGUF's bytes, and one sequence's state at
    the configured context (a hybrid's state includes its attention KV cells, so it grows
    with n_ctx; a pure SSM's does not)."""

    parameters: int
    weights_bytes: int
    state_bytes_per_sequence: int


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes one worker holds while serving."""

    weights: int
    slot_states: int  # one live state per decode slot
    state_cache: int  # the RAM tier of saved states (engine.state_cache.ram_bytes)
    overhead: int  # Python, llama.cpp compute buffers

    @property
    def host(self) -> int:
        """RAM a CPU worker needs: everything lives in host memory."""
        return self.weights + self.slot_states + self.state_cache + self.overhead

    @property
    def device(self) -> int:
        """GPU memory an offloaded worker needs: weights, live states, compute buffers."""
        return self.weights + self.slot_states + self.overhead

    @property
    def host_offloaded(self) -> int:
        """RAM a GPU worker still needs: saved states are copied to host memory, and the
        process has its own overhead; weights sit on the GPU (the mmapped file is page cache)."""
        return self.slot_states + self.state_cache + self.overhead


@dataclass(frozen=True)
class Resources:
    """Kubernetes-style requests and limits, as numbers (Podman and Terraform read these too)."""

    cpu_cores: float
    memory_request_bytes: int
    memory_limit_bytes: int
    gpus: int

    def kubernetes(self) -> dict[str, dict[str, str]]:
        """The container's `resources` block. CPU request equals limit so decode threads
        are never throttled below what they were sized for; GPUs are a limit only (an
        extended resource's request defaults to it)."""
        cpu = f"{round(self.cpu_cores * 1000)}m"
        requests = {"cpu": cpu, "memory": _quantity(self.memory_request_bytes)}
        limits = {"cpu": cpu, "memory": _quantity(self.memory_limit_bytes)}
        if self.gpus:
            limits["nvidia.com/gpu"] = str(self.gpus)
        return {"requests": requests, "limits": limits}


@dataclass(frozen=True)
class Placement:
    """Where one model's worker runs, why, and what it reserves."""

    model: str
    footprint: ModelFootprint
    node_class: NodeClassConfig
    reason: str
    need: MemoryNeed
    resources: Resources

    @property
    def on_gpu(self) -> bool:
        return self.node_class.accelerator != "none"

    def node_selector(self) -> dict[str, str]:
        return dict(self.node_class.node_selector)

    def tolerations(self) -> list[dict[str, str]]:
        return [
            toleration.model_dump(exclude_none=True) for toleration in self.node_class.tolerations
        ]


def memory_need(
    footprint: ModelFootprint, engine: EngineConfig, config: PlacementConfig
) -> MemoryNeed:
    """The bytes a worker of this model needs with this engine configuration."""
    cache = engine.state_cache.ram_bytes if engine.state_cache.enabled else 0
    return MemoryNeed(
        weights=footprint.weights_bytes,
        slot_states=footprint.state_bytes_per_sequence * engine.slots,
        state_cache=cache,
        overhead=config.overhead_bytes,
    )


def place(
    model: str, footprint: ModelFootprint, engine: EngineConfig, config: PlacementConfig
) -> Placement:
    """Pick the node class for `model` and size its worker. Raises PlacementError when no
    node class of the kind the rule allows can hold the memory need."""
    need = memory_need(footprint, engine, config)
    cpu_classes = _smallest_first(c for c in config.node_classes if c.accelerator == "none")
    gpu_classes = _smallest_first(c for c in config.node_classes if c.accelerator != "none")
    billions = footprint.parameters / 1e9
    if footprint.parameters <= config.cpu_max_parameters:
        candidates, kind = cpu_classes, "CPU"
    elif footprint.parameters > config.gpu_min_parameters:
        candidates, kind = gpu_classes, "GPU"
    else:
        candidates, kind = cpu_classes + gpu_classes, "CPU or GPU (by memory)"
    rule = f"{billions:.2f} B parameters: {kind}"
    for node_class in candidates:
        resources = _size(node_class, need, config)
        if resources is not None:
            reason = f"{rule} -> {node_class.name}"
            return Placement(model, footprint, node_class, reason, need, resources)
    declared = ", ".join(c.name for c in candidates) or "none declared"
    raise PlacementError(
        f"model {model!r} ({rule}) needs {_gib(need.host)} of RAM on a CPU node or "
        f"{_gib(need.device)} of GPU memory; no {kind} node class in placement.node_classes "
        f"({declared}) holds it"
    )


def _size(
    node_class: NodeClassConfig, need: MemoryNeed, config: PlacementConfig
) -> Resources | None:
    """The resources `need` takes on `node_class`, or None when it does not fit."""
    gpus = 0
    host = need.host
    if node_class.accelerator != "none":
        gpus = math.ceil(need.device / node_class.gpu_memory_bytes)
        if gpus > node_class.gpus:
            return None
        host = need.host_offloaded
    request_mib = math.ceil(host / MIB)
    capacity_mib = node_class.memory_bytes // MIB
    if request_mib > capacity_mib:
        return None
    limit_mib = min(math.ceil(request_mib * config.memory_limit_ratio), capacity_mib)
    return Resources(
        cpu_cores=node_class.cpu_cores,
        memory_request_bytes=request_mib * MIB,
        memory_limit_bytes=limit_mib * MIB,
        gpus=gpus,
    )


def _smallest_first(classes: Iterable[NodeClassConfig]) -> list[NodeClassConfig]:
    """Smallest class first, so a model takes the least machine that holds it."""
    return sorted(classes, key=lambda c: (c.gpus * c.gpu_memory_bytes, c.memory_bytes, c.name))


def _quantity(n_bytes: int) -> str:
    return f"{n_bytes // MIB}Mi" if n_bytes % MIB == 0 else str(n_bytes)


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 1024**3:.2f} GiB"
