"""The registry: models, versions, aliases, evaluations, lifecycle events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _now() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("architecture", sa.String(128)),
        sa.Column("family", sa.String(64)),
        sa.Column("parameter_count", sa.BigInteger),
        sa.Column("licence", sa.String(128)),
        sa.Column("categories", sa.String(256), nullable=False),
        sa.Column("created_at", _now(), nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("source_uri", sa.Text),
        sa.Column("revision", sa.String(128)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("quantization", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("storage_uri", sa.Text, nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reference_id", sa.Integer, sa.ForeignKey("versions.id")),
        sa.Column("snapshot_uri", sa.Text),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", _now(), nullable=False),
        sa.Column("last_used_at", _now(), nullable=False),
        sa.UniqueConstraint("model_id", "label"),
        sa.UniqueConstraint("model_id", "sha256"),
    )
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
        sa.Column("updated_at", _now(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("model_id", "name"),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float),
        sa.Column("passed", sa.Boolean),
        sa.Column("tool_versions", sa.JSON, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", _now(), nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False, index=True),
        sa.Column("version", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", _now(), nullable=False),
    )


def downgrade() -> None:
    for table in ("events", "evaluations", "aliases", "versions", "models"):
        op.drop_table(table)
