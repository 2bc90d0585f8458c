"""The CUDA-only tests: they run where NVML sees an NVIDIA GPU (ci.yml's self-hosted `gpu`
job) and are skipped elsewhere; with DEMIGOD_REQUIRE_CUDA=1 a missing GPU fails them."""

from __future__ import annotations

import os
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def nvml() -> ModuleType:
    """The initialised NVML module (nvidia-ml-py, the `gpu` extra) with a GPU behind it."""
    why = None
    try:
        import pynvml  # type: ignore[import-not-found, import-untyped, unused-ignore]

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            why = "NVML sees no GPU"
    except ImportError:
        why = "nvidia-ml-py is not installed (pip install -e '.[gpu]')"
    except Exception as exc:  # pynvml.NVMLError: no driver, no device
        why = f"NVML unusable: {exc}"
    if why is not None:
        if os.environ.get("DEMIGOD_REQUIRE_CUDA") == "1":
            pytest.fail(f"a GPU is required here: {why}")
        pytest.skip(why)
    return pynvml
