"""What the cohort analytics read (analytics/ computes on it): customers from the
projection, weekly verdicts and stall episodes from the timeline, step emails from the
send ledger and the provider's events.

Each read is one or two SQL statements narrowed by the same `Filters` as the lists (a
CSM: their own customers), joined to the projection in SQL; no per-customer queries.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Text, and_, case, cast, func, or_
from sqlmodel import col, select

import analytics.email_steps as analytics_steps
from analytics import survival
from analytics.email_steps import (
    CAMPAIGN_PREFIX,
    STALL_PREFIX,
    MessageCounts,
    StallEpisode,
    StepEmails,
    StepRecovery,
    StepSend,
)
from analytics.stalls import CsmEscalations, StallAnalysis, Troubled, Week, missing_criteria
from analytics.survival import GroupBy, Journey, SurvivalFigure
from models.onboarding import Stage
from models.tables import CustomerContact, EmailEvent, EmailLedgerEntry, TimelineEntry
from models.tables import CustomerProjection as P
from records.customer_lists import ENDED, Filters
from records.database import Database
from records.email_events import EventType
from records.projections import TIMED_COLUMNS

# The latest verdicts read per troubled customer: half a year of weekly measurements
# says since when a criterion is missing, and keeps the read bounded.
VERDICT_WEEKS = 26
# Customer ids per IN (...) list: well inside SQLite's and PostgreSQL's bound parameters.
IN_LIST_CHUNK = 1000
WEEKLY_MEASUREMENT = "weekly_measurement"
STALL_STARTED = "stall_started"
STALL_CLEARED = "stall_cleared"
OPTED_OUT = (EventType.UNSUBSCRIBE, EventType.GROUP_UNSUBSCRIBE, EventType.SPAMREPORT)


_TIMED_STAGES = tuple(stage.value for stage in TIMED_COLUMNS)


def _epoch(column: Any, dialect: str) -> Any:
    """Unix seconds of a stored instant, computed by the database: 10,000 rows read as
    numbers cost a fraction of what they cost as datetimes."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", column), Float)
    # SQLite keeps UTC text; julianday counts days, the Unix epoch is day 2440587.5.
    return (func.julianday(column) - 2440587.5) * 86400.0


def _journey_columns(dialect: str) -> tuple[Any, ...]:
    return (
        col(P.customer_id),
        col(P.stage),
        _epoch(col(P.stage_since), dialect),
        _epoch(col(P.started_at), dialect),
        _epoch(col(P.ended_at), dialect),
        col(P.outcome),
        col(P.furthest),
        *(getattr(P, column) for column in TIMED_COLUMNS.values()),
        # As text, decoded once per distinct list: most customers share a few.
        cast(col(P.purposes), Text),
        col(P.playbook_name),
        col(P.playbook_version),
        col(P.seats_band),
        col(P.trial_used),
        col(P.locale),
        col(P.country),
    )


def _columns(*columns: Any) -> tuple[Any, ...]:
    # sqlmodel's select() is typed for up to four columns; more go through a tuple.
    return columns


def journeys(database: Database, filters: Filters) -> list[Journey]:
    """Every customer the filters let through, as the survival figures read them."""
    with database.session() as session:
        columns = _journey_columns(session.get_bind().dialect.name)
        rows = session.exec(select(*columns).where(*filters.clauses())).all()
    found = []
    timed = len(_TIMED_STAGES)
    decoded: dict[str, list[str]] = {}
    for row in rows:
        (customer_id, stage, since, started, ended, outcome, furthest, *rest) = row
        stays = dict(zip(_TIMED_STAGES, rest[:timed], strict=True))
        purposes, name, version, band, trial, locale, country = rest[timed:]
        found.append(
            Journey(
                customer_id=customer_id,
                stage=stage,
                stage_since=since,
                started_at=started,
                ended_at=ended,
                outcome=outcome,
                furthest=furthest,
                stays=stays,
                purposes=_purposes(purposes, decoded),
                playbook_name=name,
                playbook_version=version,
                seats_band=band,
                trial_used=trial,
                locale=locale,
                country=country,
            )
        )
    return found


def _purposes(text: str | None, decoded: dict[str, list[str]]) -> list[str]:
    if not text:
        return []
    if text not in decoded:
        value = json.loads(text)
        decoded[text] = [p for p in value if isinstance(p, str)] if isinstance(value, list) else []
    return decoded[text]


def _troubled() -> Any:
    """Failed customers, and those stalled now."""
    return or_(
        col(P.outcome) == Stage.FAILED.value,
        and_(col(P.stalled).is_(True), col(P.stage).not_in(ENDED)),
    )


