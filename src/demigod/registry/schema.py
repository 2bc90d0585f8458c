"""The registry's tables as typed SQLAlchemy 2 ORM classes.

Changing a table means a new alembic revision in `migrations/versions/` too; the
migration, not `create_all`, is what builds a database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class ModelRow(Base):
    """A model: the thing users ask for by name; its versions are the files that serve it."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    architecture: Mapped[str | None] = mapped_column(String(128))
    family: Mapped[str | None] = mapped_column(String(64))
    parameter_count: Mapped[int | None] = mapped_column(BigInteger)
    licence: Mapped[str | None] = mapped_column(String(128))
    categories: Mapped[str] = mapped_column(String(256), default="chat")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[VersionRow]] = relationship(back_populates="model")


class VersionRow(Base):
    """One servable artefact of a model: a GGUF file (or an HF folder for transformers)."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("model_id", "label"), UniqueConstraint("model_id", "sha256"))

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(64))
    source_uri: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    quantization: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    storage_uri: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(32), default="llama.cpp")
    status: Mapped[str] = mapped_column(String(32), default="ready")
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    snapshot_uri: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[ModelRow] = relationship(back_populates="versions")


class AliasRow(Base):
    """A name (`stable`, `candidate`, ...) pointing at one version; `row_version` is the
    optimistic-concurrency counter every move checks and bumps."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    row_version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))


class EvaluationRow(Base):
    """One measured metric of a version (perplexity, Hemlock pass rate, an lm-eval score)."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    suite: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float]
    threshold: Mapped[float | None]
    passed: Mapped[bool | None]
    tool_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventRow(Base):
    """An append-only lifecycle event: who did what to which model/version, when and why."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CanaryRow(Base):
    """One model's canary rollout (demigod.canary.store): versions, candidate weight, status."""

    __tablename__ = "canary_rollouts"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    stable: Mapped[str] = mapped_column(String(64))
    candidate: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    updated: Mapped[float] = mapped_column(Float)
