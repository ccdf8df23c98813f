"""Test data in one place: handoffs, playbooks, usage, stored customers, and the
mail activities tests send through."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities
from activities.store import StoreActivities
from emails.mailers import Mailer
from emails.opt_out_links import OptOutLinks
from emails.render import build_template_environment
from models.activity_io import UpsertCustomerInput
from models.handoff import Contact, CustomerHandoff, Role
from models.playbook import Playbook, SetupPolicy
from models.tables import utc_now
from records.database import Database
from records.playbooks import load_playbook
from records.usage.events import event_values, store_event_rows

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates" / "email"
SENDER = "Liftoff <onboarding@liftoff.example>"
# Signs survey score links in tests (the worker) and verifies them (the API).
SURVEY_SECRET = "test-survey-secret-" + "s" * 32
PUBLIC_URL = "http://testserver"


def make_handoff(**overrides: Any) -> CustomerHandoff:
    customer_id = overrides.pop("customer_id", f"cust-{uuid.uuid4().hex[:10]}")
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "name": "Acme Logistics",
        "csm": "csm@liftoff.example",
        "cs_leader": "lead@liftoff.example",
        "contacts": [
            Contact(email="boss@acme.example", name="Dana Boss", role=Role.DECISION_MAKER),
            Contact(email="admin@acme.example", name="Ari Admin", role=Role.ADMINISTRATOR),
            Contact(email="user@acme.example", name="Uma User", role=Role.END_USER),
        ],
        "seats_contracted": 10,
        "quota_contracted": 100.0,
        "time_zone": "Asia/Tokyo",
        "locale": "en",
        "purposes": ["A"],
    }
    fields.update(overrides)
    return CustomerHandoff(**fields)


def make_playbook(*, campaign: bool = False, surveys: bool = False, **overrides: Any) -> Playbook:
    """The shipped playbook, measuring every 7 days from adoption start.

    Lifecycle tests leave its step emails and surveys out, so their mail assertions
    see only tasks and escalations; the campaign and survey tests turn them on.
    """
    playbook = load_playbook(REPO / "playbooks" / "default.toml")
    measurement = playbook.measurement.model_copy(update={"align_to_weekday": False})
    update: dict[str, Any] = {"measurement": measurement}
    if not campaign:
        update["campaign"] = None
    if not surveys:
        update["surveys"] = None
    return playbook.model_copy(update={**update, **overrides})


def with_steps(playbook: Playbook, purpose_id: str, **changes: Any) -> Playbook:
    """The playbook with one purpose's step fields changed, by step id."""
    purposes = []
    for purpose in playbook.purposes:
        if purpose.id == purpose_id:
            steps = [step.model_copy(update=changes.get(step.id, {})) for step in purpose.steps]
            purpose = purpose.model_copy(update={"steps": steps})
        purposes.append(purpose)
    return playbook.model_copy(update={"purposes": purposes})


def demo_playbook_copy(directory: Path, changes: Sequence[tuple[str, str]], name: str) -> Path:
    """playbooks/demo.toml with each (pattern, replacement) made once, written to
    `directory` for a worker process to read; fails if the demo lost a pattern."""
    text = (REPO / "playbooks" / "demo.toml").read_text()
    for pattern, replacement in changes:
        text, found = re.subn(pattern, replacement, text)
        if found != 1:
            raise ValueError(f"playbooks/demo.toml no longer has {pattern!r}")
    path = directory / name
    path.write_text(text)
    return path


def make_fast_playbook() -> Playbook:
    """Weeks of one second, stuck in setup after one second without data, stalled after
    one low week: flags appear within seconds on a real (not time-skipping) server."""
    playbook = make_playbook()
    return playbook.model_copy(
        update={
            "measurement": playbook.measurement.model_copy(
                # The default grace: the shipped 6 hours a week, scaled to the second.
                update={"every": timedelta(seconds=1), "align_to_weekday": False, "grace": None}
            ),
            "setup": SetupPolicy(
                no_data_after=timedelta(seconds=1), escalate_to_leader_after=timedelta(hours=1)
            ),
            "stall": playbook.stall.model_copy(
                update={"rules": [r.model_copy(update={"weeks": 1}) for r in playbook.stall.rules]}
            ),
        }
    )


def add_usage(
    database: Database,
    customer_id: str,
    at: datetime,
    *,
    active_users: int,
    key_action: str | None = "document_scanned",
    actions_per_user: int = 3,
    quota_units: float = 0.0,
) -> None:
    """A week's worth of usage: each active user logs in and does the key action. Stored
    in one transaction, as the intake endpoints store a batch."""
    received_at = utc_now()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)

    def row(
        user: str, event: str, occurred_at: datetime, quantity: float = 1.0
    ) -> dict[str, object]:
        return event_values(
            customer_id=customer_id,
            user_id=user,
            event=event,
            occurred_at=occurred_at,
            quantity=quantity,
            event_key=None,
            received_at=received_at,
        )

    rows: list[dict[str, object]] = []
    for n in range(active_users):
        user = f"user-{n}"
        rows.append(row(user, "login", at + timedelta(minutes=n)))
        if key_action is not None:
            rows += [
                row(user, key_action, at + timedelta(minutes=n, seconds=k + 1))
                for k in range(actions_per_user)
            ]
    if quota_units:
        rows.append(row("user-0", "document_processed", at, quota_units))
    store_event_rows(database, rows)


def store_customer(database: Database, handoff: CustomerHandoff) -> None:
    """The customer's row, as its workflow's first activity writes it."""
    ActivityEnvironment().run(
        StoreActivities(database).upsert_customer,
        UpsertCustomerInput(
            handoff=handoff,
            playbook_name="default",
            playbook_version="1",
            workflow_id=f"onboarding-{handoff.customer_id}",
        ),
    )


def make_mail_activities(
    database: Database,
    mailer: Mailer | None,
    *,
    templates: Path = TEMPLATES,
    opt_out_links: OptOutLinks | None = None,
) -> MailActivities:
    """send_email over the shipped templates (or `templates`), from SENDER; with
    `opt_out_links`, each message that can be left carries its unsubscribe link."""
    return MailActivities(
        database,
        mailer,
        build_template_environment(templates),
        SENDER,
        opt_out_links=opt_out_links,
    )
