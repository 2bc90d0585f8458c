"""What a running process reports about itself on `GET /admin/state`: the versions it
serves (with their sha256 and canary weights), its upstream replicas, and a fingerprint of
its configuration. The gateway writes it; `demigod ops drift` reads it and compares it
with the declared state in git. One wire format, shared by both (like demigod.protocol).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from demigod.config import Settings

ADMIN_STATE_PATH = "/admin/state"
# Left out of the config fingerprint: the listening address differs per replica and flag,
# served models and upstreams are compared one by one (versions, replicas), and `ops`
# holds the drift checker's own settings (its API key among them).
UNFINGERPRINTED_FIELDS = frozenset({"host", "port", "models", "upstreams", "ops"})
FIELD_DIGEST_HEX = 16


class ServedVersion(BaseModel):
    """One version of a model this process runs, and its share of that model's traffic."""

    model_config = ConfigDict(extra="forbid")

    model: str
    version: str
    sha256: str | None  # None: the file was never hashed (served without the state cache)
    role: Literal["stable", "candidate"]
    weight_percent: float


class UpstreamReplica(BaseModel):
    """One remote replica the gateway forwards a model to, and whether it is usable now."""

    model_config = ConfigDict(extra="forbid")

    model: str
    version: str | None = None  # the version it serves: a canary's stable or candidate
    url: str
    up: bool


class ConfigFingerprint(BaseModel):
    """sha256 of the configuration, and a short digest per field (dotted path), so a
    difference can be named without the values (some are secrets) leaving the process."""

    model_config = ConfigDict(extra="forbid")

    sha256: str
    fields: dict[str, str]


class MeshState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    demigod_version: str
    models: list[ServedVersion]
    upstreams: list[UpstreamReplica]
    config: ConfigFingerprint


def config_fingerprint(settings: Settings) -> ConfigFingerprint:
    """The fingerprint of `settings` (UNFINGERPRINTED_FIELDS left out): two processes
    loaded from the same file and environment give the same one."""
    dumped = settings.model_dump(mode="json", exclude=set(UNFINGERPRINTED_FIELDS))
    fields = {path: _digest(value) for path, value in _leaves(dumped, "")}
    whole = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return ConfigFingerprint(sha256=whole, fields=fields)


def _leaves(value: Any, prefix: str) -> list[tuple[str, Any]]:
    """(dotted path, value) for every non-mapping value; an empty mapping is a leaf too."""
    if isinstance(value, dict) and value:
        found: list[tuple[str, Any]] = []
        for key in sorted(value):
            found += _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
        return found
    return [(prefix, value)]


def _digest(value: Any) -> str:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:FIELD_DIGEST_HEX]
