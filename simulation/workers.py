"""The simulation's worker: the service's own wiring (`worker.build_worker`) with no
mailer and a throwaway database. Each shard of a run (simulation/shard.py) runs one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlmodel import SQLModel
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from emails.render import build_template_environment
from emails.survey_links import SurveyLinks
from records.database import Database
from worker import build_worker

SENDER = "Liftoff simulation <simulation@liftoff.example>"
PUBLIC_URL = "http://simulation.invalid"
ACTIVITY_THREADS = 8


def throwaway_database(path: Path, *, migrate: bool) -> Database:
    """A SQLite database for one run: no fsync per commit (nothing outlives the run)."""
    database = Database(f"sqlite:///{path}")

    @event.listens_for(database.engine, "connect")
    def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    if migrate:
        database.migrate()
    return database


def merge_database(database: Database, other: Path) -> None:
    """Copies every row of the SQLite file `other` into `database`, which has the same
    schema. Rows numbered by the database (usage events, contacts) are numbered anew; a
    row both already hold (a playbook version every shard recorded) is kept once."""
    # ATTACH cannot run inside a transaction, which SQLAlchemy would open: the driver's
    # own connection, in autocommit (records/database.py), with one explicit transaction.
    connection = database.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("ATTACH DATABASE ? AS other", (str(other),))
        cursor.execute("BEGIN IMMEDIATE")
        for table in SQLModel.metadata.sorted_tables:
            numbered = table.autoincrement_column
            columns = ", ".join(
                f'"{column.name}"' for column in table.columns if column is not numbered
            )
            cursor.execute(
                f'INSERT OR IGNORE INTO main."{table.name}" ({columns}) '
                f'SELECT {columns} FROM other."{table.name}"'
            )
        cursor.execute("COMMIT")
        cursor.execute("DETACH DATABASE other")
    finally:
        connection.close()


@contextlib.asynccontextmanager
async def simulation_worker(
    client: Client,
    *,
    task_queue: str,
    database: Database,
    templates_dir: Path,
    survey_secret: str,
) -> AsyncIterator[Worker]:
    """A running worker: the real workflow and activities. Each email is rendered and
    kept on the ledger, and delivered nowhere (`MailActivities` with no mailer): the
    report counts emails, and a template the playbook names still has to render."""
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client,
            task_queue=task_queue,
            database=database,
            mailer=None,
            templates=build_template_environment(templates_dir),
            sender=SENDER,
            activity_executor=executor,
            survey_links=SurveyLinks(survey_secret, PUBLIC_URL),
            # The same workflow code without the sandbox: per payload the sandbox runs
            # code to find its serialization context, and per workflow it re-imports the
            # workflow module; together about a quarter of the simulation's CPU
            # (py-spy). The sandbox guards determinism, which the test suite and the
            # service keep checking with it on.
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        async with worker:
            yield worker
