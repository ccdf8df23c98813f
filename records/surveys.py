"""NPS survey answers: stored once per (customer, touchpoint, person), read per customer
and for the cohort.

Two doors write through `store_answer`: a survey email's score link (`/s/<token>`,
api/routes/surveys.py) and the completion review the CSM records (its `nps` answers,
stored with the review's timeline entry by the store activity). The first answer
stands: a second click, a later review, or a retried activity changes nothing, so a
link is usable once and a person counts once per touchpoint. A comment may be added
once to an answer that has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from models import limits
from models.playbook import Touchpoint
from models.tables import (
    Customer,
    CustomerContact,
    CustomerProjection,
    SurveyAnswer,
    TimelineEntry,
)
from records.customer_lists import Filters
from records.database import Database, insert_ignore

KEY = ("customer_id", "touchpoint", "email")
REVIEW_KIND = "completion_review_held"
# A customer's page shows at most this many answers, newest first.
ANSWERS_SHOWN = 200


class Source(StrEnum):
    LINK = "link"
    COMPLETION_REVIEW = "completion_review"


class NpsBy(StrEnum):
    ROLE = "role"
    TOUCHPOINT = "touchpoint"
    SEATS_BAND = "seats_band"


@dataclass(frozen=True)
class AnswerIn:
    customer_id: str
    touchpoint: Touchpoint
    email: str
    role: str
    score: int
    answered_at: datetime
    source: Source
    comment: str = ""


def store_answer(session: Session, answer: AnswerIn) -> bool:
    """Store the answer unless this person already answered at this touchpoint; True
    when it was stored."""
    if not 0 <= answer.score <= 10:
        raise ValueError(f"an NPS score is 0 to 10, not {answer.score}")
    return bool(
        insert_ignore(
            session,
            SurveyAnswer,
            {
                "customer_id": answer.customer_id,
                "touchpoint": answer.touchpoint.value,
                "email": answer.email.strip().lower(),
                "role": answer.role,
                "score": answer.score,
                "comment": answer.comment[: limits.NOTE_CHARS],
                "answered_at": answer.answered_at,
                "commented_at": answer.answered_at if answer.comment else None,
                "source": answer.source.value,
            },
            KEY,
        )
    )


def record_answer(database: Database, answer: AnswerIn) -> tuple[SurveyAnswer, bool]:
    """The stored answer for this person and touchpoint, and whether this call stored it."""
    with database.session() as session:
        stored = store_answer(session, answer)
        row = _find(session, answer.customer_id, answer.touchpoint.value, answer.email)
    if row is None:  # inserted just above, or there already
        raise RuntimeError("the survey answer vanished")
    return row, stored


def store_review_answers(
    session: Session, customer_id: str, details: Mapping[str, Any], at: datetime
) -> int:
    """The NPS answers of a completion review's timeline entry, each with the contact's
    role (none for an address that is no contact); the number stored."""
    answers = [a for a in details.get("nps") or [] if isinstance(a, Mapping)]
    if not answers:
        return 0
    roles = dict(
        session.exec(
            select(CustomerContact.email, CustomerContact.role).where(
                col(CustomerContact.customer_id) == customer_id
            )
        ).all()
    )
    stored = 0
    for answer in answers:
        email = str(answer.get("email", "")).strip().lower()
        score = answer.get("score")
        if not email or not isinstance(score, int) or not 0 <= score <= 10:
            continue
        stored += store_answer(
            session,
            AnswerIn(
                customer_id=customer_id,
                touchpoint=Touchpoint.AT_COMPLETION_REVIEW,
                email=email,
                role=roles.get(email, ""),
                score=score,
                answered_at=at,
                source=Source.COMPLETION_REVIEW,
            ),
        )
    return stored


def backfill_review_answers(
    database: Database, *, customer_ids: Sequence[str] | None = None
) -> int:
    """Store the NPS answers of completion reviews recorded before `survey_answers`
    existed (migration 0011), from their timeline entries; the number newly stored.
    Safe to repeat, and while workers run: an answer already there stands."""
    query = select(TimelineEntry).where(col(TimelineEntry.kind) == REVIEW_KIND)
    if customer_ids is not None:
        query = query.where(col(TimelineEntry.customer_id).in_(list(customer_ids)))
    stored = 0
    with database.session() as session:
        for entry in session.exec(query.order_by(col(TimelineEntry.customer_id), "seq")):
            stored += store_review_answers(session, entry.customer_id, entry.details, entry.at)
    return stored


def add_comment(
    database: Database, customer_id: str, touchpoint: str, email: str, comment: str, at: datetime
) -> bool:
    """Set the comment of an answer that has none; True when it was set."""
    comment = comment.strip()
    if not comment or len(comment) > limits.NOTE_CHARS:
        raise ValueError(f"a comment is 1 to {limits.NOTE_CHARS} characters")
    with database.session() as session:
        result = session.exec(
            update(SurveyAnswer)
            .where(col(SurveyAnswer.customer_id) == customer_id)
            .where(col(SurveyAnswer.touchpoint) == touchpoint)
            .where(col(SurveyAnswer.email) == email.strip().lower())
            .where(col(SurveyAnswer.comment) == "")
            .values(comment=comment, commented_at=at)
        )
        return bool(result.rowcount)


def find_answer(
    database: Database, customer_id: str, touchpoint: str, email: str
) -> SurveyAnswer | None:
    with database.session() as session:
        return _find(session, customer_id, touchpoint, email)


def _find(session: Session, customer_id: str, touchpoint: str, email: str) -> SurveyAnswer | None:
    return session.exec(
        select(SurveyAnswer)
        .where(col(SurveyAnswer.customer_id) == customer_id)
        .where(col(SurveyAnswer.touchpoint) == touchpoint)
        .where(col(SurveyAnswer.email) == email.strip().lower())
    ).first()


def answers_of(database: Database, customer_id: str) -> list[SurveyAnswer]:
    """A customer's answers, newest first."""
    with database.session() as session:
        rows = session.exec(
            select(SurveyAnswer)
            .where(col(SurveyAnswer.customer_id) == customer_id)
            .order_by(col(SurveyAnswer.answered_at).desc(), col(SurveyAnswer.id).desc())
            .limit(ANSWERS_SHOWN)
        ).all()
    return list(rows)


@dataclass(frozen=True)
class Respondent:
    """The customer as the answer page addresses it."""

    name: str
    locale: str


def respondent(database: Database, customer_id: str) -> Respondent | None:
    with database.session() as session:
        customer = session.get(Customer, customer_id)
    return Respondent(customer.name, customer.locale) if customer is not None else None


_GROUP_COLUMN = {
    NpsBy.ROLE: col(SurveyAnswer.role),
    NpsBy.TOUCHPOINT: col(SurveyAnswer.touchpoint),
    NpsBy.SEATS_BAND: col(CustomerProjection.seats_band),
}


def nps_facts(database: Database, filters: Filters, by: NpsBy) -> Sequence[tuple[str, int]]:
    """(group, score) of every answer of the customers `filters` shows: the cohort's
    narrowing (a CSM's own customers) applies to NPS as to everything else."""
    with database.session() as session:
        rows = session.exec(
            select(_GROUP_COLUMN[by], col(SurveyAnswer.score))
            .join(
                CustomerProjection,
                col(CustomerProjection.customer_id) == col(SurveyAnswer.customer_id),
            )
            .where(*filters.clauses())
        ).all()
    # An answer from an address that is no contact has no role: "unknown".
    return [(str(group) or "unknown", int(score)) for group, score in rows]
