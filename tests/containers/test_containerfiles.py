"""The Containerfiles pass hadolint, and keep the rules the images promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
