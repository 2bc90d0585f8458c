"""Retirement and restore: versions unused for `lifecycle.retire_after_days` are
snapshotted (S3-compatible), checked, and deleted locally; restore brings one back and
verifies its sha256 before the registry calls it ready again."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demigod.config import Settings
from demigod.lifecycle.artefacts import (
    ArtefactError,
    file_uri,
    local_path,
    store_path,
    verify,
)
from demigod.lifecycle.snapshots import SnapshotStore
from demigod.registry import READY, RETIRED, Registry, RegistryError, VersionInfo


@dataclass(frozen=True)
class Retirement:
    version: VersionInfo
    snapshot_uri: str | None
    deleted: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "version": self.version.label,
            "snapshot_uri": self.snapshot_uri,
            "deleted": self.deleted,
            "reason": self.reason,
        }


def due_for_retirement(
    registry: Registry, ttl_days: int, now: datetime | None = None
) -> list[VersionInfo]:
    """Ready versions no alias points at, neither served nor promoted for `ttl_days`."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=ttl_days)
    due = []
    for model in registry.list_models():
        aliased = {alias.version for alias in registry.aliases(model.name).values()}
        due += [
            version
            for version in registry.list_versions(model.name)
            if version.status == READY
            and version.label not in aliased
            and version.last_used_at < cutoff
        ]
    return due


def retire(
    registry: Registry,
    settings: Settings,
    version: VersionInfo,
    *,
    reason: str,
    actor: str | None = None,
) -> Retirement:
    """Snapshot `version`, check the copy's sha256, mark it retired, delete it locally.

    Refuses a version an alias points at (RegistryError). Raises ArtefactError when the
    file or the snapshot does not check out.
    """
    aliases = [
        a.name for a in registry.aliases(version.model).values() if a.version == version.label
    ]
    if aliases:
        raise RegistryError(
            f"{version.ref} is {', '.join(aliases)}: point the alias elsewhere first"
        )
    if version.backend != "llama.cpp":
        raise RegistryError(
            f"{version.ref}: retiring {version.backend}-native versions is not supported yet"
        )
    path = verify(local_path(version.storage_uri), version.sha256)
    store = _snapshot_store(settings)
    snapshot = store.upload(path, f"{version.model}/{version.label}-{version.sha256[:16]}.gguf")
    if snapshot.sha256 != version.sha256:
        raise ArtefactError(
            f"snapshot {snapshot.uri} hashes to {snapshot.sha256}, expected {version.sha256}"
        )
    retired = registry.update_version(
        version.model,
        version.label,
        action="version.retired",
        status=RETIRED,
        snapshot_uri=str(snapshot.uri),
        actor=actor,
        reason=reason,
        details={"snapshot_size": int(snapshot.size)},
    )
    _delete(path)  # after the registry knows where the snapshot is
    return Retirement(retired, str(snapshot.uri), True, reason)


def restore(
    registry: Registry,
    settings: Settings,
    model: str,
    label: str,
    *,
    actor: str | None = None,
) -> VersionInfo:
    """Download a retired version's snapshot into the store, verify its sha256 and mark
    it ready. Raises RegistryError (not retired), ArtefactError (checksum mismatch)."""
    version = registry.get_version(model, label)
    if version.status != RETIRED or version.snapshot_uri is None:
        raise RegistryError(f"{version.ref} is {version.status}, not retired: nothing to restore")
    destination = store_path(
        settings.data_dir, model, version.sha256, f".{version.quantization}.gguf"
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    store = _snapshot_store(settings)
    downloaded = Path(store.download(version.snapshot_uri, destination, version.sha256))
    verify(downloaded, version.sha256)
    return registry.update_version(
        model,
        version.label,
        action="version.restored",
        status=READY,
        storage_uri=file_uri(downloaded),
        actor=actor,
        details={"from": version.snapshot_uri},
    )


def _snapshot_store(settings: Settings) -> SnapshotStore:
    return SnapshotStore(settings.snapshots)


def _delete(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
