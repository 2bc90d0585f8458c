"""GPU utilisation, memory and energy through NVML, only where a GPU and its driver exist.

NVML comes from the optional `nvidia-ml-py` package (`pip install 'demigod[gpu]'`). Without
it, without a driver or without a device, nothing is exported: absent series, not zeros, so
dashboards show "no data" rather than an idle GPU that is not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


def _nvml() -> ModuleType | None:
    """The initialised `pynvml` module, or None when NVML is unusable here."""
    try:
        import pynvml  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            return None
    except pynvml.NVMLError:
        return None
    module: ModuleType = pynvml
    return module


def _handles(nvml: ModuleType) -> list[Any]:
    return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]


class GpuCollector(Collector):
    """`demigod_gpu_utilization_ratio` and `demigod_gpu_memory_{used,total}_bytes` per GPU."""

    def __init__(self, nvml: ModuleType) -> None:
        self._nvml = nvml

    @classmethod
    def find(cls) -> GpuCollector | None:
        """A collector when NVML sees at least one GPU, else None."""
        nvml = _nvml()
        return cls(nvml) if nvml is not None else None

    def collect(self) -> Iterable[Metric]:
        utilization = GaugeMetricFamily(
            "demigod_gpu_utilization_ratio", "Share of time the GPU was busy (0-1)", labels=["gpu"]
        )
        used = GaugeMetricFamily(
            "demigod_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu"]
        )
        total = GaugeMetricFamily("demigod_gpu_memory_total_bytes", "GPU memory", labels=["gpu"])
        for index, handle in enumerate(_handles(self._nvml)):
            memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
            utilization.add_metric([str(index)], rates.gpu / 100)
            used.add_metric([str(index)], memory.used)
            total.add_metric([str(index)], memory.total)
        yield from (utilization, used, total)


class NvmlEnergySource:
    """Sum of every GPU's energy counter (millijoules since driver load)."""

    name = "nvml"
    subtract_idle = True

    def __init__(self, nvml: ModuleType) -> None:
        self._nvml = nvml

    @classmethod
    def find(cls) -> NvmlEnergySource | None:
        """A source when NVML sees a GPU with an energy counter (Volta and later), else None."""
        nvml = _nvml()
        if nvml is None:
            return None
        source = cls(nvml)
        try:
            source.joules()
        except nvml.NVMLError:
            return None
        return source

    def joules(self) -> float:
        nvml = self._nvml
        millijoules = sum(nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in _handles(nvml))
        return float(millijoules) / 1000
