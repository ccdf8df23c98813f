"""The PostgreSQL server the tests and the bench use, one fresh schema at a time.

Set LIFTOFF_TEST_POSTGRES_URL to use another server than 127.0.0.1:5432/test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

from records.database import Database

POSTGRES_URL = os.environ.get(
    "LIFTOFF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONNECT_TIMEOUT_SECONDS = 2


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def unreachable(url: str = POSTGRES_URL) -> str | None:
    """Why the server does not answer, in one line; None when it does."""
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=CONNECT_TIMEOUT_SECONDS):
            return None
    except psycopg.Error as err:
        reason = " ".join(str(err).split())  # libpq's message spans lines
        return f"PostgreSQL at {make_url(url).render_as_string()} not reachable: {reason}"


@contextmanager
def fresh_schema(prefix: str, url: str = POSTGRES_URL) -> Iterator[Database]:
    """A database in a schema of its own (not yet migrated), dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    database = Database(scoped.render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def schemas_named(prefix: str, url: str = POSTGRES_URL) -> set[str]:
    """The schemas whose names start with `prefix` (what `fresh_schema` left behind)."""
    with psycopg.connect(_libpq_url(url)) as connection:
        rows = connection.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (f"{prefix}%",),
        ).fetchall()
    return {name for (name,) in rows}
