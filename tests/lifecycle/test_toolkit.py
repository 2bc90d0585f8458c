"""The converter toolkit: extracted safely and completely from the engine's own sdist."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import llama_cpp
import pytest

from demigod.lifecycle.toolkit import (
    ToolkitError,
    download_sdist,
    ensure_toolkit,
    extract_toolkit,
    toolkit_path,
)

TOP = f"llama_cpp_python-{llama_cpp.__version__}"
VENDOR = f"{TOP}/vendor/llama.cpp"


def _sdist(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


COMPLETE = {
    f"{VENDOR}/convert_hf_to_gguf.py": b"print('convert')\n",
    f"{VENDOR}/conversion/__init__.py": b"",
    f"{VENDOR}/conversion/mamba.py": b"# mamba\n",
    f"{VENDOR}/gguf-py/gguf/__init__.py": b"",
    f"{VENDOR}/models/ggml-vocab-gpt-neox.gguf": b"GGUF",
    f"{VENDOR}/models/ggml-vocab-llama-spm.gguf": b"GGUF",
}


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_extracts_only_the_converter_files(tmp_path: Path) -> None:
    extra = {
        f"{VENDOR}/models/ggml-vocab-gpt-neox.gguf.inp": b"test data",
        f"{VENDOR}/models/templates/chat.jinja": b"{{ x }}",
        f"{VENDOR}/README.md": b"readme",
        f"{VENDOR}/src/llama.cpp": b"int main() {}",
        f"{TOP}/llama_cpp/llama.py": b"",
    }
    tarball = _sdist(tmp_path / "sdist.tar.gz", {**COMPLETE, **extra})
    extract_toolkit(tarball, tmp_path / "toolkit")
    assert _tree(tmp_path / "toolkit") == {
        "convert_hf_to_gguf.py",
        "conversion/__init__.py",
        "conversion/mamba.py",
        "gguf-py/gguf/__init__.py",
        "models/ggml-vocab-gpt-neox.gguf",
        "models/ggml-vocab-llama-spm.gguf",
    }
    assert (tmp_path / "toolkit/convert_hf_to_gguf.py").read_bytes() == b"print('convert')\n"


def test_hostile_members_are_not_written(tmp_path: Path) -> None:
    hostile = {
        f"{VENDOR}/conversion/../../../../escaped.py": b"x",
        f"/{VENDOR}/conversion/absolute.py": b"x",
        f"{TOP}/../{VENDOR}/conversion/dotdot.py": b"x",
    }
    links = {f"{VENDOR}/conversion/link.py": "/etc/passwd"}
    tarball = _sdist(tmp_path / "sdist.tar.gz", {**COMPLETE, **hostile}, links)
    extract_toolkit(tarball, tmp_path / "out" / "toolkit")
    assert {p.name for p in tmp_path.iterdir()} == {"sdist.tar.gz", "out"}
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["toolkit"]
    assert _tree(tmp_path / "out" / "toolkit") == {
        name.removeprefix(f"{VENDOR}/") for name in COMPLETE
    }
    assert not (tmp_path / "out/toolkit/conversion/link.py").is_symlink()


def test_incomplete_sdist_is_refused(tmp_path: Path) -> None:
    files = {k: v for k, v in COMPLETE.items() if "gguf-py" not in k}
    tarball = _sdist(tmp_path / "sdist.tar.gz", files)
    with pytest.raises(ToolkitError, match=r"gguf-py/gguf/__init__\.py"):
        extract_toolkit(tarball, tmp_path / "toolkit")


def test_sdist_of_another_version_is_refused(tmp_path: Path) -> None:
    other = {name.replace(TOP, "llama_cpp_python-0.0.1"): data for name, data in COMPLETE.items()}
    tarball = _sdist(tmp_path / "sdist.tar.gz", other)
    with pytest.raises(ToolkitError, match="must match the engine"):
        ensure_toolkit(tmp_path / "data", sdist=tarball)
    assert not toolkit_path(tmp_path / "data").exists()


def test_not_a_tarball_is_a_toolkit_error(tmp_path: Path) -> None:
    bogus = tmp_path / "sdist.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(ToolkitError):
        ensure_toolkit(tmp_path / "data", sdist=bogus)
    assert not toolkit_path(tmp_path / "data").exists()


def test_ensure_toolkit_installs_once_under_the_engine_version(tmp_path: Path) -> None:
    tarball = _sdist(tmp_path / "sdist.tar.gz", COMPLETE)
    installed = ensure_toolkit(tmp_path / "data", sdist=tarball)
    assert installed == tmp_path / "data" / f"llama.cpp-{llama_cpp.__version__}"
    tarball.unlink()  # a second call must not need the sdist again
    assert ensure_toolkit(tmp_path / "data", sdist=tarball) == installed
    assert [p.name for p in (tmp_path / "data").iterdir()] == [installed.name]


def test_failed_download_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match=r"llama-cpp-python==0\.0\.0\.dev424242"):
        download_sdist("0.0.0.dev424242", tmp_path)


def test_real_toolkit_matches_the_engine(toolkit: Path) -> None:
    assert toolkit.name == f"llama.cpp-{llama_cpp.__version__}"
    assert (toolkit / "convert_hf_to_gguf.py").is_file()
    assert (toolkit / "conversion" / "mamba.py").is_file()
    assert (toolkit / "gguf-py" / "gguf" / "__init__.py").is_file()
    models = {p.name for p in (toolkit / "models").iterdir()}
    assert "ggml-vocab-gpt-neox.gguf" in models
    assert all(name.startswith("ggml-vocab-") and name.endswith(".gguf") for name in models)
