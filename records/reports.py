"""What people read back from the database: a customer's timeline, the task list, the
emails sent to a customer's people and what became of them, and who a customer's CSM is.

Plain functions for the CLI and the HTTP app. Workflow state is never read here:
stage, goals and verdicts come from the workflow's status query.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import col, select

from models.email_categories import OPT_OUT_CATEGORIES
from models.tables import (
    Customer,
    CustomerContact,
    EmailEvent,
    EmailLedgerEntry,
    EmailOptOut,
    Task,
    TimelineEntry,
)
from records.database import Database
from records.usage.store import DEFAULT_USERS_LIMIT, ProductUser, customer_users


class TimelineRow(BaseModel):
    seq: int
    at: datetime
    kind: str
    stage: str
    summary: str
    details: dict[str, Any]


class TaskRow(BaseModel):
    task_id: str
    customer_id: str
    kind: str
    assignee: str
    title: str
    state: str
    opened_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    resolution: str | None


class EmailEventRow(BaseModel):
    event: str
    at: datetime
    # An open fetched by a mail client's privacy proxy, not by a person.
    machine_open: bool
    url: str | None
    reason: str | None


class EmailRow(BaseModel):
    ledger_key: str
    template: str
    recipient: str
    status: str  # "sending", "sent" or "failed"
    created_at: datetime
    sent_at: datetime | None
    error: str | None
    last_event: str | None
    last_event_at: datetime | None
    # The provider's events for this message, oldest first.
    events: list[EmailEventRow]

    def fate(self, *, reason_chars: int = 60) -> list[tuple[str, int]]:
        """What the provider reported, in order, repeats counted:
        [("delivered", 1), ("open", 2), ("click", 1)]; a bounce carries its reason."""
        seen: list[tuple[str, int]] = []
        for event in self.events:
            name = "machine open" if event.machine_open else event.event
            if event.reason and event.event in ("bounce", "dropped", "deferred"):
                name = f"{name} ({event.reason[:reason_chars]})"
            if seen and seen[-1][0] == name:
                seen[-1] = (name, seen[-1][1] + 1)
            else:
                seen.append((name, 1))
        return seen


class ContactRow(BaseModel):
    name: str
    email: str
    role: str
    unsubscribed: bool
    # Why the provider's events stopped mail to this person (bounce, spam report...).
    suppressed_reason: str | None
    # The email categories this person left (models.email_categories), in the page's order.
    opted_out: list[str] = []


class CustomerProfile(BaseModel):
    """What sales handed over, as stored: the notes and the people, with their mail status."""

    handoff_notes: str
    contacts: list[ContactRow]


class UnknownCustomer(LookupError):
    pass


def customer_csm(database: Database, customer_id: str) -> str | None:
    """The customer's CSM as its workflow's first activity stored it (the handoff's,
    which never changes); None when no row is stored, yet or ever."""
    with database.session() as session:
        customer = session.get(Customer, customer_id)
        return customer.csm if customer is not None else None


def customer_profile(database: Database, *, customer_id: str) -> CustomerProfile | None:
    """None until the workflow's first activity has stored the customer."""
    with database.session() as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            return None
        contacts = session.exec(
            select(CustomerContact)
            .where(col(CustomerContact.customer_id) == customer_id)
            .order_by(col(CustomerContact.role), col(CustomerContact.name))
        ).all()
        left: dict[str, set[str]] = {}
        for email, category in session.exec(
            select(EmailOptOut.email, EmailOptOut.category)
            .where(col(EmailOptOut.customer_id) == customer_id)
            .where(col(EmailOptOut.opted_out).is_(True))
        ).all():
            left.setdefault(email, set()).add(category)
        return CustomerProfile(
            handoff_notes=customer.handoff_notes,
            contacts=[
                ContactRow(
                    name=c.name,
                    email=c.email,
                    role=c.role,
                    unsubscribed=c.unsubscribed,
                    suppressed_reason=c.suppressed_reason,
                    opted_out=[
                        category.value
                        for category in OPT_OUT_CATEGORIES
                        if category.value in left.get(c.email.lower(), set())
                    ],
                )
                for c in contacts
            ],
        )


