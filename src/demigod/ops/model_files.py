"""Model files: copied to the backup once per content (`models/<sha256>`), and after a
restore checked against the registry's sha256 — a missing or corrupt file is fetched
again, from the backup or from the snapshot store a retirement put it in.

Only GGUF files (the llama.cpp backend) are copied, as retirement snapshots only them;
a transformers version's folder must come back from where it was pulled.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from demigod.config import Settings
from demigod.lifecycle.artefacts import (
    ArtefactError,
    file_uri,
    import_artefact,
    local_path,
    sha256_file,
    store_path,
)
from demigod.lifecycle.snapshots import SnapshotError, SnapshotStore
from demigod.ops.backup_target import BackupError, BackupTarget
from demigod.registry import READY, Registry, VersionInfo

MODELS_PREFIX = "models/"


@dataclass
class ModelFilesReport:
    """What a pass did, per version ref (`model@vN`)."""

    copied: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)  # restore: refetched, "ref <- source"
    skipped: list[str] = field(default_factory=list)  # "ref: why"
    missing: list[str] = field(default_factory=list)  # restore: "ref: why each source failed"
    bad_copies: list[str] = field(default_factory=list)  # restore: a corrupt or unreadable copy

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _servable(registry: Registry) -> list[VersionInfo]:
    return [
        version
        for model in registry.list_models()
        for version in registry.list_versions(model.name)
        if version.status == READY
    ]


class ModelShipper:
    """Copies each ready version's GGUF file once; the target's listing says what is there."""

    def __init__(self, target: BackupTarget) -> None:
        self.target = target
        self._stored: set[str] | None = None

    def ship(self, registry: Registry) -> ModelFilesReport:
        """One pass over the registry's ready versions. Raises BackupError from the target."""
        if self._stored is None:
            self._stored = set(self.target.keys(MODELS_PREFIX))
        report = ModelFilesReport()
        for version in _servable(registry):
            key = MODELS_PREFIX + version.sha256
            if key in self._stored:
                continue
            path = local_path(version.storage_uri)
            if version.backend != "llama.cpp" or path.is_dir():
                report.skipped.append(f"{version.ref}: a folder ({version.backend}) is not copied")
                continue
            if not path.is_file():
                report.skipped.append(f"{version.ref}: {path} is missing")
                continue
            self.target.put_file(key, path)
            self._stored.add(key)
            report.copied.append(version.ref)
        return report


def restore_model_files(
    registry: Registry, settings: Settings, target: BackupTarget
) -> ModelFilesReport:
    """Check every ready version's file against its sha256 where the registry says it is,
    else in this data dir's store; fetch what is missing or corrupt from the backup, then
    the snapshot store. A file now in another place is recorded in the registry
    (`version.relocated`); a copy that fails its sha256 or cannot be read is named in
    `bad_copies`. Raises BackupError only when the target cannot be listed."""
    report = ModelFilesReport()
    stored = set(target.keys(MODELS_PREFIX))
    for version in _servable(registry):
        recorded = local_path(version.storage_uri)
        if recorded.exists() and sha256_file(recorded) == version.sha256:
            report.verified.append(version.ref)
            continue
        if version.backend != "llama.cpp":
            report.missing.append(f"{version.ref}: {recorded} (a folder: fetch it again)")
            continue
        destination = store_path(
            settings.data_dir, version.model, version.sha256, f".{version.quantization}.gguf"
        )
        source, attempts = _fetch(version, destination, target, stored, settings)
        report.bad_copies += [f"{version.ref}: {bad}" for bad in attempts.bad]
        if source is None:
            report.missing.append(f"{version.ref}: {'; '.join(attempts.bad + attempts.absent)}")
            continue
        report.fetched.append(f"{version.ref} <- {source}")
        if destination.resolve() != recorded.resolve():
            registry.update_version(
                version.model,
                version.label,
                action="version.relocated",
                storage_uri=file_uri(destination),
                reason="restored from backup",
                details={"from": str(recorded)},
            )
    return report


@dataclass
class _Attempts:
    """Why each source did not give the file: it lacks one, or its copy failed."""

    absent: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)


def _fetch(
    version: VersionInfo,
    destination: Path,
    target: BackupTarget,
    stored: set[str],
    settings: Settings,
) -> tuple[str | None, _Attempts]:
    """Put the version's file at `destination`, verified; returns where it came from
    (None: from nowhere) and what each source that did not give it said."""
    attempts = _Attempts()
    if destination.is_file() and sha256_file(destination) == version.sha256:
        return str(destination), attempts
    key = MODELS_PREFIX + version.sha256
    copy = f"{target.description}/{key}"
    if key not in stored:
        attempts.absent.append(f"not in the backup ({copy})")
    else:
        with tempfile.TemporaryDirectory(dir=_existing_parent(destination)) as folder:
            download = Path(folder) / "model.gguf"
            try:
                target.get_file(key, download)
                import_artefact(download, destination, version.sha256)
                return copy, attempts
            # A bad copy: the snapshot store may still have a good one.
            except BackupError as exc:
                attempts.bad.append(f"the backup's copy could not be read: {exc}")
            except ArtefactError:
                attempts.bad.append(
                    f"the backup's copy {copy} does not match the registry's sha256"
                )
    if not version.snapshot_uri:
        attempts.absent.append("no snapshot (it was never retired)")
        return None, attempts
    try:
        SnapshotStore(settings.snapshots).download(
            version.snapshot_uri, destination, version.sha256
        )
    except SnapshotError as exc:
        attempts.bad.append(f"snapshot: {exc}")
        return None, attempts
    return version.snapshot_uri, attempts


def _existing_parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent
