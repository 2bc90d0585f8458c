"""Everything the engine benchmark compares against, built offline from the pinned sdist.

- llama-server (and, for bench/energy.py, llama-bench), built with CMake from the llama.cpp
  vendored in the llama-cpp-python sdist of the installed version (the engine's own
  llama.cpp, same compiler flags by default);
- `python -m llama_cpp.server`, in a separate virtual environment that sees this one's
  llama-cpp-python and adds its `[server]` extras;
- the benchmark model: a random-init Mamba of mamba-130m's shape (hidden 768, 24 layers,
  vocab 50280), HF folder → GGUF F16 (llama.cpp's converter) → Q4_0 (llama.cpp's
  quantizer), through demigod.lifecycle.

Run: .venv/bin/python bench/engine_setup.py [--workdir var/bench] [--sdist TARBALL]
Each product is skipped when it already exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from demigod.lifecycle.convert import convert_hf_to_gguf
from demigod.lifecycle.quantize import quantize_gguf
from demigod.lifecycle.toolkit import download_sdist, ensure_toolkit

MODEL_SHAPE = {
    "vocab_size": 50280,
    "hidden_size": 768,
    "intermediate_size": 1536,
    "num_hidden_layers": 24,
}
SERVER_EXTRAS = ("sse-starlette>=1.6.1", "starlette-context>=0.3.6,<0.4")


@dataclass(frozen=True)
class BenchKit:
    llama_server: Path
    python_server: Path  # the interpreter that runs `-m llama_cpp.server`
    model: Path


def sdist_tarball(workdir: Path, given: Path | None) -> Path:
    """The sdist of the installed llama-cpp-python: `given`, or fetched with pip."""
    if given is not None:
        return given
    found = sorted(workdir.glob(f"llama_cpp_python-{llama_cpp.__version__}.tar.gz"))
    return found[0] if found else download_sdist(llama_cpp.__version__, workdir)


def build_llama_tool(workdir: Path, tarball: Path, tool: str) -> Path:
    """One of llama.cpp's programs (llama-server, llama-bench) from the sdist's vendored
    llama.cpp, built once. Raises CalledProcessError."""
    binary = workdir / "llama-build" / "bin" / tool
    if binary.is_file():
        return binary
    source = workdir / "sdist"
    vendored = source / f"llama_cpp_python-{llama_cpp.__version__}" / "vendor" / "llama.cpp"
    if not vendored.is_dir():
        with tarfile.open(tarball) as archive:
            archive.extractall(source, filter="data")
    build = workdir / "llama-build"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(vendored),
            "-B",
            str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=ON",
        ],
        check=True,
    )
    subprocess.run(
        ["cmake", "--build", str(build), "--target", tool, "-j", str(os.cpu_count() or 2)],
        check=True,
    )
    return binary


def side_venv(venv: Path) -> Path:
    """A new venv at `venv` that also imports this environment's packages (a .pth file,
    searched after its own site-packages); its interpreter."""
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    ours = sysconfig.get_paths()["purelib"]
    theirs = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(theirs, "demigod-parent.pth").write_text(ours + "\n")
    return python


def python_server_env(workdir: Path) -> Path:
    """A venv that imports this environment's packages plus the server extras."""
    python = workdir / "pyserver-venv" / "bin" / "python"
    if python.is_file():
        return python
    side_venv(python.parents[1])
    subprocess.run([str(python), "-m", "pip", "install", "-q", *SERVER_EXTRAS], check=True)
    return python


def build_model(workdir: Path, tarball: Path) -> Path:
    """The random-init 768x24 Mamba as Q4_0 GGUF."""
    import torch
    from transformers import MambaConfig, MambaForCausalLM

    target = workdir / "mamba-768x24-random.Q4_0.gguf"
    if target.is_file():
        return target
    hf_dir = workdir / "mamba-768x24-hf"
    torch.manual_seed(0)
    MambaForCausalLM(MambaConfig(**MODEL_SHAPE)).save_pretrained(hf_dir)
    toolkit = ensure_toolkit(workdir, tarball)
    f16 = convert_hf_to_gguf(hf_dir, workdir / "mamba-768x24-random.F16.gguf", toolkit)
    quantize_gguf(f16, target, "Q4_0")
    return target


def prepare(workdir: Path, sdist: Path | None = None) -> BenchKit:
    """Build (or find) everything; see the module docstring."""
    workdir.mkdir(parents=True, exist_ok=True)
    tarball = sdist_tarball(workdir, sdist)
    return BenchKit(
        llama_server=build_llama_tool(workdir, tarball, "llama-server"),
        python_server=python_server_env(workdir),
        model=build_model(workdir, tarball),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--sdist", type=Path, default=None, help="llama-cpp-python sdist tarball")
    args = parser.parse_args()
    print(prepare(args.workdir, args.sdist))


if __name__ == "__main__":
    main()
