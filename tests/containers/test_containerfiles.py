"""The Containerfiles pass hadolint, and keep the rules the images promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_binary

CONTAINERFILES = sorted(
    (Path(__file__).resolve().parents[2] / "containers").glob("*.Containerfile")
)


def test_there_are_three_images() -> None:
    assert [p.stem for p in CONTAINERFILES] == ["gateway", "worker-cpu", "worker-cuda"]


@pytest.mark.parametrize("containerfile", CONTAINERFILES, ids=lambda p: p.stem)
def test_hadolint_passes(containerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), str(containerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("containerfile", CONTAINERFILES, ids=lambda p: p.stem)
def test_the_final_stage_is_unprivileged_and_health_checked(containerfile: Path) -> None:
    final = containerfile.read_text().rsplit("\nFROM ", 1)[1]
    assert "\nUSER 10001:10001\n" in final
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert re.search(r"apt-get install[^\n]*(build-essential|gcc|cmake)", final) is None
    for label in ("source", "revision", "version", "licenses"):
        assert f"org.opencontainers.image.{label}=" in final
    flags = re.search(r'^ARG LLAMA_CMAKE_ARGS="(.*)"$', containerfile.read_text(), re.M)
    if containerfile.stem.startswith("worker"):  # built for a named CPU level, not this one
        assert flags is not None and "-DGGML_NATIVE=OFF" in flags.group(1).split()


@pytest.mark.slow
def test_the_cuda_build_stage_configures_and_compiles_with_this_machines_nvcc() -> None:
    """The reduced check of worker-cuda (no NVIDIA images or GPU here): its flags configure
    llama.cpp's CUDA backend and a CUDA source compiles for every architecture listed."""
    if not Path("/usr/local/cuda/bin/nvcc").exists():
        pytest.skip("no CUDA toolkit at /usr/local/cuda")
    for binary in ("cmake", "ninja"):
        require_binary(binary)
    script = CONTAINERFILES[0].parent / "check-cuda-build"
    done = subprocess.run(
        [str(script)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "compiled for 80;86;89;90;100;120" in done.stdout
