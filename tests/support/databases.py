"""Database fixtures: a migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL tests get a schema of their own (dropped afterwards), so they are
isolated without needing a database per test. Set LIFTOFF_TEST_POSTGRES_URL to
use another server; when none answers, those tests are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from records.database import Database
from testkit import postgres


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'liftoff.db'}")
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The server's URL once it answered; skips the PostgreSQL tests otherwise."""
    reason = postgres.unreachable()
    if reason is not None:
        pytest.skip(reason)
    return postgres.POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_admin_url: str) -> Iterator[Database]:
    with postgres.fresh_schema("test", postgres_admin_url) as database:
        database.migrate()
        yield database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    """The same test on both supported databases."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    result: Database = request.getfixturevalue(fixture)
    return result
