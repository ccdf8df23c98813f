"""What a CSM command costs: a form post or a REST command asks Temporal once (the
update), reads the customer's CSM from its stored row, and never polls the timeline;
the page after it shows the entries the workflow has not stored yet."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import HTTPException

from api.dashboard.pages import _timeline
from api.routes.customers import authorize
from api.services import Services
from client.errors import UnknownCustomerError
from models.onboarding import OnboardingState, OnboardingStatus, Stage, TimelineRecord
from models.tables import TimelineEntry
from records import reports
from records.database import Database
from records.tokens import Principal, TokenRole
from testkit.factories import make_handoff, make_playbook, store_customer
from tests.support.api_harness import ApiHarness

AT = datetime(2026, 12, 4, 9, tzinfo=UTC)


def _status(customer_id: str, csm: str, *unwritten: TimelineRecord) -> OnboardingStatus:
    return OnboardingStatus(
        customer_id=customer_id,
        customer_name="Acme",
        csm=csm,
        cs_leader="lead@liftoff.example",
        playbook_name="default",
        playbook_version="1",
        state=OnboardingState(stage=Stage.TRAINING),
        next_due=None,
        unwritten_timeline=list(unwritten),
    )


def _entry(seq: int, summary: str) -> TimelineRecord:
    return TimelineRecord(
        seq=seq, at=AT, kind="transition", stage=Stage.TRAINING, summary=summary, details={}
    )


def test_the_page_shows_entries_not_stored_yet_merged_by_seq(sqlite_database: Database) -> None:
    handoff = make_handoff()
    queued = [_entry(1, "queued 1"), _entry(2, "queued 2"), _entry(3, "queued 3")]
    # Before the customer's row exists, the workflow's queued entries are the timeline.
    status = _status(handoff.customer_id, handoff.csm, *queued)
    assert [row.summary for row in _timeline(sqlite_database, status)] == [
        "queued 1",
        "queued 2",
        "queued 3",
    ]
    store_customer(sqlite_database, handoff)
    with sqlite_database.session() as session:
        session.add(
            TimelineEntry(
                customer_id=handoff.customer_id,
                seq=1,
                at=AT,
                kind="transition",
                stage="training",
                summary="stored 1",
                details={},
            )
        )
        session.commit()
    # A stored entry wins over its queued copy, and nothing shows twice.
    rows = _timeline(sqlite_database, status)
    assert [(row.seq, row.summary) for row in rows] == [
        (1, "stored 1"),
        (2, "queued 2"),
        (3, "queued 3"),
    ]


class _Onboarding:
    """The client layer's status query, counted; it answers for customers it knows."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.status_calls = 0

    async def status(self, customer_id: str) -> OnboardingStatus:
        self.status_calls += 1
        if customer_id not in self.known:
            raise UnknownCustomerError(customer_id)
        return _status(customer_id, self.known[customer_id])


def _csm_principal(csm: str) -> Principal:
    return Principal(token_id=1, name=csm, role=TokenRole.CSM, csm=csm)


async def test_a_csm_is_authorized_from_the_stored_row_and_asks_temporal_only_without_one(
    sqlite_database: Database,
) -> None:
    stored, not_yet = make_handoff(), make_handoff()
    store_customer(sqlite_database, stored)
    onboarding = _Onboarding({stored.customer_id: stored.csm, not_yet.customer_id: not_yet.csm})
    services = Services(onboarding, sqlite_database, make_playbook())  # type: ignore[arg-type]

    await authorize(_csm_principal(stored.csm), services, stored.customer_id)
    with pytest.raises(HTTPException) as other:
        await authorize(_csm_principal("other@liftoff.example"), services, stored.customer_id)
    assert other.value.status_code == 404
    assert onboarding.status_calls == 0

    # Started, its row not stored yet: the workflow tells whose it is.
    await authorize(_csm_principal(not_yet.csm), services, not_yet.customer_id)
    with pytest.raises(HTTPException):
        await authorize(_csm_principal("other@liftoff.example"), services, not_yet.customer_id)
    # Never started: the status query's 404.
    with pytest.raises(UnknownCustomerError):
        await authorize(_csm_principal(stored.csm), services, "never-started")
    assert onboarding.status_calls == 3


@pytest.fixture
def counted(api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Calls to Temporal (status, update) and timeline reads while the test runs."""
    counts = {"status": 0, "record": 0, "timeline": 0}

    def count(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def counting(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return call(*args, **kwargs)

        return counting

    onboarding = api.services.onboarding
    monkeypatch.setattr(onboarding, "status", count("status", onboarding.status))
    monkeypatch.setattr(onboarding, "record", count("record", onboarding.record))
    monkeypatch.setattr(reports, "customer_timeline", count("timeline", reports.customer_timeline))
    yield counts


async def test_a_form_post_is_one_update_and_the_page_after_it_one_status_query(
    api: ApiHarness, counted: dict[str, int]
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    handoff = make_handoff(csm=csm)
    await api.services.onboarding.start(handoff, make_playbook())
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # until the worker has stored the customer's row
        status = await api.services.onboarding.status(handoff.customer_id)
        if status.state.stage is Stage.KICKOFF and status.pending_side_effects == 0:
            break
        assert asyncio.get_running_loop().time() < deadline, "the customer never started"
        await asyncio.sleep(0.1)
    counted.update(status=0, record=0, timeline=0)
    today = datetime.now(UTC).date()
    form = {"kind": "kickoff_held", "held_on": (today - timedelta(days=1)).isoformat()}
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        posted = await browser.post(f"/customers/{handoff.customer_id}", data=form)
        assert posted.status_code == 303
        assert counted == {"status": 0, "record": 1, "timeline": 0}

        page = await browser.get(posted.headers["location"])
    assert counted == {"status": 1, "record": 1, "timeline": 1}
    # Shown once, whether its entry is stored yet or still queued in the workflow.
    assert page.text.count('data-kind="kickoff_held"') == 1