def customer_timeline(
    database: Database, *, customer_id: str, kinds: list[str] | None = None
) -> list[TimelineRow]:
    """Every entry the workflow wrote for the customer, oldest first."""
    with database.session() as session:
        if session.get(Customer, customer_id) is None:
            raise UnknownCustomer(customer_id)
        query = select(TimelineEntry).where(col(TimelineEntry.customer_id) == customer_id)
        if kinds:
            query = query.where(col(TimelineEntry.kind).in_(kinds))
        rows = session.exec(query.order_by(col(TimelineEntry.seq))).all()
        return [TimelineRow.model_validate(row, from_attributes=True) for row in rows]


def product_users(
    database: Database, *, customer_id: str, limit: int = DEFAULT_USERS_LIMIT
) -> list[ProductUser]:
    """The customer's product users and their traits (email, role...), newest first."""
    with database.session() as session:
        if session.get(Customer, customer_id) is None:
            raise UnknownCustomer(customer_id)
        return customer_users(session, customer_id, limit=limit)


def list_tasks(
    database: Database,
    *,
    assignee: str | None = None,
    customer_id: str | None = None,
    include_done: bool = False,
    state: str | None = None,
    csm: str | None = None,
) -> list[TaskRow]:
    """Tasks for CSMs and leaders, the oldest open one first.

    `state` ("open" or "done") takes only tasks in that state, whatever `include_done`;
    `csm` takes only the tasks of that CSM's customers and those assigned to that CSM.
    """
    query = select(Task)
    if assignee is not None:
        query = query.where(col(Task.assignee) == assignee.strip().lower())
    if customer_id is not None:
        query = query.where(col(Task.customer_id) == customer_id)
    if csm is not None:
        csm = csm.strip().lower()
        # The CSM named in the handoff, as stored with the customer: a record, not workflow state.
        own = select(Customer.customer_id).where(col(Customer.csm) == csm)
        query = query.where(or_(col(Task.customer_id).in_(own), col(Task.assignee) == csm))
    if state is not None:
        query = query.where(col(Task.state) == state)
    elif not include_done:
        query = query.where(col(Task.state) == "open")
    with database.session() as session:
        rows = session.exec(query.order_by(col(Task.opened_at), col(Task.task_id))).all()
        return [TaskRow.model_validate(row, from_attributes=True) for row in rows]


def customer_emails(database: Database, *, customer_id: str) -> list[EmailRow]:
    """Every email the send ledger holds for the customer, oldest first, each with the
    provider's events for it. A customer with none (or not stored yet) gets []."""
    with database.session() as session:
        entries = session.exec(
            select(EmailLedgerEntry)
            .where(col(EmailLedgerEntry.customer_id) == customer_id)
            .order_by(
                col(EmailLedgerEntry.created_at),
                col(EmailLedgerEntry.ledger_key),
                col(EmailLedgerEntry.recipient),
            )
        ).all()
        events = session.exec(
            select(EmailEvent)
            .where(col(EmailEvent.customer_id) == customer_id)
            .where(col(EmailEvent.ledger_key).is_not(None))
            .order_by(col(EmailEvent.occurred_at), col(EmailEvent.id))
        ).all()
        # Events name the message by its ledger key and recipient, as the ledger does.
        by_message: defaultdict[tuple[str | None, str], list[EmailEventRow]] = defaultdict(list)
        for event in events:
            by_message[event.ledger_key, event.recipient].append(
                EmailEventRow(
                    event=event.event,
                    at=event.occurred_at,
                    machine_open=event.machine_open,
                    url=event.url,
                    reason=event.reason,
                )
            )
        return [
            EmailRow.model_validate(
                {
                    **entry.model_dump(),
                    "events": by_message.get((entry.ledger_key, entry.recipient), []),
                }
            )
            for entry in entries
        ]
