"""Registry fixtures: every registry test runs on SQLite and on a real PostgreSQL server
(the session's `postgres` cluster, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demigod.ops.postgres_cluster import PostgresCluster
from demigod.registry import Registry


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty registry database: SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    server: PostgresCluster = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    with Registry(database_url, actor="tester") as opened:
        yield opened
