"""The simulation's workers: the service's own wiring (`worker.build_worker`) with an
outbox, a throwaway database, and one process per core.

One Python process runs its worker's workflow and activity code on one core at a time,
so a run uses a second core only through a second process: `simulate` runs one worker in
its own process and starts the others as `python -m simulation.workers`. They poll the
same task queue; any of them may take any customer's next task, which changes no figure
(tests/test_simulation.py runs one cohort both ways). A child stops when its stdin closes,
so it never outlives the run that started it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from client.payloads import liftoff_data_converter
from emails.mailers import OutboxMailer
from emails.render import build_template_environment
from emails.survey_links import SurveyLinks
from records.database import Database
from simulation.server import quiet_runtime
from worker import build_worker

SENDER = "Liftoff simulation <simulation@liftoff.example>"
PUBLIC_URL = "http://simulation.invalid"
ACTIVITY_THREADS = 8
# Survey links are signed but never answered: a secret of the run only, passed to the
# children in their environment rather than on a command line others can read.
SECRET_VARIABLE = "LIFTOFF_SIMULATION_SURVEY_SECRET"
READY = "ready"
READY_SECONDS = 60.0
STOP_SECONDS = 30.0


class WorkerStartFailed(Exception):
    """A worker process that did not start; the message carries what it said."""


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


@contextlib.asynccontextmanager
async def simulation_worker(
    client: Client,
    *,
    task_queue: str,
    database: Database,
    workdir: Path,
    templates_dir: Path,
    survey_secret: str,
) -> AsyncIterator[Worker]:
    """A running worker: the real workflow and activities, emails to the run's outbox."""
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client,
            task_queue=task_queue,
            database=database,
            mailer=OutboxMailer(workdir / "outbox"),
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


@contextlib.asynccontextmanager
async def worker_processes(
    count: int,
    *,
    address: str,
    namespace: str,
    task_queue: str,
    workdir: Path,
    templates_dir: Path,
    survey_secret: str,
) -> AsyncIterator[None]:
    """`count` child worker processes, each ready (polling) before this yields."""
    children: list[asyncio.subprocess.Process] = []
    # The packages' root, for a child started from any directory.
    root = str(Path(__file__).resolve().parent.parent)
    environment = {
        **os.environ,
        SECRET_VARIABLE: survey_secret,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    try:
        for _ in range(count):
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "simulation.workers",
                "--address",
                address,
                "--namespace",
                namespace,
                "--task-queue",
                task_queue,
                "--workdir",
                str(workdir),
                "--templates",
                str(templates_dir),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=environment,
            )
            children.append(child)
        for child in children:
            await _ready(child)
        yield
    finally:
        for child in children:
            await _stop(child)


async def _ready(child: asyncio.subprocess.Process) -> None:
    assert child.stdout is not None  # created with stdout=PIPE
    try:
        line = await asyncio.wait_for(child.stdout.readline(), READY_SECONDS)
    except TimeoutError:
        line = b""
    if line.decode().strip() != READY:
        raise WorkerStartFailed(
            f"a simulation worker process did not start (exit code {child.returncode}); "
            "its error is above"
        )


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    if child.stdin is not None:
        child.stdin.close()
    try:
        await asyncio.wait_for(child.wait(), STOP_SECONDS)
    except TimeoutError:
        child.kill()
        await child.wait()


async def _serve(args: argparse.Namespace) -> None:
    client = await Client.connect(
        args.address,
        namespace=args.namespace,
        data_converter=liftoff_data_converter,
        runtime=quiet_runtime(),
    )
    database = throwaway_database(Path(args.workdir) / "simulation.db", migrate=False)
    async with simulation_worker(
        client,
        task_queue=args.task_queue,
        database=database,
        workdir=Path(args.workdir),
        templates_dir=Path(args.templates),
        survey_secret=os.environ[SECRET_VARIABLE],
    ):
        sys.stdout.write(f"{READY}\n")
        sys.stdout.flush()
        # Serve until the parent closes stdin (or dies).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one worker process of a simulation")
    for name in ("--address", "--namespace", "--task-queue", "--workdir", "--templates"):
        parser.add_argument(name, required=True)
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
