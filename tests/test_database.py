"""The database layer: migrations, URLs and instants, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import StatementError
from sqlmodel import SQLModel, select

from models.tables import (
    CustomerContact,
    CustomerProjection,
    TimelineEntry,
    UnmatchedUsage,
    WeeklyMeasurementRecord,
)
from records.database import MIGRATIONS_DIR, Database, insert_ignore, normalize_url
from records.playbook_versions import content_hash, find_version, list_versions
from testkit import postgres
from testkit.factories import REPO, make_playbook


def test_migrations_build_exactly_the_schema_the_models_describe(database: Database) -> None:
    database.migrate()  # a second run, as every worker start does, is harmless
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@db:5432/liftoff",
        "postgresql://u:p@db:5432/liftoff",
        "postgresql+psycopg://u:p@db:5432/liftoff",
    ],
)
def test_postgres_urls_all_use_psycopg_3(url: str) -> None:
    normalized = normalize_url(url)
    assert normalized.drivername == "postgresql+psycopg"
    assert normalized.host == "db"
    assert normalized.database == "liftoff"


def test_sqlite_file_gets_its_folder_created(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'not' / 'yet' / 'liftoff.db'}")
    try:
        database.migrate()
        assert (tmp_path / "not" / "yet" / "liftoff.db").is_file()
    finally:
        database.dispose()


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        Database("mysql://u@localhost/liftoff")


def test_instants_come_back_as_the_same_moment_in_utc(database: Database) -> None:
    tokyo = timezone(timedelta(hours=9))
    written = datetime(2025, 3, 3, 18, 30, tzinfo=tokyo)
    with database.session() as session:
        inserted = insert_ignore(
            session,
            TimelineEntry,
            {
                "customer_id": "acme",
                "seq": 1,
                "at": written,
                "kind": "note",
                "stage": "handoff",
                "summary": "",
                "details": {},
            },
            ["customer_id", "seq"],
        )
    with database.session() as session:
        entry = session.get(TimelineEntry, ("acme", 1))

    assert inserted == 1
    assert entry is not None
    assert entry.at == written
    assert entry.at.tzinfo is not None and entry.at.utcoffset() == timedelta(0)
    assert entry.at.hour == 9


def test_naive_instants_are_refused_rather_than_guessed(sqlite_database: Database) -> None:
    with (
        pytest.raises(
            StatementError, match="naive datetime 2025-03-03T09:00:00: store aware datetimes only"
        ),
        sqlite_database.session() as session,
    ):
        session.add(
            TimelineEntry(
                customer_id="acme",
                seq=1,
                at=datetime(2025, 3, 3, 9, 0),
                kind="note",
                stage="handoff",
                summary="",
                details={},
            )
        )
        session.flush()


def test_workers_starting_together_migrate_one_at_a_time(database: Database) -> None:
    # Each worker runs the migrations on start; several starting at once must all succeed.
    url = database.engine.url.render_as_string(hide_password=False)
    workers = [Database(url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda worker: worker.migrate(), workers))
    finally:
        for worker in workers:
            worker.dispose()
    # Every worker came up (a failed migration would have raised), the schema is
    # exactly the models' once, and it takes writes.
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    with database.session() as session:
        inserted = insert_ignore(
            session,
            TimelineEntry,
            {
                "customer_id": "c1",
                "seq": 1,
                "at": datetime(2026, 1, 1, tzinfo=UTC),
                "kind": "transition",
                "stage": "kickoff",
                "summary": "still usable",
                "details": {},
            },
            ["customer_id", "seq"],
        )
    assert inserted == 1


# A process that imports everything first, then migrates when told to on stdin, so
# several start their migrations at the same instant.
_MIGRATE_WHEN_TOLD = (
    "import sys\n"
    "from records.database import Database\n"
    "database = Database(sys.argv[1])\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "database.migrate()\n"
)


@contextmanager
def _fresh_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of an empty database, never migrated."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    with postgres.fresh_schema("fresh", admin_url) as database:
        yield database.url.render_as_string(hide_password=False)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_two_processes_migrating_one_fresh_database_together_both_succeed(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # What a worker and `liftoff serve` started together do: both run every migration
    # on start. PostgreSQL runs them under an advisory lock, SQLite under its write lock.
    with _fresh_url(dialect, tmp_path, request) as url:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE_WHEN_TOLD, url],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for process in processes:
                assert process.stdout is not None
                assert process.stdout.readline() == "ready\n", process.communicate()[1]
            for process in processes:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            errors = [process.communicate(timeout=120)[1] for process in processes]
        finally:
            for process in processes:
                process.kill()
                process.wait()
        assert [process.returncode for process in processes] == [0, 0], errors
        database = Database(url)
        try:
            with database.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                assert compare_metadata(context, SQLModel.metadata) == []
                [version] = connection.execute(text("SELECT version_num FROM alembic_version"))
        finally:
            database.dispose()
        assert version[0] == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


@contextmanager
def _at_revision(database: Database, revision: str) -> Iterator[Connection]:
    """The schema as an older release left it, in a transaction for writing its rows."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        yield connection


