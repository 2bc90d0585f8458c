"""The model registry (SQLAlchemy 2 + alembic; SQLite embedded, PostgreSQL in production).

See docs/lifecycle.md for the schema and `Registry` for the API.
"""

from demigod.errors import UnknownModelError, UnknownVersionError
from demigod.registry.records import (
    READY,
    RETIRED,
    AliasInfo,
    EvaluationRecord,
    LifecycleEvent,
    ModelInfo,
    VersionInfo,
)
from demigod.registry.registry import (
    ANY_ROW_VERSION,
    CANDIDATE,
    STABLE,
    AliasConflictError,
    Registry,
    RegistryError,
    default_database_url,
)

__all__ = [
    "ANY_ROW_VERSION",
    "CANDIDATE",
    "READY",
    "RETIRED",
    "STABLE",
    "AliasConflictError",
    "AliasInfo",
    "EvaluationRecord",
    "LifecycleEvent",
    "ModelInfo",
    "Registry",
    "RegistryError",
    "UnknownModelError",
    "UnknownVersionError",
    "VersionInfo",
    "default_database_url",
]
