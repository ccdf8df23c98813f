"""A worker killed while SendGrid holds its requests: every email still arrives exactly once.

The real `worker.py` sends through the real `sendgrid` client to the loopback
SendGrid (testkit/sendgrid.py), against a real dev server. Three customers
start on a copy of the demo playbook whose timers are all due within seconds.
The server holds every request unanswered until each customer has an email in
flight (the "schedule the kickoff" task to its CSM). The worker is then killed
with SIGKILL, so no attempt finishes and no ledger row moves past "sending"; a
new worker process starts and the server is released: the held requests find
their client gone and are not accepted. Temporal retries each send once its attempt's
start-to-close timeout (MAIL_TIMEOUT) has passed; the new worker's send_email
finds the row still "sending" and sends. The journeys then go on to the kickoff
reminder, the escalation, the momentum meeting and the deadline (failed: a
notice to the CS leader and the CSM), so every email of a journey after the
first also goes through the restarted worker.

What this proves closed: a message that never reached the provider, or reached
it but was cut off by the crash before the provider accepted it, is sent exactly
once after the restart, and no retry sends an email the ledger holds as sent:
the loopback server accepted each (customer, ledger key, recipient) once, and
each ledger row says "sent" with the id the server gave.

The demo playbook's campaign stays on: its emails start with adoption, which
these journeys never reach (no kickoff is held), so today the ledger holds just
the task and failure emails; an email the campaign did send would be held to
the same checks.

What it cannot prove, because it is not closed (see activities/mail.py): the
provider accepted the message and the worker died before the ledger row said
"sent". The retry then sends it a second time; SendGrid's mail-send API takes no
idempotency key with which to refuse the duplicate.

The test waits for Temporal's real retry, so it lasts MAIL_TIMEOUT plus
MAIL_RETRY's first interval (about 65 s) plus start-up.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from records.database import Database
from testkit.factories import demo_playbook_copy
from testkit.sendgrid import SendGridServer
from tests.support.eventually import eventually_blocking
from tests.support.processes import cli_runner, liftoff_environment, start_worker, stop
from tests.support.sendgrid import Key, key_of, ledger
from workflows.activity_options import MAIL_RETRY, MAIL_TIMEOUT

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
CUSTOMERS = tuple(f"crash-{letter}-{RUN}" for letter in "abc")
CSM = "csm@liftoff.example"
LEADER = "leader@liftoff.example"
# Every timer due within seconds, so all of a journey's emails but the first wait
# for the crashed send to be retried, and the journey then ends (failed).
PLAYBOOK_CHANGES = (
    (r'momentum_after = "\d+s"', 'momentum_after = "3s"'),
    (r'deadline = "\d+s"', 'deadline = "4s"'),
    (
        r'\[timers\.kickoff\]\nremind_csm_after = "\d+s"\nescalate_to_leader_after = "\d+s"',
        '[timers.kickoff]\nremind_csm_after = "1s"\nescalate_to_leader_after = "2s"',
    ),
)
# Held-request timeout of the SendGrid client: long enough to outlast the kill.
CLIENT_TIMEOUT = "30"
# The retry of a send whose worker died comes after its attempt times out.
RETRY_DUE = (MAIL_TIMEOUT + (MAIL_RETRY.initial_interval or MAIL_TIMEOUT)).total_seconds()
DELIVERY_TIMEOUT = RETRY_DUE + 30


def compressed_playbook(directory: Path) -> Path:
    return demo_playbook_copy(directory, PLAYBOOK_CHANGES, "crash.toml")


def expected_emails(customer: str) -> set[Key]:
    """Each task opened and the failure notice, to the person it concerns."""
    return {
        (customer, f"task:{customer}-1", CSM),  # schedule the kickoff
        (customer, f"task:{customer}-2", CSM),  # kickoff overdue
        (customer, f"task:{customer}-3", LEADER),  # escalation
        (customer, f"task:{customer}-4", CSM),  # momentum meeting
        (customer, f"task:{customer}-5", LEADER),  # deadline missed
        (customer, f"failed:{customer}", LEADER),
        (customer, f"failed:{customer}", CSM),
    }


def test_a_worker_killed_mid_send_delivers_every_email_exactly_once(
    sendgrid_server: SendGridServer, temporal_address: str, tmp_path: Path
) -> None:
    environment = liftoff_environment(
        temporal_address,
        tmp_path,
        LIFTOFF_PLAYBOOK=str(compressed_playbook(tmp_path)),
        LIFTOFF_MAIL_BACKEND="sendgrid",
        SENDGRID_API_KEY=sendgrid_server.api_key,
        LIFTOFF_SENDGRID_HOST=sendgrid_server.url,
        LIFTOFF_MAIL_TIMEOUT=CLIENT_TIMEOUT,
    )
    cli = cli_runner(environment, tmp_path)
    handoffs = tmp_path / "handoffs.csv"
    handoffs.write_text(
        "customer_id,name,csm,cs_leader,seats,contacts,purposes\n"
        + "".join(
            f"{customer},{customer.title()},{CSM},{LEADER},10,"
            f"administrator:Admin <admin@{customer}.example>,A\n"
            for customer in CUSTOMERS
        )
    )
    expected = {key for customer in CUSTOMERS for key in expected_emails(customer)}
    database = Database(environment["DATABASE_URL"])
    sendgrid_server.hold()
    first = start_worker(environment, tmp_path, tmp_path / "worker-1.log")
    second: subprocess.Popen[str] | None = None
    try:
        started = cli("start", "--csv", str(handoffs))
        assert started.returncode == 0, started.stderr

        # Each journey's first emails are in flight, unanswered; nothing later can be
        # sent before they end, since a journey waits for its side effects.
        def every_customer(bodies: list[dict[str, Any]]) -> bool:
            return {key_of(body)[0] for body in bodies} == set(CUSTOMERS)

        assert sendgrid_server.wait_until_held(every_customer, timeout=30), (
            f"held: {sorted(map(key_of, sendgrid_server.held))}"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # A request the worker had begun is now held, or its connection is gone.
        assert sendgrid_server.wait_until_settled(timeout=10)
        in_flight = sorted(map(key_of, sendgrid_server.held))
        assert {(c, f"task:{c}-1", CSM) for c in CUSTOMERS} <= set(in_flight)
        rows = ledger(database)
        assert {key: rows[key].status for key in in_flight} == dict.fromkeys(in_flight, "sending")

        second = start_worker(environment, tmp_path, tmp_path / "worker-2.log")
        sendgrid_server.release()

        # A workflow completes only once its side effects have, so no email is to come.
        def ended() -> dict[str, str]:
            listed = cli("list", "--workflows", "--json")
            assert listed.returncode == 0, listed.stderr
            return {
                row["customer_id"]: row["stage"]
                for row in json.loads(listed.stdout)
                if row["customer_id"] in CUSTOMERS and row["workflow_status"] == "completed"
            }

        stages = eventually_blocking(
            ended,
            lambda stages: len(stages) == len(CUSTOMERS),
            what="every journey over after the kill",
            timeout=DELIVERY_TIMEOUT,
            interval=1,
        )
        rows = ledger(database)
    finally:
        stop(first)
        if second is not None:
            stop(second)
        sendgrid_server.release()
        database.dispose()

    assert stages == dict.fromkeys(CUSTOMERS, "failed")
    # The held requests were cut off by the crash: never accepted.
    assert sorted(map(key_of, sendgrid_server.abandoned)) == in_flight
    accepted = Counter(map(key_of, sendgrid_server.accepted))
    assert [key for key, times in accepted.items() if times > 1] == []
    assert set(accepted) == set(rows)
    assert expected <= set(rows)
    assert {row.status for row in rows.values()} == {"sent"}
    # Each ledger row names the message the provider accepted.
    provider_ids = dict(
        zip(map(key_of, sendgrid_server.accepted), sendgrid_server.message_ids, strict=True)
    )
    assert {key: row.message_id for key, row in rows.items()} == provider_ids
    assert first.returncode == -signal.SIGKILL
    assert second is not None
    assert second.returncode == 0, (tmp_path / "worker-2.log").read_text()[-2000:]


def copies_delivered(server: SendGridServer) -> Counter[Key]:
    """What recipients get: accepted messages outside the batches cancelled since."""
    return Counter(map(key_of, server.delivered))


@pytest.mark.parametrize("scheduled", [False, True], ids=["immediate", "scheduled"])
def test_a_worker_killed_as_sendgrid_accepts_sends_a_copy_only_when_unscheduled(
    scheduled: bool, sendgrid_server: SendGridServer, temporal_address: str, tmp_path: Path
) -> None:
    """The window the ledger alone cannot close, hit on purpose: the loopback SendGrid
    accepts a message and the worker is killed before the answer reaches it. With
    immediate sends the retry sends that message again (one per customer in flight at
    most, since a customer's emails go one at a time); with scheduled sends the retry
    cancels the first copy's batch, so each recipient gets exactly one."""
    customers = tuple(f"kill-{letter}-{uuid.uuid4().hex[:8]}" for letter in "abc")
    extra = {"LIFTOFF_SENDGRID_SEND_DELAY_MINUTES": "15"} if scheduled else {}
    environment = liftoff_environment(
        temporal_address,
        tmp_path,
        LIFTOFF_PLAYBOOK=str(compressed_playbook(tmp_path)),
        LIFTOFF_MAIL_BACKEND="sendgrid",
        SENDGRID_API_KEY=sendgrid_server.api_key,
        LIFTOFF_SENDGRID_HOST=sendgrid_server.url,
        **extra,
    )
    cli = cli_runner(environment, tmp_path)
    handoffs = tmp_path / "handoffs.csv"
    handoffs.write_text(
        "customer_id,name,csm,cs_leader,seats,contacts,purposes\n"
        + "".join(
            f"{customer},{customer.title()},{CSM},{LEADER},10,"
            f"administrator:Admin <admin@{customer}.example>,A\n"
            for customer in customers
        )
    )
    workers: list[subprocess.Popen[str]] = []
    killed_at: list[Key] = []

    def kill_the_worker(body: dict[str, Any]) -> None:
        # Once: the message is SendGrid's now, and its sender dies before hearing so.
        if not killed_at:
            killed_at.append(key_of(body))
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=10)

    sendgrid_server.on_accept = kill_the_worker
    database = Database(environment["DATABASE_URL"])
    try:
        workers.append(start_worker(environment, tmp_path, tmp_path / "worker-1.log"))
        started = cli("start", "--csv", str(handoffs))
        assert started.returncode == 0, started.stderr
        eventually_blocking(
            lambda: workers[0].poll(),
            lambda code: code is not None,
            what="the worker killed at the first message SendGrid accepted",
            timeout=30,
            interval=0.2,
        )
        workers.append(start_worker(environment, tmp_path, tmp_path / "worker-2.log"))

        def ended() -> set[str]:
            listed = cli("list", "--workflows", "--json")
            assert listed.returncode == 0, listed.stderr
            return {
                row["customer_id"]
                for row in json.loads(listed.stdout)
                if row["customer_id"] in customers and row["workflow_status"] == "completed"
            }

        eventually_blocking(
            ended,
            lambda done: done == set(customers),
            what="every journey over after the kill",
            timeout=DELIVERY_TIMEOUT,
            interval=1,
        )
        rows = ledger(database)
    finally:
        for worker in workers:
            stop(worker)
        database.dispose()

    delivered = copies_delivered(sendgrid_server)
    duplicated = {key: times for key, times in delivered.items() if times > 1}
    expected = {key for customer in customers for key in expected_emails(customer)}
    assert expected <= set(delivered)
    assert {row.status for row in rows.values()} == {"sent"}
    if scheduled:
        assert duplicated == {}
        assert len(sendgrid_server.cancelled) >= 1
    else:
        # The message accepted at the kill went out twice; no customer had two in flight.
        assert killed_at[0] in duplicated
        assert set(duplicated.values()) == {2}
        assert len({customer for customer, _, _ in duplicated}) == len(duplicated)
