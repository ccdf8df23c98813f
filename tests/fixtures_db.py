"""Database fixtures: a migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL tests get a schema of their own (dropped afterwards), so they are
isolated without needing a database per test. Set LIFTOFF_TEST_POSTGRES_URL to
use another server; when none answers, those tests are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from records.database import Database

POSTGRES_URL = os.environ.get(
    "LIFTOFF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONNECT_TIMEOUT_SECONDS = 2


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
    try:
        with psycopg.connect(_libpq_url(POSTGRES_URL), connect_timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except psycopg.Error as err:
        pytest.skip(
            f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} not reachable: {err}"
        )
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_admin_url: str) -> Iterator[Database]:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(postgres_admin_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(postgres_admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    database = Database(url.render_as_string(hide_password=False))
    try:
        database.migrate()
        yield database
    finally:
        database.dispose()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    """The same test on both supported databases."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    result: Database = request.getfixturevalue(fixture)
    return result
