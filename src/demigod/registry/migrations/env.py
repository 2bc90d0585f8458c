"""alembic environment: run by `demigod.registry.migrate.upgrade` on an open connection."""

from __future__ import annotations

from alembic import context

from demigod.registry.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
