"""Model files in the local store: written atomically, named by content, verified by sha256.

A file appears under its final name only once it is complete and fsynced (temp name +
fsync + rename + directory fsync), so a step killed at any point leaves at most a
`.partial` file, never a truncated file under a real name. The registry records a
version only after its file is final and its sha256 checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from demigod.lifecycle.errors import LifecycleError

STORE_DIR = "store"
PARTIAL_MARK = ".partial"
_BLOCK = 1 << 20


class ArtefactError(LifecycleError):
    """An artefact is missing or its content does not match the recorded sha256."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, or of a folder (sorted relative paths and their hashes)."""
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
        return digest.hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def store_path(data_dir: Path, model: str, sha256: str, suffix: str) -> Path:
    """Where the artefact with this content lives: `data_dir/store/MODEL/SHA16.SUFFIX`."""
    return data_dir / STORE_DIR / model / f"{sha256[:16]}{suffix}"


def file_uri(path: Path) -> str:
    return path.resolve().as_uri()


def local_path(uri: str) -> Path:
    """The path of a `file://` URI (a plain path is accepted too)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    raise ArtefactError(f"{uri} is not a local file")


def verify(path: Path, sha256: str) -> Path:
    """`path`, after checking its content hashes to `sha256`; raises ArtefactError."""
    if not path.exists():
        raise ArtefactError(f"{path} is missing")
    actual = sha256_file(path)
    if actual != sha256:
        raise ArtefactError(f"{path} is corrupt: sha256 {actual}, the registry says {sha256}")
    return path


def import_artefact(source: Path, destination: Path, sha256: str) -> Path:
    """Put `source` (its content hashing to `sha256`) at `destination` atomically.

    A hard link when both sit on one filesystem, else a copy; either way written under a
    temporary name, fsynced, checked against `sha256` and renamed. An existing complete
    `destination` with the right content is reused (a re-run resumes). Raises
    ArtefactError when the copy does not hash to `sha256`.
    """
    if destination.exists():
        if sha256_file(destination) == sha256:
            return destination
        _remove(destination)  # wrong content under the final name: replace it
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(destination.parent)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}{PARTIAL_MARK}")
    _remove(partial)
    try:
        _link_or_copy(source, partial)
        _fsync_tree(partial)
        actual = sha256_file(partial)
        if actual != sha256:
            raise ArtefactError(
                f"copy of {source} hashes to {actual}, expected {sha256} (changed while copied?)"
            )
        os.replace(partial, destination)
        _fsync_dir(destination.parent)
    finally:
        _remove(partial)
    return destination


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via temp + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL_MARK}")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    _fsync_dir(path.parent)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete `.partial` leftovers of processes that no longer run; return them."""
    removed = []
    for partial in folder.glob(f".*{PARTIAL_MARK}*"):
        pid = partial.name.rsplit(PARTIAL_MARK, 1)[0].rsplit(".", 1)[-1]
        if pid.isdigit() and not is_alive(int(pid)):
            _remove(partial)
            removed.append(partial)
    return removed


def is_alive(pid: int) -> bool:
    """Whether process `pid` runs (ours counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy_file)
    else:
        _link_or_copy_file(str(source), str(target))


def _link_or_copy_file(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _fsync_tree(path: Path) -> None:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            os.fsync(handle.fileno())
    if path.is_dir():
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
