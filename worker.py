"""The Liftoff worker: the one place that wires dependencies together.

Run it as a service (`python worker.py`); it reads its configuration from the
environment (see settings.py), migrates the database, and serves the
onboarding workflow and its activities on one task queue until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import compileall
import gc
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.converter import SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import (
    Interceptor,
    PollerBehaviorSimpleMaximum,
    Worker,
    WorkerDeploymentConfig,
    WorkflowRunner,
)
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.worker.workflow_sandbox._runner import _Instance

import workflows
from activities.calendar import public_holidays
from activities.mail import MailActivities
from activities.measure import MeasureActivities
from activities.store import StoreActivities
from client.codec import LiftoffCodec
from client.connection import connect_client
from client.payload_storage import stores_by_reference
from emails.mailers import Mailer, OutboxMailer, SendGridMailer, SmtpMailer
from emails.opt_out_links import OptOutLinks
from emails.render import build_template_environment
from emails.survey_links import SurveyLinks
from logs import configure_logging
from models.errors import describe
from observability.health import Readiness, serve_worker_probe, worker_readiness
from observability.metrics import ActivityFailureMetrics
from observability.tracing import configure_tracing, current_provider, trace_database
from records.database import Database
from settings import Settings
from workflows.onboarding import CustomerOnboardingWorkflow

log = logging.getLogger("liftoff.worker")

# A worker makes many short-lived objects for each task (protobuf messages, pydantic
# models) and keeps few of them: at the default first threshold (700 allocations) the
# cyclic garbage collector took about a tenth of its CPU (`make bench`: 210-212 ms of
# CPU per journey, 186-188 ms with these; a simulation shard 18.4-18.6 s, 16.5-17.3 s).
# The oldest generation keeps Python's own threshold (10): a customer evicted from a
# bounded sticky cache is garbage in cycles there, and at 100 a worker holding 10,000
# customers on a cache of 1,000 grew to 1.45 GB, 0.9 GB after one full collection.
GC_THRESHOLDS = (50_000, 20, 10)


_collections_lock = threading.Lock()
_collections_held = 0
_collections_before = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The collector at GC_THRESHOLDS while any such block runs, then as it was: a worker
    may share its process (`make run`, a simulation's shard 0, the tests), and two may
    run at once and stop in any order."""
    global _collections_held, _collections_before
    with _collections_lock:
        if _collections_held == 0:
            _collections_before = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLDS)
        _collections_held += 1
    try:
        yield
    finally:
        with _collections_lock:
            _collections_held -= 1
            if _collections_held == 0:
                gc.set_threshold(*_collections_before)


def build_mailer(settings: Settings) -> Mailer:
    """The configured mail backend; logs which one, never its credentials."""
    if settings.mail_backend == "sendgrid":
        if settings.sendgrid_api_key is None:  # Settings refuses this; kept for mypy
            raise ValueError("LIFTOFF_MAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
        delay = settings.sendgrid_send_delay_minutes
        log.info(
            "mail backend: sendgrid",
            extra={
                "host": settings.sendgrid_host,
                "sandbox": settings.sendgrid_sandbox_mode,
                "send_delay_minutes": delay,
            },
        )
        return SendGridMailer(
            settings.sendgrid_api_key,
            host=settings.sendgrid_host,
            timeout=settings.mail_timeout,
            sandbox_mode=settings.sendgrid_sandbox_mode,
            unsubscribe_url=settings.unsubscribe_url,
            unsubscribe_mailto=settings.unsubscribe_mailto,
            send_delay=timedelta(minutes=delay) if delay is not None else None,
        )
    if settings.mail_backend == "smtp":
        if settings.smtp_host is None:  # Settings refuses this; kept for mypy
            raise ValueError("LIFTOFF_MAIL_BACKEND=smtp needs LIFTOFF_SMTP_HOST")
        mailer = SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls and not settings.smtp_tls,
            use_tls=settings.smtp_tls,
            timeout=settings.mail_timeout,
            unsubscribe_url=settings.unsubscribe_url,
            unsubscribe_mailto=settings.unsubscribe_mailto,
        )
        log.info("mail backend: smtp", extra={"smtp": repr(mailer)})
        return mailer
    log.info("mail backend: outbox", extra={"outbox_dir": str(settings.outbox_dir)})
    return OutboxMailer(settings.outbox_dir)


def survey_links(settings: Settings) -> SurveyLinks | None:
    """The signer of survey score links; without LIFTOFF_SURVEY_SECRET survey emails fail
    visibly (email_failed on the customer's timeline), and the worker says so now."""
    if settings.survey_secret is None:
        log.warning(
            "LIFTOFF_SURVEY_SECRET is not set: a playbook's survey emails will fail "
            "(set the same secret on the worker and on `liftoff serve`)"
        )
        return None
    return SurveyLinks(settings.survey_secret.get_secret_value(), settings.public_url)


