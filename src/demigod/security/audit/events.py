"""Admin and lifecycle events from outside the gateway process (CLIs, lifecycle jobs).

Each writer process has its own chain: the gateway writes `<hostname>-<port>`; these go to
`admin-<hostname>`, locked while written, so two commands never interleave a chain.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from typing import Any

from demigod.config import Settings
from demigod.security.audit.records import AuditRecord
from demigod.security.audit.store import AuditLog, AuditLogUnavailableError

log = logging.getLogger(__name__)


def admin_node() -> str:
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())
    return f"admin-{host or 'node'}"


def record_admin_event(settings: Settings, kind: str, data: dict[str, Any]) -> AuditRecord | None:
    """Append one durable, sealed record (e.g. `key.create`) to the admin chain. Returns
    None when the audit log is disabled. Raises AuditLogUnavailableError when it cannot be
    written: an admin action that must be audited should not pass silently."""
    if not settings.audit.enabled:
        return None
    audit = AuditLog.from_settings(settings, node=admin_node()).open()
    try:
        record = audit.submit(kind, data).result(timeout=30)
    except TimeoutError as exc:
        raise AuditLogUnavailableError("the audit log did not confirm the write") from exc
    finally:
        audit.close()  # seals the record into a signed (and timestamped) checkpoint
    return record


def subscribe_registry(registry: Any, settings: Settings) -> None:
    """Record every lifecycle event of `registry` (its `on_event` hooks: register, convert,
    validate, promote, retire, ...) as a sealed `lifecycle.<action>` admin record.
    Lifecycle events are rare, so each is written and checkpointed on its own, and the
    admin chain is never held locked between them."""
    if not settings.audit.enabled:
        return

    def hook(event: Any) -> None:
        record_admin_event(settings, f"lifecycle.{event.action}", event.to_json())

    registry.on_event.append(hook)


class AuditedCanaryStore:
    """A canary store (demigod.canary.store.CanaryStore) whose every decision — start,
    advance, hold, rollback, complete, promote, abort — is also a sealed `canary.<action>`
    admin record, written before the decision is stored."""

    def __init__(self, store: Any, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def states(self) -> Any:
        return self._store.states()

    def events(self, model: str | None = None) -> Any:
        return self._store.events(model)

    def put(self, state: Any, event: Any) -> None:
        record_admin_event(
            self._settings,
            f"canary.{event.action}",
            {**_fields(event), "status": getattr(state, "status", None)},
        )
        self._store.put(state, event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _fields(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return dict(vars(value))
