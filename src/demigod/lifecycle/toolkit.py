"""llama.cpp's HF -> GGUF converter toolkit, matched to the installed engine.

The converter must come from the same llama.cpp as the engine that loads its output, so
the toolkit is taken from the llama-cpp-python sdist of the installed version: its
`vendor/llama.cpp/` carries `convert_hf_to_gguf.py`, the `conversion/` package, `gguf-py/`
and the vocab-only `models/ggml-vocab-*.gguf` files. Only those are extracted, into
`<data_dir>/llama.cpp-<version>/`.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from demigod.lifecycle.errors import LifecycleError

# Inside the sdist, relative to its top-level folder.
_VENDOR_PREFIX = PurePosixPath("vendor/llama.cpp")
_KEPT_FILES = ("convert_hf_to_gguf.py",)
_KEPT_DIRS = ("conversion", "gguf-py")
_KEPT_PATTERNS = ("models/ggml-vocab-*.gguf",)

# What a usable toolkit must contain; checked after extraction.
_REQUIRED = (
    "convert_hf_to_gguf.py",
    "conversion/__init__.py",
    "gguf-py/gguf/__init__.py",
    "models/ggml-vocab-gpt-neox.gguf",
)

SDIST_PACKAGE = "llama-cpp-python"


class ToolkitError(LifecycleError):
    """The converter toolkit could not be found, downloaded or extracted."""


def engine_version() -> str:
    """The installed llama-cpp-python version (the engine the toolkit must match)."""
    import llama_cpp

    return str(llama_cpp.__version__)


def toolkit_path(data_dir: Path, version: str | None = None) -> Path:
    """Where the toolkit for `version` (default: the installed engine's) lives."""
    return data_dir / f"llama.cpp-{version or engine_version()}"


def ensure_toolkit(data_dir: Path, sdist: Path | None = None) -> Path:
    """Return the toolkit folder for the installed engine, installing it first if missing.

    `sdist` is a llama-cpp-python sdist tarball of the installed version; without one, the
    sdist is fetched with `pip download` from the configured package index. Raises
    ToolkitError when the download fails or the tarball lacks the converter files.
    """
    version = engine_version()
    target = toolkit_path(data_dir, version)
    if _is_complete(target):
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="toolkit-", dir=data_dir) as scratch:
        scratch_dir = Path(scratch)
        tarball = sdist if sdist is not None else download_sdist(version, scratch_dir)
        staging = scratch_dir / "toolkit"
        extract_toolkit(tarball, staging, version)
        if target.exists() and not _is_complete(target):  # an interrupted earlier attempt
            shutil.rmtree(target)
        try:
            # A rename inside one folder is atomic: the toolkit appears whole or not at all.
            staging.rename(target)
        except OSError as error:
            if not _is_complete(target):  # not merely a concurrent install that won
                raise ToolkitError(f"cannot install the toolkit into {target}: {error}") from error
    return target


def download_sdist(version: str, dest: Path) -> Path:
    """Fetch the llama-cpp-python `version` sdist into `dest` with pip; return the tarball.

    Raises ToolkitError with pip's last output lines when the download fails.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        # The sdist of this package only: pip still prepares its metadata, and ":all:" made
        # it compile the build backend's own dependencies first (181 s against 21 s here).
        "--no-binary",
        SDIST_PACKAGE,
        "--disable-pip-version-check",
        f"{SDIST_PACKAGE}=={version}",
        "-d",
        str(dest),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    tarballs = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if result.returncode != 0 or not tarballs:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ToolkitError(
            f"could not download the {SDIST_PACKAGE}=={version} sdist for the converter "
            f"toolkit (pip exited {result.returncode}); pass the sdist tarball explicitly "
            f"or check the package index.\n{tail}"
        )
    return tarballs[0]


def extract_toolkit(tarball: Path, dest: Path, version: str | None = None) -> None:
    """Extract only the converter files of a llama-cpp-python sdist into `dest`.

    Members are written by hand (never `extractall`): only regular files under the kept
    paths, with no absolute or `..` components, so a hostile tarball cannot write
    elsewhere. With `version`, the sdist must be that version's. Raises ToolkitError when
    the tarball is unreadable, of another version, or incomplete.
    """
    expected_top = f"{SDIST_PACKAGE.replace('-', '_')}-{version}" if version else None
    try:
        with tarfile.open(tarball, mode="r:*") as archive:
            for member in archive:
                top = PurePosixPath(member.name).parts[0] if member.name else ""
                if expected_top is not None and top != expected_top:
                    raise ToolkitError(
                        f"{tarball} holds {top!r}, not the sdist of the installed engine "
                        f"({expected_top}); the converter must match the engine"
                    )
                relative = _toolkit_relative_path(member.name)
                if relative is None or not member.isfile():
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                target = dest.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except (tarfile.TarError, OSError) as error:
        message = f"cannot extract the converter toolkit from {tarball}: {error}"
        raise ToolkitError(message) from error
    missing = [name for name in _REQUIRED if not (dest / name).is_file()]
    if missing:
        raise ToolkitError(
            f"{tarball} is not a llama-cpp-python sdist with the converter; missing: "
            + ", ".join(missing)
        )


def _toolkit_relative_path(member_name: str) -> PurePosixPath | None:
    """The member's path inside the toolkit, or None when it is not a toolkit file."""
    path = PurePosixPath(member_name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        return None
    inside_sdist = PurePosixPath(*path.parts[1:])  # drop the top-level "name-version/"
    try:
        relative = inside_sdist.relative_to(_VENDOR_PREFIX)
    except ValueError:
        return None
    return relative if _is_kept(relative) else None


def _is_kept(relative: PurePosixPath) -> bool:
    text = relative.as_posix()
    if text in _KEPT_FILES:
        return True
    if len(relative.parts) > 1 and relative.parts[0] in _KEPT_DIRS:
        return True
    # Only the vocab files directly in models/, not the templates and test data beside them.
    return len(relative.parts) == 2 and any(
        fnmatch.fnmatchcase(text, pattern) for pattern in _KEPT_PATTERNS
    )


def _is_complete(toolkit: Path) -> bool:
    return all((toolkit / name).is_file() for name in _REQUIRED)