def opt_out_links(settings: Settings) -> OptOutLinks | None:
    """The signer of unsubscribe links, with the survey secret under a salt of its own;
    without it messages go without Liftoff's link (LIFTOFF_UNSUBSCRIBE_URL, if set,
    stands in) and opt-outs made by other doors still count."""
    if settings.survey_secret is None:
        log.warning(
            "LIFTOFF_SURVEY_SECRET is not set: emails go without Liftoff's one-click "
            "unsubscribe link (set the same secret on the worker and on `liftoff serve`)"
        )
        return None
    return OptOutLinks(settings.survey_secret.get_secret_value(), settings.public_url)


def onboarding_activities(
    store: StoreActivities, measure: MeasureActivities, mail: MailActivities
) -> list[Callable[..., Any]]:
    """Every activity CustomerOnboardingWorkflow calls, as build_worker registers them."""
    return [
        store.upsert_customer,
        store.add_contact,
        store.record_timeline,
        store.open_task,
        store.close_tasks,
        store.move_task_due,
        store.store_batch,
        measure.measure_weekly_usage,
        mail.send_email,
        public_holidays,
    ]


def build_worker(
    client: Client,
    *,
    task_queue: str,
    database: Database,
    mailer: Mailer | None,
    templates: Environment,
    sender: str,
    activity_executor: Executor,
    max_concurrent_activities: int | None = None,
    max_cached_workflows: int = 1000,
    max_concurrent_workflow_tasks: int | None = None,
    max_concurrent_workflow_task_polls: int = 5,
    interceptors: Sequence[Interceptor] = (),
    survey_links: SurveyLinks | None = None,
    opt_out_links: OptOutLinks | None = None,
    version: WorkerDeploymentVersion | None = None,
    workflow_runner: WorkflowRunner | None = None,
) -> Worker:
    """The onboarding workflow and its activities, bound to their dependencies.

    The worker service, the tests and the bench all serve through this one wiring.
    With `version`, the worker takes part in Temporal Worker Versioning: it gets tasks
    once that version is current (or ramping), and a customer moves to the current
    version at its next workflow task (auto-upgrade: customers live for months, so
    pinning each to the build it started on would keep every old build running that
    long; `workflow.patched` and the replay gate keep the upgrade safe).
    Workflows run in the SDK's sandbox unless `workflow_runner` says otherwise (the
    simulator's, for speed; see simulation/runner.py).
    """
    mail = MailActivities(database, mailer, templates, sender, survey_links, opt_out_links)
    store, measure = StoreActivities(database), MeasureActivities(database)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[CustomerOnboardingWorkflow],
        activities=onboarding_activities(store, measure, mail),
        activity_executor=activity_executor,
        max_concurrent_activities=max_concurrent_activities,
        max_cached_workflows=max_cached_workflows,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
            max_concurrent_workflow_task_polls
        ),
        interceptors=interceptors,
        workflow_runner=workflow_runner or sandboxed_runner(),
        deployment_config=None
        if version is None
        else WorkerDeploymentConfig(
            version=version,
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
        ),
    )


def sandboxed_runner(*, strict: bool = False) -> SandboxedWorkflowRunner:
    """The SDK's sandbox, in one of two trade-offs (docs/architecture.md, "The workflow
    sandbox").

    Shared (the default): every module, the workflow module included, is imported once
    and shared by all workflows, instead of imported again for each workflow started or
    replayed: 440 to 326 KB of RSS per cached customer. The price: the workflow code
    sees the real `datetime`, `random` and `os`, so a clock read in it is no longer
    caught at run time. Safe because no workflow module keeps state at module level
    that a workflow could change (workflows/shared_playbooks.py keeps equal copies).

    Strict: the SDK's default, whose proxies fail a workflow task that reads the clock,
    randomness or I/O outside Temporal's APIs. The test suite's workers run it, so a
    non-deterministic call in workflow code fails the tests before it ships.
    """
    if strict:
        return DirectContextSandboxedRunner()
    restrictions = SandboxRestrictions.default.with_passthrough_all_modules()
    return DirectContextSandboxedRunner(restrictions=restrictions)


class DirectContextSandboxedRunner(SandboxedWorkflowRunner):
    """The SDK's sandbox, asking the workflow for a payload's serialization context
    directly instead of through `exec`.

    temporalio 1.35 asks the sandboxed workflow for the context of every payload
    sequence it encodes or decodes (six visits per activation and completion) by
    compiling and running a line of source inside the sandbox's import hooks: 0.17 ms
    a call, about 99 calls per `make bench` journey, a tenth of its CPU. The answer
    comes from the SDK's own workflow instance, which reads its pending commands and
    imports nothing, so calling it directly gives the same answer (checked in
    tests/test_worker_sandbox.py). Where a later SDK no longer keeps the instance
    where this looks, it asks the SDK's way, and that test fails to say so.
    """

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _DirectContextInstance(det, self.runner_class, self.restrictions)


class _DirectContextInstance(_Instance):
    def _in_sandbox(self) -> Any:
        return self.globals_and_locals.get("__temporal_in_sandbox")

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> SerializationContext | None:
        in_sandbox = self._in_sandbox()
        if in_sandbox is None:
            return super().get_serialization_context(command_info)
        context: SerializationContext | None = in_sandbox.get_serialization_context(command_info)
        return context

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        in_sandbox = self._in_sandbox()
        if in_sandbox is None:
            return super().get_external_store_context(command_info)
        context: StorageDriverStoreContext = in_sandbox.get_external_store_context(command_info)
        return context