def test_upgrade_from_0001_keeps_existing_rows_and_zeroes_their_engagement(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with _at_revision(database, "0001") as connection:
            connection.execute(
                text(
                    "INSERT INTO contacts (customer_id, email, name, role, unsubscribed)"
                    " VALUES ('acme', 'admin@acme.example', 'Ari', 'administrator', false)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO weekly_measurements (customer_id, week_index, window_start,"
                    " window_end, active_users, active_seat_ratio, events, key_actions,"
                    " quota_consumption, data_ever_arrived, measured_at) VALUES ('acme', 1,"
                    " '2025-03-03 00:00:00', '2025-03-10 00:00:00', 3, 0.3, 9, '{}', NULL,"
                    " true, '2025-03-10 00:00:00')"
                )
            )
        database.migrate()
        with database.session() as session:
            week = session.get(WeeklyMeasurementRecord, ("acme", 1))
            [contact] = session.exec(select(CustomerContact)).all()
        assert week is not None
        assert (week.active_users, week.email_opens, week.email_clicks) == (3, 0, 0)
        assert (contact.email, contact.suppressed_reason) == ("admin@acme.example", None)
    finally:
        database.dispose()


def test_upgrade_from_0003_keeps_unmatched_usage_and_keys_it_from_then_on(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with _at_revision(database, "0003") as connection:
            connection.execute(
                text(
                    "INSERT INTO unmatched_usage (received_at, kind, user_id, group_id, reason,"
                    " raw) VALUES ('2026-11-20 09:00:00', 'track', 'u1', 'prospect',"
                    " 'group id names no customer', '{\"messageId\": \"m-1\"}')"
                )
            )
        database.migrate()  # SQLite rebuilds the table to add the constraint
        with database.session() as session:
            [kept] = session.exec(select(UnmatchedUsage)).all()
            assert (kept.group_id, kept.raw, kept.event_key) == (
                "prospect",
                {"messageId": "m-1"},
                None,
            )
            for _ in range(2):
                insert_ignore(
                    session,
                    UnmatchedUsage,
                    {**kept.model_dump(exclude={"id"}), "event_key": "m-2"},
                    ["event_key"],
                )
            session.commit()
            assert len(session.exec(select(UnmatchedUsage)).all()) == 2
    finally:
        database.dispose()


def test_upgrade_from_0004_lists_existing_customers_from_their_rows(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with _at_revision(database, "0004") as connection:
            connection.execute(
                text(
                    "INSERT INTO customers (customer_id, name, csm, cs_leader, seats_contracted,"
                    " time_zone, locale, purposes, trial_used, already_using, handoff_notes,"
                    " playbook_name, playbook_version, workflow_id, stage, stage_since,"
                    " created_at) VALUES ('acme', 'Acme', 'csm@x.example', 'lead@x.example', 300,"
                    " 'UTC', 'en', '[\"A\"]', false, false, '', 'default', '3', 'onboarding-acme',"
                    " 'failed', '2026-06-01 00:00:00', '2026-03-01 00:00:00')"
                )
            )
        database.migrate()
        with database.session() as session:
            row = session.get(CustomerProjection, "acme")
        assert row is not None
        assert (row.stage, row.outcome, row.seats_band, row.purposes) == (
            "failed",
            "failed",
            "201-1000",
            ["A"],
        )
        assert row.ended_at == datetime(2026, 6, 1, tzinfo=UTC)
        assert row.last_seq == 0  # the next timeline entry sets the rest
    finally:
        database.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_upgrade_from_0014_keeps_a_version_recorded_with_two_contents_under_two_names(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    older, newer = (
        make_playbook(version="2026.1"),
        make_playbook(version="2026.1", deadline=timedelta(days=200)),
    )
    rows = [
        (content_hash(playbook), at, playbook.model_dump_json())
        for playbook, at in ((newer, "2026-11-02"), (older, "2026-11-01"))
    ]
    with _fresh_url(dialect, tmp_path, request) as url:
        database = Database(url)
        try:
            with _at_revision(database, "0014") as connection:
                for digest, at, content in rows:
                    connection.execute(
                        text(
                            "INSERT INTO playbook_versions (content_hash, name, version, source,"
                            " first_used_at, content) VALUES (:digest, 'default', '2026.1',"
                            " 'x.toml', :at, :content)"
                        ),
                        {"digest": digest, "at": at, "content": content},
                    )
            database.migrate()  # the unique index is built over them
            renamed = f"2026.1+{content_hash(newer)[:12]}"
            assert [row.version for row in list_versions(database)] == ["2026.1", renamed]
            assert find_version(database, "2026.1") == older
            assert find_version(database, renamed) == newer
        finally:
            database.dispose()
