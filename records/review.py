"""The playbook review's trigger: the leader's task when a version reaches its threshold.

Called by the timeline write that ends an onboarding, in its transaction, after the
entry has been folded into the customer projection: the finished customers of the
version are counted there, and at the threshold the CS leader's task is inserted under
a natural key (`review:<version>`), so a retried write or a second worker never opens
it twice. On PostgreSQL a transaction-scoped advisory lock per version makes two
concurrent endings count one after the other (else each could see N-1 and neither
fire); SQLite already serialises writers.
"""

from __future__ import annotations

import zlib
from datetime import datetime

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from models.tables import CustomerProjection, Task
from records.database import insert_ignore

REVIEW_TASK_KIND = "playbook_review"
FINISHED = ("onboarded", "failed", "cancelled")
# High bits "Rv" so the lock does not collide with the migration lock's key.
_LOCK_BASE = 0x5276 << 32


def review_task_id(version: str) -> str:
    return f"review:{version}"


def review_link(version: str) -> str:
    return f"/cohort/review?version={version}"


def finished_count(session: Session, version: str) -> int:
    query = (
        select(func.count())
        .select_from(CustomerProjection)
        .where(col(CustomerProjection.playbook_version) == version)
        .where(col(CustomerProjection.outcome).in_(FINISHED))
    )
    return int(session.exec(query).one())


def open_review_if_due(
    session: Session, *, customer_id: str, version: str, threshold: int, at: datetime
) -> bool:
    """Open the leader's review task once `threshold` customers of `version` finished;
    True when this call inserted it."""
    if not version:
        return False
    if session.get_bind().dialect.name == "postgresql":
        key = _LOCK_BASE + zlib.crc32(version.encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    finished = finished_count(session, version)
    if finished < threshold:
        return False
    leader = session.exec(
        select(CustomerProjection.cs_leader).where(
            col(CustomerProjection.customer_id) == customer_id
        )
    ).first()
    if not leader:
        return False
    inserted = insert_ignore(
        session,
        Task,
        {
            "task_id": review_task_id(version),
            "customer_id": customer_id,
            "kind": REVIEW_TASK_KIND,
            "assignee": leader,
            "title": f"Review playbook {version}: {finished} customers finished"[:500],
            "detail": (
                f"{finished} customers of playbook version {version} have finished "
                f"(threshold {threshold}). Review report: {review_link(version)} "
                f"(Markdown and CSV: /api/playbook-versions/{version}/review?format=md|csv)."
            ),
            "state": "open",
            "opened_at": at,
        },
        ["task_id"],
    )
    return inserted > 0