def troubled_verdicts(database: Database, filters: Filters) -> list[Troubled]:
    """Failed and stalled customers, each with its latest VERDICT_WEEKS weekly verdicts,
    oldest first. Only the verdict's criteria and window leave the database."""
    where = [*filters.clauses(), _troubled()]
    details = col(TimelineEntry.details)
    newest_first = (
        func.row_number()
        .over(partition_by=col(TimelineEntry.customer_id), order_by=col(TimelineEntry.seq).desc())
        .label("newest")
    )
    recent = (
        select(
            *_columns(
                col(TimelineEntry.customer_id).label("customer_id"),
                col(TimelineEntry.seq).label("seq"),
                details["criteria"].label("criteria"),
                details["measurement"]["window_start"].as_string().label("window_start"),
                details["measurement"]["window_end"].as_string().label("window_end"),
                newest_first,
            )
        )
        .join(P, col(P.customer_id) == col(TimelineEntry.customer_id))
        .where(col(TimelineEntry.kind) == WEEKLY_MEASUREMENT, *where)
        .subquery()
    )
    with database.session() as session:
        customers = session.exec(select(P.customer_id, P.outcome).where(*where)).all()
        verdicts = session.exec(
            select(
                recent.c.customer_id,
                recent.c.criteria,
                recent.c.window_start,
                recent.c.window_end,
            )
            .where(recent.c.newest <= VERDICT_WEEKS)
            .order_by(recent.c.customer_id, recent.c.seq)
        ).all()
    weeks: defaultdict[str, list[Week]] = defaultdict(list)
    for customer_id, criteria, start, end in verdicts:
        weeks[customer_id].append(
            Week(
                window_start=_instant(start),
                window_end=_instant(end),
                criteria=[c for c in criteria or [] if isinstance(c, dict)],
            )
        )
    return [
        Troubled(customer_id=customer_id, outcome=outcome, weeks=weeks.get(customer_id, []))
        for customer_id, outcome in customers
    ]


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def escalations_by_csm(database: Database, filters: Filters) -> list[CsmEscalations]:
    """Per CSM: customers, active ones, stalled now, failed, open escalations."""
    active = col(P.stage).not_in(ENDED)
    with database.session() as session:
        rows = session.exec(
            select(
                *_columns(
                    P.csm,
                    func.count(),
                    _count(active),
                    _count(and_(col(P.stalled).is_(True), active)),
                    _count(col(P.outcome) == Stage.FAILED.value),
                    func.coalesce(func.sum(col(P.escalations)), 0),
                )
            )
            .where(*filters.clauses())
            .group_by(col(P.csm))
            .order_by(func.coalesce(func.sum(col(P.escalations)), 0).desc(), col(P.csm))
        ).all()
    return [
        CsmEscalations(
            csm=csm,
            customers=int(customers),
            active=int(active_n),
            stalled=int(stalled),
            failed=int(failed),
            escalations=int(escalations),
        )
        for csm, customers, active_n, stalled, failed, escalations in rows
    ]


def _is_step() -> Any:
    key = col(EmailLedgerEntry.ledger_key)
    return or_(key.startswith(CAMPAIGN_PREFIX), key.startswith(STALL_PREFIX))


