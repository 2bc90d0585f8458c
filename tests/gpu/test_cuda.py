"""On a real NVIDIA GPU: llama.cpp (built with CUDA) puts the model's layers in GPU memory
and still generates, and a live server exports the GPU's memory as NVML reads it."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.cuda


def process_gpu_bytes(nvml: ModuleType) -> int:
    """GPU memory this process holds, over every device."""
    total = 0
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        for process in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid == os.getpid():
                total += process.usedGpuMemory or 0
    return total


def test_llama_cpp_offloads_the_model_to_the_gpu(nvml: ModuleType, tiny_model: Path) -> None:
    import llama_cpp

    assert llama_cpp.llama_supports_gpu_offload(), "llama-cpp-python was built without CUDA"
    model = llama_cpp.Llama(str(tiny_model), n_gpu_layers=-1, n_ctx=256, verbose=False)
    try:
        assert process_gpu_bytes(nvml) > 0, "the model loaded but holds no GPU memory"
        out = model.create_completion("def main(", max_tokens=8, temperature=0.0)
        assert out["usage"]["completion_tokens"] > 0
    finally:
        model.close()


def test_a_live_server_exports_the_gpu_memory_nvml_reads(
    nvml: ModuleType, tiny_model: Path, tmp_path: Path
) -> None:
    server = start_server([f"tiny={tiny_model}"], tmp_path)
    try:
        page = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        stop_server(server)
    totals = {
        sample.labels["gpu"]: sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == "demigod_gpu_memory_total_bytes"
    }
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    assert totals["0"] == nvml.nvmlDeviceGetMemoryInfo(handle).total
