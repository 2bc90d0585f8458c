"""Small state files that are neither the registry nor the audit log: the audit signing
key (a restored chain must keep its signer), the hashed API keys, and the file-backed
canary state. Each is copied whole under `state/<name>` whenever its content changes, and
restored to wherever the restoring config puts it.

The signing key is a secret: a backup destination holding it must be as protected as the
host (docs/operations.md#backups).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from demigod.config import Settings
from demigod.ops.backup_target import BackupError, BackupTarget
from demigod.security.audit.store import signing_key_path
from demigod.security.authenticate import api_keys_path

STATE_PREFIX = "state/"
SECRET_MODE = 0o600


@dataclass(frozen=True)
class StateFile:
    name: str  # the key under state/
    path: Path
    secret: bool


def state_files(settings: Settings) -> list[StateFile]:
    """The files this config keeps state in, present or not."""
    files = [
        StateFile("audit-signing-key.pem", signing_key_path(settings), secret=True),
        StateFile("api-keys.json", api_keys_path(settings.security, settings.data_dir), True),
    ]
    if settings.canary.store == "file":
        canary = settings.canary.state_file
        events = canary.with_name(canary.name + ".events.jsonl")
        files += [
            StateFile("canary.json", canary, False),
            StateFile("canary.events", events, False),
        ]
    return files


class StateShipper:
    """Copies each state file to the target when its content changed since the last copy."""

    def __init__(self, settings: Settings, target: BackupTarget) -> None:
        self.files = state_files(settings)
        self.target = target
        self._shipped: dict[str, str] | None = None  # name -> sha256 of the copy there

    def ship(self) -> list[str]:
        """One pass; returns the names copied. Raises BackupError as the target does."""
        if self._shipped is None:  # first pass (or after a restart): what the target has
            self._shipped = {
                key.removeprefix(STATE_PREFIX): hashlib.sha256(
                    self.target.get_bytes(key)
                ).hexdigest()
                for key in self.target.keys(STATE_PREFIX)
            }
        copied = []
        for file in self.files:
            try:
                data = file.path.read_bytes()
            except FileNotFoundError:
                continue
            digest = hashlib.sha256(data).hexdigest()
            if self._shipped.get(file.name) != digest:
                self.target.put_bytes(STATE_PREFIX + file.name, data)
                self._shipped[file.name] = digest
                copied.append(file.name)
        return copied


def restore_state(settings: Settings, target: BackupTarget) -> list[str]:
    """Write every backed-up state file where `settings` keep it; returns their names.
    Raises BackupError when one already exists (restore into a fresh data dir)."""
    stored = {key.removeprefix(STATE_PREFIX) for key in target.keys(STATE_PREFIX)}
    restored = []
    for file in state_files(settings):
        if file.name not in stored:
            continue
        if file.path.exists():
            raise BackupError(f"{file.path} exists: restore into a fresh data dir")
        file.path.parent.mkdir(parents=True, exist_ok=True)
        data = target.get_bytes(STATE_PREFIX + file.name)
        descriptor = os.open(
            file.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE if file.secret else 0o644
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        restored.append(file.name)
    return restored