def step_message_counts(database: Database, filters: Filters) -> list[MessageCounts]:
    """Step emails counted per ledger key, recipient role and customer locale: sent by
    the ledger, the rest from the provider's events (one message counts once each)."""
    event = col(EmailEvent.event)

    def seen(condition: Any) -> Any:
        return func.max(case((condition, 1), else_=0))

    fates = (
        select(
            *_columns(
                col(EmailEvent.customer_id).label("customer_id"),
                col(EmailEvent.ledger_key).label("ledger_key"),
                col(EmailEvent.recipient).label("recipient"),
                seen(event == EventType.DELIVERED.value).label("delivered"),
                seen(
                    and_(event == EventType.OPEN.value, col(EmailEvent.machine_open).is_(False))
                ).label("opened"),
                seen(event == EventType.CLICK.value).label("clicked"),
                seen(event.in_([e.value for e in OPTED_OUT])).label("opted_out"),
            )
        )
        .where(col(EmailEvent.ledger_key).is_not(None))
        .group_by(
            col(EmailEvent.customer_id), col(EmailEvent.ledger_key), col(EmailEvent.recipient)
        )
        .subquery()
    )
    ledger = EmailLedgerEntry
    role = func.coalesce(col(CustomerContact.role), "unknown")
    with database.session() as session:
        rows = session.exec(
            select(
                *_columns(
                    col(ledger.ledger_key),
                    role,
                    col(P.locale),
                    _count(col(ledger.status) == "sent"),
                    func.coalesce(func.sum(fates.c.delivered), 0),
                    func.coalesce(func.sum(fates.c.opened), 0),
                    func.coalesce(func.sum(fates.c.clicked), 0),
                    func.coalesce(func.sum(fates.c.opted_out), 0),
                )
            )
            .join(P, col(P.customer_id) == col(ledger.customer_id))
            .outerjoin(
                CustomerContact,
                and_(
                    col(CustomerContact.customer_id) == col(ledger.customer_id),
                    col(CustomerContact.email) == col(ledger.recipient),
                ),
            )
            .outerjoin(
                fates,
                and_(
                    fates.c.customer_id == col(ledger.customer_id),
                    fates.c.ledger_key == col(ledger.ledger_key),
                    fates.c.recipient == col(ledger.recipient),
                ),
            )
            .where(*filters.clauses(), _is_step())
            .group_by(col(ledger.ledger_key), role, col(P.locale))
        ).all()
    return [
        MessageCounts(
            ledger_key=key,
            role=role_name,
            locale=locale,
            sent=int(sent),
            delivered=int(delivered),
            opened=int(opened),
            clicked=int(clicked),
            opted_out=int(opted_out),
        )
        for key, role_name, locale, sent, delivered, opened, clicked, opted_out in rows
    ]


def stall_episodes(database: Database, filters: Filters) -> list[StallEpisode]:
    """Every stall episode of the customers let through, with when it was cleared."""
    with database.session() as session:
        rows = session.exec(
            select(
                TimelineEntry.customer_id,
                TimelineEntry.kind,
                TimelineEntry.at,
                TimelineEntry.details,
            )
            .join(P, col(P.customer_id) == col(TimelineEntry.customer_id))
            .where(col(TimelineEntry.kind).in_([STALL_STARTED, STALL_CLEARED]), *filters.clauses())
            .order_by(col(TimelineEntry.customer_id), col(TimelineEntry.seq))
        ).all()
    started: dict[tuple[str, int], datetime] = {}
    cleared: dict[tuple[str, int], datetime] = {}
    for customer_id, kind, at, details in rows:
        episode = details.get("episode") if isinstance(details, dict) else None
        if not isinstance(episode, int):
            continue
        (started if kind == STALL_STARTED else cleared).setdefault((customer_id, episode), at)
    return [
        StallEpisode(
            customer_id=customer_id,
            episode=episode,
            started_at=at,
            cleared_at=cleared.get((customer_id, episode)),
        )
        for (customer_id, episode), at in started.items()
    ]


def step_sends(database: Database, customer_ids: Collection[str]) -> list[StepSend]:
    """The step emails sent to these customers (those that ever stalled: the only ones
    a stall can explain), one row per message."""
    ledger = EmailLedgerEntry
    ids = sorted(customer_ids)
    found: list[StepSend] = []
    with database.session() as session:
        for start in range(0, len(ids), IN_LIST_CHUNK):
            rows = session.exec(
                select(ledger.customer_id, ledger.ledger_key, ledger.sent_at).where(
                    col(ledger.customer_id).in_(ids[start : start + IN_LIST_CHUNK]),
                    _is_step(),
                    col(ledger.status) == "sent",
                )
            ).all()
            found += [
                StepSend(customer_id=customer_id, ledger_key=key, sent_at=sent_at)
                for customer_id, key, sent_at in rows
                if sent_at is not None
            ]
    return found


# Each figure as the REST API and the dashboard show it.


def time_to_onboard(
    database: Database, filters: Filters, by: GroupBy, now: datetime
) -> SurvivalFigure:
    return survival.time_to_onboard_figure(journeys(database, filters), by, now)


def time_in_stage(
    database: Database, filters: Filters, stage: Stage, by: GroupBy, now: datetime
) -> SurvivalFigure:
    return survival.time_in_stage_figure(journeys(database, filters), stage, by, now)


def stalls(database: Database, filters: Filters) -> StallAnalysis:
    return missing_criteria(troubled_verdicts(database, filters))


def email_steps(database: Database, filters: Filters) -> list[StepEmails]:
    return analytics_steps.step_emails(step_message_counts(database, filters))


def stall_recovery(database: Database, filters: Filters) -> list[StepRecovery]:
    episodes = stall_episodes(database, filters)
    sends = step_sends(database, {episode.customer_id for episode in episodes})
    return analytics_steps.recovery_by_step(episodes, sends)