def precompile_workflow_code() -> bool:
    """Write the workflow modules' bytecode once, whatever PYTHONDONTWRITEBYTECODE says.

    The sandbox imports the workflow module afresh for every workflow it starts or
    replays. Without cached bytecode (the variable set, as on these machines, or a
    read-only tree never compiled) each import compiles the source again: 6 to 13 ms
    for workflows/onboarding.py, against 0.1 ms to load its bytecode. compileall writes
    whatever the variable says; a tree it cannot write (an image compiled at build
    time, deploy/Dockerfile) is left as it is. True when the bytecode is there.
    """
    package = Path(workflows.__file__).resolve().parent
    try:
        return bool(compileall.compile_dir(package, quiet=2))
    except OSError:
        return False


async def run_worker(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    client: Client | None = None,
) -> None:
    """Serve until `stop` is set (or forever); usable from scripts and tests."""
    with fewer_collections():
        await _serve(settings, stop=stop or asyncio.Event(), client=client)


async def _serve(settings: Settings, *, stop: asyncio.Event, client: Client | None) -> None:
    database = Database(settings.database_url)
    trace_database(database.engine, current_provider())
    await asyncio.to_thread(precompile_workflow_code)
    # Migrations are idempotent, so every worker may run them on start.
    await asyncio.to_thread(database.migrate)
    if client is None:
        client = await connect_client(settings, serve_metrics=True)
    try:
        # Activities are synchronous (SQL, file and SMTP I/O), so they run in threads.
        with ThreadPoolExecutor(
            max_workers=settings.max_concurrent_activities,
            thread_name_prefix="liftoff-activity",
        ) as executor:
            worker = build_worker(
                client,
                task_queue=settings.task_queue,
                database=database,
                mailer=build_mailer(settings),
                templates=build_template_environment(settings.templates_dir),
                sender=settings.mail_from,
                activity_executor=executor,
                max_concurrent_activities=settings.max_concurrent_activities,
                max_cached_workflows=settings.max_cached_workflows,
                max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
                max_concurrent_workflow_task_polls=settings.max_concurrent_workflow_task_polls,
                interceptors=[ActivityFailureMetrics()],
                survey_links=survey_links(settings),
                opt_out_links=opt_out_links(settings),
                version=settings.worker_version(),
                workflow_runner=sandboxed_runner(strict=settings.workflow_sandbox == "strict"),
            )
            log.info(
                "worker started",
                extra={
                    "task_queue": settings.task_queue,
                    "namespace": settings.temporal_namespace,
                    "address": settings.temporal_address,
                    "mail_backend": settings.mail_backend,
                    "max_cached_workflows": settings.max_cached_workflows,
                    "max_concurrent_workflow_tasks": settings.max_concurrent_workflow_tasks,
                    "max_concurrent_workflow_task_polls": (
                        settings.max_concurrent_workflow_task_polls
                    ),
                    "worker_version": version.to_canonical_string()
                    if (version := settings.worker_version())
                    else None,
                    # Which key seals new payloads (None: encryption off); never the key.
                    "encryption_key_id": codec.key_id
                    if isinstance(codec := client.data_converter.payload_codec, LiftoffCodec)
                    else None,
                    "payload_compression": isinstance(codec, LiftoffCodec) and codec.compresses,
                    "playbooks_by_reference": stores_by_reference(client.data_converter),
                },
            )
            serving = asyncio.create_task(worker.run())
            with _health_probe(settings, database, client, serving, stop):
                stopping = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait(
                    {serving, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if serving in done:
                    stopping.cancel()
                    serving.result()  # the worker died on its own: surface why
                    return
                log.info("shutting down: finishing running activities and workflow tasks")
                await worker.shutdown()
                await serving
                log.info("worker stopped")
    finally:
        database.dispose()


def _health_probe(
    settings: Settings,
    database: Database,
    client: Client,
    serving: asyncio.Task[None],
    stop: asyncio.Event,
) -> AbstractContextManager[object]:
    """The worker's /healthz and /readyz at LIFTOFF_HEALTH_ADDRESS, if set."""
    if settings.health_address is None:
        return nullcontext()
    loop = asyncio.get_running_loop()
    readiness = Readiness(database, client)
    log.info("health probe", extra={"url": f"http://{settings.health_address}"})
    return serve_worker_probe(
        settings.health_address,
        serving=lambda: not serving.done() and not stop.is_set(),
        ready=lambda: worker_readiness(readiness, loop),
    )


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_worker(settings, stop=stop)


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as err:
        # One readable line, naming each variable, instead of a traceback.
        raise SystemExit(f"liftoff worker: bad configuration: {describe(err)}") from None
    configure_logging(settings)
    configure_tracing("liftoff-worker")
    try:
        asyncio.run(_main(settings))
    except Exception:
        log.exception("worker failed")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
