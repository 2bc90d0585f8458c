"""The placement rule: parameters decide the clear cases, measured memory the middle, and
requests/limits always hold the need on the class chosen."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demigod.config import (
    EngineConfig,
    NodeClassConfig,
    PlacementConfig,
    StateCacheConfig,
    TolerationConfig,
)
from demigod.deploy.placement import (
    MIB,
    ModelFootprint,
    PlacementError,
    memory_need,
    place,
)

GIB = 1024**3
B = 1_000_000_000


def _cpu(name: str, gib: int, cores: float = 8) -> NodeClassConfig:
    return NodeClassConfig(name=name, memory_bytes=gib * GIB, cpu_cores=cores)


def _gpu(name: str, gib: int, gpus: int, gpu_gib: int) -> NodeClassConfig:
    return NodeClassConfig(
        name=name,
        accelerator="nvidia",
        memory_bytes=gib * GIB,
        cpu_cores=8,
        gpus=gpus,
        gpu_memory_bytes=gpu_gib * GIB,
        node_selector={"nvidia.com/gpu.present": "true"},
        tolerations=[TolerationConfig(key="nvidia.com/gpu", effect="NoSchedule")],
    )


def test_the_seed_examples_land_where_the_seed_says() -> None:
    config = PlacementConfig()
    engine = EngineConfig()
    # A 7 B Mamba at Q4 on CPU; a 30 B hybrid on a GPU; a 1.2 B model on CPU.
    mamba_7b = place("mamba-7b", ModelFootprint(7 * B, 4 * GIB, 4 * MIB), engine, config)
    big = place("jamba-30b", ModelFootprint(30 * B, 17 * GIB, 300 * MIB), engine, config)
    small = place("granite-1b", ModelFootprint(int(1.2 * B), GIB, MIB), engine, config)
    assert (mamba_7b.node_class.name, big.node_class.name, small.node_class.name) == (
        "cpu",
        "gpu",
        "cpu",
    )
    assert big.on_gpu and big.resources.gpus == 1
    assert big.tolerations() == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert big.resources.kubernetes()["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in mamba_7b.resources.kubernetes()["limits"]
    assert mamba_7b.node_selector() == {"demigod.io/node-class": "cpu"}


def test_the_middle_band_is_decided_by_memory() -> None:
    config = PlacementConfig(node_classes=[_cpu("cpu", 16), _gpu("gpu", 64, 1, 24)])
    engine = EngineConfig(slots=8)
    fits_in_ram = ModelFootprint(10 * B, 6 * GIB, 8 * MIB)
    too_big_for_ram = ModelFootprint(10 * B, 15 * GIB, 64 * MIB)
    assert place("m", fits_in_ram, engine, config).node_class.name == "cpu"
    placed = place("m", too_big_for_ram, engine, config)
    assert placed.node_class.name == "gpu"
    assert placed.reason == "10.00 B parameters: CPU or GPU (by memory) -> gpu"
    # A hybrid's per-sequence state (KV cells at n_ctx) times the slots tips the balance.
    hybrid = ModelFootprint(10 * B, 10 * GIB, 512 * MIB)
    assert place("m", hybrid, EngineConfig(slots=2), config).node_class.name == "cpu"
    assert place("m", hybrid, EngineConfig(slots=16), config).node_class.name == "gpu"


def test_requests_and_limits_come_from_the_need() -> None:
    config = PlacementConfig(node_classes=[_cpu("cpu", 32)], overhead_bytes=512 * MIB)
    engine = EngineConfig(slots=4, state_cache=StateCacheConfig(ram_bytes=256 * MIB))
    placed = place("m", ModelFootprint(3 * B, 2 * GIB, 10 * MIB), engine, config)
    # 2 GiB weights + 4 x 10 MiB states + 256 MiB cache + 512 MiB overhead = 2856 MiB.
    assert placed.resources.kubernetes() == {
        "requests": {"cpu": "8000m", "memory": "2856Mi"},
        "limits": {"cpu": "8000m", "memory": "3570Mi"},
    }


def test_a_model_no_class_can_hold_is_refused_with_the_numbers() -> None:
    config = PlacementConfig(node_classes=[_cpu("cpu", 8)])
    with pytest.raises(
        PlacementError,
        match=r"jamba-52b.*30.50 GiB of GPU memory; no GPU node class.*none declared",
    ):
        place("jamba-52b", ModelFootprint(52 * B, 30 * GIB, 0), EngineConfig(), config)
    with pytest.raises(
        PlacementError,
        match=r"9.75 GiB of RAM.*no CPU node class in placement.node_classes \(cpu\)",
    ):
        place("mamba-7b", ModelFootprint(7 * B, 9 * GIB, 0), EngineConfig(), config)


def test_a_model_larger_than_one_gpu_takes_several() -> None:
    config = PlacementConfig(node_classes=[_gpu("gpu", 128, 4, 24)])
    placed = place("m", ModelFootprint(70 * B, 40 * GIB, 0), EngineConfig(), config)
    assert placed.resources.gpus == 2


def test_node_classes_are_checked_when_the_config_loads() -> None:
    with pytest.raises(ValueError, match="nvidia needs gpus"):
        NodeClassConfig(name="g", accelerator="nvidia", memory_bytes=GIB, cpu_cores=1)
    with pytest.raises(ValueError, match="unique"):
        PlacementConfig(node_classes=[_cpu("a", 1), _cpu("a", 2)])
    with pytest.raises(ValueError, match="gpu_min_parameters"):
        PlacementConfig(cpu_max_parameters=10, gpu_min_parameters=5)


# Property tests: any footprint, any engine, any set of node classes.

footprints = st.builds(
    ModelFootprint,
    parameters=st.integers(1, 200 * B),
    weights_bytes=st.integers(1, 160 * GIB),
    state_bytes_per_sequence=st.integers(0, 2 * GIB),
)
engines = st.builds(
    EngineConfig,
    slots=st.integers(1, 64),
    state_cache=st.builds(
        StateCacheConfig, enabled=st.booleans(), ram_bytes=st.integers(0, 8 * GIB)
    ),
)
cpu_classes = st.builds(
    NodeClassConfig,
    name=st.sampled_from(["c1", "c2", "c3"]),
    memory_bytes=st.integers(GIB, 512 * GIB),
    cpu_cores=st.sampled_from([1, 2, 4.5, 16]),
)
gpu_classes = st.builds(
    NodeClassConfig,
    name=st.sampled_from(["g1", "g2", "g3"]),
    accelerator=st.just("nvidia"),
    memory_bytes=st.integers(GIB, 512 * GIB),
    cpu_cores=st.just(8),
    gpus=st.integers(1, 8),
    gpu_memory_bytes=st.integers(8 * GIB, 141 * GIB),
)
configs = st.builds(
    PlacementConfig,
    node_classes=st.lists(
        st.one_of(cpu_classes, gpu_classes), min_size=1, max_size=4, unique_by=lambda c: c.name
    ),
    memory_limit_ratio=st.floats(1, 3),
    overhead_bytes=st.integers(0, 2 * GIB),
)


@given(footprints, engines, configs)
def test_the_rule_holds_for_any_model(
    footprint: ModelFootprint, engine: EngineConfig, config: PlacementConfig
) -> None:
    need = memory_need(footprint, engine, config)
    try:
        placed = place("m", footprint, engine, config)
    except PlacementError:
        placed = None
    # Which kinds the parameter count allows.
    if footprint.parameters <= config.cpu_max_parameters:
        allowed = {"none"}
    elif footprint.parameters > config.gpu_min_parameters:
        allowed = {"nvidia"}
    else:
        allowed = {"none", "nvidia"}

    def holds(node_class: NodeClassConfig) -> bool:
        if node_class.accelerator == "none":
            return -(-need.host // MIB) * MIB <= node_class.memory_bytes
        fits_gpus = need.device <= node_class.gpus * node_class.gpu_memory_bytes
        return fits_gpus and -(-need.host_offloaded // MIB) * MIB <= node_class.memory_bytes

    fitting = [c for c in config.node_classes if c.accelerator in allowed and holds(c)]
    if placed is None:
        assert not fitting  # refused only when nothing allowed can hold it
        return
    chosen = placed.node_class
    assert chosen.accelerator in allowed and holds(chosen)
    # CPU is preferred whenever a CPU class holds the model.
    if any(c.accelerator == "none" for c in fitting):
        assert not placed.on_gpu
    resources = placed.resources
    held = need.host_offloaded if placed.on_gpu else need.host
    assert held <= resources.memory_request_bytes < held + MIB
    assert resources.memory_request_bytes <= resources.memory_limit_bytes <= chosen.memory_bytes
    if placed.on_gpu:
        assert 1 <= resources.gpus <= chosen.gpus
        assert need.device <= resources.gpus * chosen.gpu_memory_bytes
        assert need.device > (resources.gpus - 1) * chosen.gpu_memory_bytes  # no spare GPU
    else:
        assert resources.gpus == 0
    # The smallest holding class of the chosen kind wins.
    same_kind = [c for c in fitting if c.accelerator == chosen.accelerator]
    size = lambda c: (c.gpus * c.gpu_memory_bytes, c.memory_bytes)  # noqa: E731
    assert size(chosen) == min(size(c) for c in same_kind)
