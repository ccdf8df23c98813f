"""Opt-outs per contact and email category: one store, three doors.

The one-click unsubscribe and the preference page (`/u/<token>`, api/routes/opt_outs.py)
and SendGrid's group_unsubscribe / group_resubscribe events (records/email_events.py)
all write through `set_choice`; the send activity reads `opted_out` at send time
(activities/mail.py), and the customer's page reads `opt_outs_of`.

Each (customer, address, category) is one row, kept on resubscribe with `opted_out`
false. A change applies only if it is not older than the row's: SendGrid delivers
events late and out of order, so a late unsubscribe must not undo a newer resubscribe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.email_categories import EmailCategory
from models.tables import Customer, EmailOptOut
from records.database import Database


class Source(StrEnum):
    # A mail client's one-click unsubscribe (RFC 8058 POST).
    ONE_CLICK = "one_click"
    # The contact's choices on the preference page.
    PREFERENCE_PAGE = "preference_page"
    # SendGrid's group_unsubscribe / group_resubscribe events.
    SENDGRID = "sendgrid"


@dataclass(frozen=True)
class Subject:
    """The customer a link names, as the preference page needs it."""

    name: str
    locale: str


def normalize(email: str) -> str:
    return email.strip().lower()


def _refuse_operational(category: EmailCategory) -> None:
    if not category.can_opt_out:
        raise ValueError(f"{category.value} email cannot be opted out of")


def set_choice(
    session: Session,
    *,
    customer_id: str,
    email: str,
    category: EmailCategory,
    opted_out: bool,
    at: datetime,
    source: Source,
) -> bool:
    """Record that the contact left (or rejoined) the category at `at`; True when the
    row now says so because of this call (False: a newer change already stood)."""
    _refuse_operational(category)
    table = EmailOptOut.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    insert = insert.values(
        customer_id=customer_id,
        email=normalize(email),
        category=category.value,
        opted_out=opted_out,
        changed_at=at,
        source=source.value,
    )
    statement = insert.on_conflict_do_update(
        index_elements=["customer_id", "email", "category"],
        set_={
            "opted_out": insert.excluded.opted_out,
            "changed_at": insert.excluded.changed_at,
            "source": insert.excluded.source,
        },
        # Not older than what stands: the same instant lets the newest call win.
        where=table.c.changed_at <= insert.excluded.changed_at,
    ).returning(table.c.customer_id)
    return bool(session.exec(statement).all())


def set_choices(
    database: Database,
    *,
    customer_id: str,
    email: str,
    opted_out: dict[EmailCategory, bool],
    at: datetime,
    source: Source,
) -> None:
    """Several categories of one contact at once (the preference page), one transaction."""
    with database.session() as session:
        for category, out in opted_out.items():
            set_choice(
                session,
                customer_id=customer_id,
                email=email,
                category=category,
                opted_out=out,
                at=at,
                source=source,
            )


def opted_out(session: Session, customer_id: str, email: str, category: EmailCategory) -> bool:
    """Whether the contact left this category; operational email is never left."""
    if not category.can_opt_out:
        return False
    found = session.exec(
        select(EmailOptOut.opted_out)
        .where(col(EmailOptOut.customer_id) == customer_id)
        .where(col(EmailOptOut.email) == normalize(email))
        .where(col(EmailOptOut.category) == category.value)
    ).first()
    return bool(found)


# Asked at every send: built once, its values bound at each run.
_OPTED_OUT_AMONG = (
    select(EmailOptOut.email)
    .where(col(EmailOptOut.customer_id) == bindparam("customer_id"))
    .where(col(EmailOptOut.category) == bindparam("category"))
    .where(col(EmailOptOut.email).in_(bindparam("emails", expanding=True)))
    .where(col(EmailOptOut.opted_out).is_(True))
)


def opted_out_among(
    session: Session, customer_id: str, emails: Sequence[str], category: EmailCategory
) -> set[str]:
    """Which of these addresses left the category (one query for a send's recipients)."""
    if not category.can_opt_out or not emails:
        return set()
    found = session.connection().execute(
        _OPTED_OUT_AMONG,
        {
            "customer_id": customer_id,
            "category": category.value,
            "emails": [normalize(email) for email in emails],
        },
    )
    return set(found.scalars())


def choices_of(database: Database, customer_id: str, email: str) -> dict[EmailCategory, bool]:
    """Each category the contact can leave -> opted out; what was never chosen is False."""
    with database.session() as session:
        rows = session.exec(
            select(EmailOptOut.category, EmailOptOut.opted_out)
            .where(col(EmailOptOut.customer_id) == customer_id)
            .where(col(EmailOptOut.email) == normalize(email))
        ).all()
    stored = dict(rows)
    return {
        category: bool(stored.get(category.value, False))
        for category in EmailCategory
        if category.can_opt_out
    }


def opt_outs_of(database: Database, customer_id: str) -> Sequence[EmailOptOut]:
    """Every choice a customer's contacts made (standing opt-outs and resubscribes), by
    address then category: what the customer's page shows."""
    with database.session() as session:
        return session.exec(
            select(EmailOptOut)
            .where(col(EmailOptOut.customer_id) == customer_id)
            .order_by(col(EmailOptOut.email), col(EmailOptOut.category))
        ).all()


def subject(database: Database, customer_id: str) -> Subject | None:
    with database.session() as session:
        customer = session.get(Customer, customer_id)
    return Subject(customer.name, customer.locale) if customer is not None else None
