"""The application database: one engine per process, SQLite or PostgreSQL.

Activities run in a thread pool, so the engine is synchronous and shared by
threads; each activity opens its own short session.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool, StaticPool
from sqlmodel import Session, SQLModel, create_engine

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same for every Liftoff worker.
_MIGRATION_LOCK = 0x4C69_6674

# How long a SQLite writer waits for another one before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000
_WAL_RETRY_SECONDS = 0.05


def normalize_url(url: str) -> URL:
    """Accept the usual spellings of a PostgreSQL URL and use psycopg 3 for all of them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _postgres_connect_args(url: URL) -> dict[str, Any]:
    # psycopg's default waits 130 s for a server that accepts and never answers; a
    # URL's own connect_timeout wins.
    return {} if "connect_timeout" in url.query else {"connect_timeout": 10}


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Write-ahead logging (the file keeps it). On a new file, processes connecting at
    once race to switch it, and SQLite refuses the loser at once ("database is locked")
    instead of waiting, as waiting could deadlock: try again for the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(_WAL_RETRY_SECONDS)


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(self.url)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                self.url, pool_pre_ping=True, connect_args=_postgres_connect_args(self.url)
            )
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")

    @staticmethod
    def _sqlite_engine(url: URL) -> Engine:
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if _is_memory(url):
            # One shared connection, or every session would see its own empty database.
            kwargs["poolclass"] = StaticPool
        else:
            Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, issue BEGIN (see _on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            _use_wal(cursor)
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            # Take the write lock up front: a deferred transaction that reads and
            # then writes fails at once (SQLITE_BUSY) when another writer went
            # first, while an immediate one waits for busy_timeout.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        """Bring the schema to the newest revision; harmless when it is already there."""
        # Imported here: alembic is about a third of this module's import time, and
        # every CLI command, shard and worker imports the module; few of them migrate.
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # Workers starting together take turns; the lock ends with the transaction.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            # env.py uses this connection instead of building its own engine.
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def unpooled_engine(self) -> Engine:
        """An engine that opens a new connection each time: a probe on it is not fooled by
        pooled connections a frozen server or network left hanging. SQLite's own engine
        is one already, in effect."""
        if self.dialect != "postgresql":
            return self.engine
        return create_engine(
            self.url, poolclass=NullPool, connect_args=_postgres_connect_args(self.url)
        )

    def dispose(self) -> None:
        self.engine.dispose()


def insert_ignore(
    session: Session,
    table: type[SQLModel] | Table,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    conflict_columns: Sequence[str],
) -> int:
    """INSERT ... ON CONFLICT (conflict_columns) DO NOTHING; returns the rows inserted.

    This is how activities stay idempotent: a retry inserts nothing and fails nothing.
    """
    target: Table = table if isinstance(table, Table) else table.__table__  # type: ignore[attr-defined]
    rows = [values] if isinstance(values, Mapping) else list(values)
    if not rows:
        return 0
    statement = _insert_ignore_statement(
        target, session.get_bind().dialect.name, tuple(conflict_columns)
    )
    inserted = 0
    # Executed with the rows as parameters, not rendered into the statement: then
    # SQLAlchemy compiles it once per process instead of on every call (a statement
    # with its values inside is never cached). Rows are grouped by their columns,
    # since one execution takes one set of columns.
    for group in _by_columns(rows).values():
        inserted += len(session.connection().execute(statement, group).all())
    return inserted


def _by_columns(rows: Sequence[Mapping[str, Any]]) -> dict[frozenset[str], list[dict[str, Any]]]:
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(dict(row))
    return groups


@functools.cache
def _insert_ignore_statement(target: Table, dialect: str, conflict_columns: tuple[str, ...]) -> Any:
    if dialect == "postgresql":
        insert: Any = postgresql.insert(target)
    elif dialect == "sqlite":
        insert = sqlite.insert(target)
    else:
        raise ValueError(f"insert_ignore does not support {dialect!r}")
    return (
        insert.on_conflict_do_nothing(index_elements=list(conflict_columns))
        # Counted from RETURNING: rowcount is not reliable for this statement everywhere.
        .returning(*(target.c[name] for name in conflict_columns))
    )
