"""NPS by role and touchpoint: survey emails go out once per role at each touchpoint the
playbook names (and not at all without a [surveys] section), their score links are
signed, expire and count once, the completion review's answers join the same store,
and the cohort reads NPS by role, touchpoint and seats band, scoped like the cohort."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from analytics.nps import MIN_ANSWERS, nps_by, nps_group
from api.app import create_app
from api.services import Services
from emails.catalogue import check_templates, email_catalogue
from emails.render import build_template_environment
from emails.survey_links import LinkExpired, LinkRefused, SurveyLinks
from models import limits
from models.activity_io import RecordTimelineInput
from models.events import KickoffHeld, Paused, Resumed, TrainingHeld
from models.handoff import Role
from models.onboarding import Stage
from models.playbook import PlaybookError, Touchpoint
from models.tables import SurveyAnswer
from records.database import Database
from records.playbooks import load_playbook
from records.surveys import AnswerIn, Source, answers_of, record_answer
from records.tokens import TokenRole, create_token
from testkit.factories import (
    PUBLIC_URL,
    REPO,
    SURVEY_SECRET,
    make_handoff,
    make_playbook,
    store_customer,
)
from testkit.projections import insert_projection_rows, projection_row
from tests.support.api_harness import ApiHarness
from tests.support.workflow_harness import Harness, body_text

BASE_URL = "http://liftoff.test"
CSM = "csm@liftoff.example"
OTHER_CSM = "other-csm@liftoff.example"
LINK = re.compile(r"^(\d+): (http://testserver/s/\S+)$", re.MULTILINE)


def links(clock: float | None = None) -> SurveyLinks:
    return SurveyLinks(
        SURVEY_SECRET, PUBLIC_URL, clock=(lambda: clock) if clock is not None else time.time
    )


def a_token(signer: SurveyLinks, *, score: int = 9, valid_seconds: int = 3600, **who: str) -> str:
    return signer.token(
        customer_id=who.get("customer_id", "acme"),
        touchpoint=who.get("touchpoint", Touchpoint.AFTER_KICKOFF.value),
        role=who.get("role", Role.ADMINISTRATOR.value),
        email=who.get("email", "admin@acme.example"),
        score=score,
        valid_seconds=valid_seconds,
    )


# Links: signed, expiring


def test_a_score_link_names_its_person_and_score_and_a_changed_one_is_refused() -> None:
    token = a_token(links(), score=7)
    claim = links().read(token)
    assert (claim.customer_id, claim.touchpoint, claim.role, claim.email, claim.score) == (
        "acme",
        "after_kickoff",
        "administrator",
        "admin@acme.example",
        7,
    )

    payload, stamp, signature = token.rsplit(".", 2)
    # The first character: the last one of unpadded base64 carries bits the decoder
    # drops, so changing it may leave the signature's bytes as they were.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for tampered in (
        f"{payload}.{stamp}.{flipped}",
        # Another payload under the same signature: a score of 10 from a link of 7.
        f"{a_token(links(), score=10).rsplit('.', 2)[0]}.{stamp}.{signature}",
        a_token(SurveyLinks("another-secret-" + "x" * 32, PUBLIC_URL)),
        "not-a-token",
        "x" * 5000,
    ):
        with pytest.raises(LinkRefused):
            links().read(tampered)


def test_a_link_counts_within_its_validity_and_is_refused_as_expired_after() -> None:
    now = time.time()
    fresh = a_token(links(now - 3000), valid_seconds=3600)
    stale = a_token(links(now - 3700), valid_seconds=3600)
    assert links(now).read(fresh).score == 9
    with pytest.raises(LinkExpired):
        links(now).read(stale)
    # Whatever validity a link claims, none outlives the longest a playbook may set.
    ancient = a_token(links(now - (limits.SURVEY_LINK_DAYS_MAX + 1) * 86_400))
    with pytest.raises(LinkExpired):
        links(now).read(ancient)


# The playbook section


def test_a_survey_section_is_bounded_and_a_playbook_without_one_sends_none(
    tmp_path: Path,
) -> None:
    shipped = (REPO / "playbooks" / "default.toml").read_text(encoding="utf-8")
    assert load_playbook(REPO / "playbooks" / "default.toml").surveys is not None

    def with_section(section: str) -> Path:
        start = shipped.index("[surveys]")
        end = shipped.index("# The purpose catalogue.")
        path = tmp_path / "playbook.toml"
        path.write_text(shipped[:start] + section + shipped[end:], encoding="utf-8")
        return path

    assert load_playbook(with_section("")).surveys is None
    for section, refusal in [
        (
            '[surveys]\nvalid_for = "120d"\n[surveys.touchpoints]\nafter_kickoff = ["end_user"]\n',
            "surveys.valid_for must be between 1 minute and 90 days",
        ),
        (
            '[surveys.touchpoints]\nafter_kickoff = ["end_user", "end_user"]\n',
            "must name each role once",
        ),
        ('[surveys.touchpoints]\nafter_lunch = ["end_user"]\n', "after_lunch"),
        (
            '[surveys.touchpoints]\nafter_kickoff = ["janitor"]\n',
            "surveys.touchpoints.after_kickoff.0: Input should be 'decision_maker'",
        ),
    ]:
        with pytest.raises(PlaybookError, match=refusal):
            load_playbook(with_section(section))


def test_every_survey_of_the_playbook_is_checked_in_every_role_and_locale(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "email", templates)
    playbook = make_playbook(surveys=True)
    environment = build_template_environment(templates)
    surveyed = {
        (s.step, s.role, s.locale) for s in email_catalogue(playbook) if s.template == "nps_survey"
    }
    assert surveyed == {
        (f"surveys.{touchpoint.value}", role, locale)
        for touchpoint, roles in (playbook.surveys.touchpoints if playbook.surveys else {}).items()
        for role in roles
        for locale in ("en", "ja")
    }
    assert check_templates(environment, playbook) == []

    (templates / "nps_survey.ja.txt").unlink()
    problems = [p.line() for p in check_templates(build_template_environment(templates), playbook)]
    assert problems and all("no ja translation" in line for line in problems)
    assert any(line.startswith("surveys.after_training, role end_user") for line in problems)


# The workflow: one email per role at each touchpoint


def survey_mail(h: Harness) -> Counter[tuple[str, str]]:
    return Counter(
        (str(m["To"]), str(m["X-Liftoff-Ledger-Key"]))
        for m in h.emails()
        if str(m["X-Liftoff-Ledger-Key"]).startswith("survey:")
    )


async def test_each_role_the_playbook_names_gets_one_survey_per_touchpoint_with_its_own_links(
    h: Harness,
) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff, make_playbook(surveys=True))
    today = await h.today()
    await h.record(handle, KickoffHeld(held_on=today))
    await h.record(handle, TrainingHeld(held_on=today))
    await h.wait_for(handle, lambda s: s.state.stage is Stage.ADOPTION)

    assert survey_mail(h) == Counter(
        {
            ("boss@acme.example", "survey:after_kickoff:decision_maker"): 1,
            ("admin@acme.example", "survey:after_kickoff:administrator"): 1,
            ("admin@acme.example", "survey:after_training:administrator"): 1,
            ("user@acme.example", "survey:after_training:end_user"): 1,
        }
    )
    [message] = [
        m for m in h.emails() if m["X-Liftoff-Ledger-Key"] == "survey:after_training:end_user"
    ]
    found = LINK.findall(body_text(message))
    assert [int(score) for score, _ in found] == list(range(11))
    claims = [links().read(url.rsplit("/", 1)[1]) for _, url in found]
    assert {(c.customer_id, c.touchpoint, c.role, c.email) for c in claims} == {
        (handoff.customer_id, "after_training", "end_user", "user@acme.example")
    }
    assert [c.score for c in claims] == list(range(11))
    # Valid for the playbook's 14 days, counted from when the email was rendered.
    assert {c.expires_at - c.signed_at for c in claims} == {timedelta(days=14)}


async def test_a_playbook_without_surveys_sends_none(h: Harness) -> None:
    handoff = make_handoff()
    handle = await h.start(handoff, make_playbook(surveys=False))
    today = await h.today()
    await h.record(handle, KickoffHeld(held_on=today))
    await h.record(handle, TrainingHeld(held_on=today))
    await h.wait_for(handle, lambda s: s.state.stage is Stage.ADOPTION)

    assert h.emails(), "the journey sent its task emails"
    assert survey_mail(h) == Counter()


async def test_a_survey_of_a_touchpoint_passed_while_paused_waits_for_the_resume(
    h: Harness,
) -> None:
    handle = await h.start(make_handoff(), make_playbook(surveys=True))
    await h.record(handle, Paused(reason="customer is reorganising"))
    await h.record(handle, KickoffHeld(held_on=await h.today()))
    await h.wait_for(handle, lambda s: s.state.stage is Stage.TRAINING)
    assert survey_mail(h) == Counter()

    await h.record(handle, Resumed())
    await h.wait_for(handle, lambda s: s.state.pause is None)
    assert survey_mail(h) == Counter(
        {
            ("boss@acme.example", "survey:after_kickoff:decision_maker"): 1,
            ("admin@acme.example", "survey:after_kickoff:administrator"): 1,
        }
    )


# The completion review's answers, in the same store


def review_entry(customer_id: str, nps: list[dict[str, object]]) -> RecordTimelineInput:
    """A completion review's timeline entry with these NPS answers, as the workflow writes it."""
    return RecordTimelineInput(
        customer_id=customer_id,
        seq=12,
        at=datetime(2026, 5, 1, 10, tzinfo=UTC),
        kind="completion_review_held",
        stage=Stage.COMPLETION_REVIEW,
        summary="completion review held",
        details={"kind": "completion_review_held", "nps": nps},
    )


def test_the_completion_reviews_nps_is_stored_once_with_each_contacts_role(
    database: Database,
) -> None:
    handoff = make_handoff()
    store_customer(database, handoff)
    review = review_entry(
        handoff.customer_id,
        [
            {"email": "Boss@Acme.example", "score": 9},
            {"email": "someone-else@acme.example", "score": 4},
        ],
    )
    store = StoreActivities(database)
    ActivityEnvironment().run(store.record_timeline, review)
    # A retried activity, or a second review, does not count anyone twice.
    ActivityEnvironment().run(store.record_timeline, review)
    ActivityEnvironment().run(store.record_timeline, review.model_copy(update={"seq": 20}))

    answers = sorted(answers_of(database, handoff.customer_id), key=lambda a: a.email)
    assert [(a.email, a.role, a.score, a.touchpoint, a.source) for a in answers] == [
        ("boss@acme.example", "decision_maker", 9, "at_completion_review", "completion_review"),
        ("someone-else@acme.example", "", 4, "at_completion_review", "completion_review"),
    ]


def test_reviews_recorded_before_the_survey_table_are_copied_in_by_the_rebuild(
    database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlmodel import delete

    from cli.main import main

    handoff = make_handoff()
    store_customer(database, handoff)
    # An answer no check let through is left out, not a failed rebuild.
    nps = [{"email": "boss@acme.example", "score": 7}, {"email": "x@y", "score": 11}]
    review = review_entry(handoff.customer_id, nps)
    ActivityEnvironment().run(StoreActivities(database).record_timeline, review)
    # As a database upgraded to migration 0011 holds it: the entry, no answer.
    with database.session() as session:
        session.exec(delete(SurveyAnswer))
    monkeypatch.setenv("DATABASE_URL", database.url.render_as_string(hide_password=False))

    assert main(["projections", "rebuild", "--json"]) == 0
    assert capsys.readouterr().out.count('"review_answers_stored": 1') == 1
    [answer] = answers_of(database, handoff.customer_id)
    assert (answer.email, answer.role, answer.score) == ("boss@acme.example", "decision_maker", 7)
    assert answer.answered_at == datetime(2026, 5, 1, 10, tzinfo=UTC)
    # Again: nothing more.
    assert main(["projections", "rebuild", "--json"]) == 0
    assert '"review_answers_stored": 0' in capsys.readouterr().out


# The computation


def test_nps_is_promoters_minus_detractors_in_percent_and_small_groups_say_so() -> None:
    # 5 promoters (10, 9, 9, 10, 9), 2 passives (8, 7), 4 detractors (6, 0, 3, 5).
    group = nps_group("all", [10, 9, 9, 8, 7, 6, 0, 3, 10, 9, 5])
    assert (group.answers, group.promoters, group.passives, group.detractors) == (11, 5, 2, 4)
    assert group.nps == pytest.approx(100 / 11)
    assert group.enough

    grouped = nps_by(
        [("end_user", 3), ("administrator", 10), ("end_user", 9), ("zeta", 8)],
        order=["decision_maker", "administrator", "end_user"],
    )
    assert [(g.group, g.answers, g.nps) for g in grouped] == [
        ("decision_maker", 0, None),
        ("administrator", 1, 100.0),
        ("end_user", 2, 0.0),
        ("zeta", 1, 0.0),
    ]
    assert not any(g.enough for g in grouped)
    assert nps_group("ten", [0] * MIN_ANSWERS).nps == -100.0


# The answer pages and REST, on SQLite and PostgreSQL


@pytest.fixture
async def web(database: Database) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    services = Services(
        None,  # type: ignore[arg-type]  # these routes never ask Temporal
        database,
        make_playbook(),
        survey_links=links(),
    )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client, database


def customer_with(database: Database, customer_id: str, **fields: object) -> None:
    handoff = make_handoff(customer_id=customer_id, **fields)
    store_customer(database, handoff)


async def test_a_link_shows_a_confirm_page_and_only_the_posted_answer_counts_once(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = web
    customer_with(database, "sakura", locale="ja", name="株式会社さくら")
    token = a_token(links(), score=8, customer_id="sakura", email="admin@acme.example")

    # A mail scanner fetching the link records nothing.
    shown = await client.get(f"/s/{token}")
    assert shown.status_code == 200
    assert "回答を送信する" in shown.text and f'action="/s/{token}"' in shown.text
    assert answers_of(database, "sakura") == []

    # A page under the dashboard's policy: nothing inline, forms only to this site.
    policy = shown.headers["content-security-policy"]
    assert "form-action 'self'" in policy and "script-src 'self'" in policy
    assert "<style" not in shown.text and " style=" not in shown.text
    assert shown.headers["cache-control"] == "no-store"

    sent = await client.post(f"/s/{token}", data={"comment": "とても分かりやすい説明でした"})
    assert sent.status_code == 200 and "ありがとうございました" in sent.text
    [answer] = answers_of(database, "sakura")
    assert (answer.score, answer.role, answer.source, answer.comment) == (
        8,
        "administrator",
        "link",
        "とても分かりやすい説明でした",
    )

    # The same link again, or the 3 of the same email, changes nothing.
    other = a_token(links(), score=3, customer_id="sakura", email="admin@acme.example")
    for again in (token, other):
        page = await client.get(f"/s/{again}")
        assert "回答済みです" in page.text
        posted = await client.post(f"/s/{again}", data={"comment": "changed my mind"})
        assert posted.status_code == 200 and "回答済みです" in posted.text
    [unchanged] = answers_of(database, "sakura")
    assert (unchanged.score, unchanged.comment) == (8, "とても分かりやすい説明でした")


async def test_refused_links_answer_a_page_with_400_or_410_never_a_500(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = web
    customer_with(database, "acme")
    expired = a_token(links(time.time() - 7200), valid_seconds=3600)
    token = a_token(links())
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for method in ("get", "post"):
        gone = await client.request(method.upper(), f"/s/{expired}")
        assert gone.status_code == 410 and "expired" in gone.text
        bad = await client.request(method.upper(), f"/s/{tampered}")
        assert bad.status_code == 400 and "does not work" in bad.text
    japanese = await client.get(f"/s/{expired}", headers={"Accept-Language": "ja,en;q=0.5"})
    assert japanese.status_code == 410 and "有効期限が切れています" in japanese.text
    # Signed by us, for a customer this database never held.
    unknown = await client.get(f"/s/{a_token(links(), customer_id='nobody')}")
    assert unknown.status_code == 400
    assert answers_of(database, "acme") == []


async def test_the_comment_is_bounded_added_once_and_refused_from_another_origin(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = web
    customer_with(database, "acme")
    token = a_token(links(), score=10)

    too_long = "x" * (limits.NOTE_CHARS + 1)
    refused = await client.post(f"/s/{token}", data={"comment": too_long})
    assert refused.status_code == 422
    assert f"at most {limits.NOTE_CHARS} characters" in refused.text
    assert too_long in refused.text  # what was typed is shown again, not lost
    assert answers_of(database, "acme") == []

    # A page of another site cannot answer for the recipient.
    forged = await client.post(
        f"/s/{token}", data={"comment": ""}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    assert answers_of(database, "acme") == []

    assert (await client.post(f"/s/{token}", data={})).status_code == 200
    added = await client.post(f"/s/{token}/comment", data={"comment": "Great onboarding"})
    assert "Your comment is recorded" in added.text
    kept = await client.post(f"/s/{token}/comment", data={"comment": "Overwrite it"})
    assert "stays as it is" in kept.text
    [answer] = answers_of(database, "acme")
    assert (answer.score, answer.comment) == (10, "Great onboarding")


async def test_a_comment_with_a_nul_is_refused_on_the_page_and_nothing_is_stored(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    # PostgreSQL refuses a NUL in text: it had answered 500 from a public page.
    client, database = web
    customer_with(database, "acme")
    token = a_token(links(), score=9)

    refused = await client.post(f"/s/{token}", data={"comment": "hi\x00there"})
    assert refused.status_code == 422
    assert "control character" in refused.text
    assert answers_of(database, "acme") == []

    assert (await client.post(f"/s/{token}", data={})).status_code == 200
    later = await client.post(f"/s/{token}/comment", data={"comment": "bell\x07"})
    assert later.status_code == 422
    assert "control character" in later.text
    [answer] = answers_of(database, "acme")
    assert (answer.score, answer.comment) == (9, "")


async def test_rest_nps_by_role_touchpoint_and_seats_band_is_scoped_to_the_csms_customers(
    web: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = web
    now = datetime.now(UTC)
    insert_projection_rows(
        database,
        [
            projection_row("small", now, csm=CSM, seats_contracted=8, seats_band="1-10"),
            projection_row("big", now, csm=CSM, seats_contracted=900, seats_band="201-1000"),
            projection_row("theirs", now, csm=OTHER_CSM),
        ],
    )
    answered = [
        ("small", Touchpoint.AFTER_KICKOFF, "a@s.example", "administrator", 10),
        ("small", Touchpoint.AFTER_KICKOFF, "b@s.example", "end_user", 9),
        ("small", Touchpoint.AFTER_TRAINING, "b@s.example", "end_user", 7),
        ("big", Touchpoint.AFTER_KICKOFF, "c@b.example", "decision_maker", 2),
        ("big", Touchpoint.AT_COMPLETION_REVIEW, "c@b.example", "decision_maker", 10),
        ("theirs", Touchpoint.AFTER_KICKOFF, "d@t.example", "end_user", 0),
    ]
    for customer_id, touchpoint, email, role, score in answered:
        record_answer(
            database,
            AnswerIn(customer_id, touchpoint, email, role, score, now, Source.LINK),
        )
    csm_token, _ = create_token(database, name="csm", role=TokenRole.CSM, csm=CSM)
    lead_token, _ = create_token(database, name="lead", role=TokenRole.LEAD)

    def as_(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def figures(body: dict[str, object]) -> dict[str, tuple[int, float | None]]:
        groups = body["groups"]
        assert isinstance(groups, list)
        return {g["group"]: (g["answers"], g["nps"]) for g in groups if g["answers"]}

    by_role = (await client.get("/api/nps?by=role", headers=as_(csm_token))).json()
    assert figures(by_role) == {
        "decision_maker": (2, 0.0),
        "administrator": (1, 100.0),
        "end_user": (2, 50.0),
    }
    assert by_role["min_answers"] == MIN_ANSWERS
    assert not any(g["enough"] for g in by_role["groups"])
    by_touchpoint = (await client.get("/api/nps?by=touchpoint", headers=as_(csm_token))).json()
    assert figures(by_touchpoint) == {
        "after_kickoff": (3, pytest.approx(100 / 3)),
        "after_training": (1, 0.0),
        "at_completion_review": (1, 100.0),
    }
    by_band = (await client.get("/api/nps?by=seats_band", headers=as_(csm_token))).json()
    assert figures(by_band) == {"1-10": (3, pytest.approx(100 * 2 / 3)), "201-1000": (2, 0.0)}

    # A lead sees every CSM's customers, or narrows to one.
    everyone = (await client.get("/api/nps?by=role", headers=as_(lead_token))).json()
    assert figures(everyone)["end_user"] == (3, 0.0)
    theirs = await client.get(f"/api/nps?by=role&csm={OTHER_CSM}", headers=as_(lead_token))
    assert figures(theirs.json()) == {"end_user": (1, -100.0)}

    csv_answer = await client.get("/api/nps.csv?by=touchpoint", headers=as_(csm_token))
    assert csv_answer.headers["content-type"].startswith("text/csv")
    lines = csv_answer.text.splitlines()
    assert lines[0] == "group,answers,promoters,passives,detractors,nps,enough"
    assert "after_kickoff,3,2,0,1,33.3,no" in lines

    assert (await client.get("/api/nps?by=purpose", headers=as_(csm_token))).status_code == 422
    assert (await client.get("/api/nps")).status_code == 401


def test_the_survey_answers_table_holds_the_longest_address_and_comment(
    database: Database,
) -> None:
    customer_with(database, "acme")
    email = "a" * 64 + "@" + "b" * 251 + ".jp"
    assert len(email) <= limits.EMAIL_CHARS
    stored, new = record_answer(
        database,
        AnswerIn(
            "acme",
            Touchpoint.AT_COMPLETION_REVIEW,
            email,
            "end_user",
            6,
            datetime.now(UTC),
            Source.LINK,
            comment="ç" * limits.NOTE_CHARS,
        ),
    )
    assert new and isinstance(stored, SurveyAnswer)
    assert len(stored.comment) == limits.NOTE_CHARS


async def test_the_csm_sees_a_customers_answers_on_its_page_and_nps_on_the_cohort(
    api: ApiHarness,
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    handoff = make_handoff(csm=csm)
    await api.services.onboarding.start(handoff, make_playbook())
    await api.past_handoff(handoff.customer_id, timeout=30.0)
    now = datetime.now(UTC)
    for touchpoint, email, role, score, source, comment in [
        (Touchpoint.AFTER_KICKOFF, "admin@acme.example", "administrator", 9, Source.LINK, ""),
        (
            Touchpoint.AT_COMPLETION_REVIEW,
            "boss@acme.example",
            "decision_maker",
            4,
            Source.COMPLETION_REVIEW,
            "Reports are <slow>",
        ),
    ]:
        record_answer(
            api.database,
            AnswerIn(handoff.customer_id, touchpoint, email, role, score, now, source, comment),
        )

    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get(f"/customers/{handoff.customer_id}")).text
        answers = page[
            page.index('id="survey-answers"') : page.index(
                "</section>", page.index('id="survey-answers"')
            )
        ]
        assert '<span class="count">2</span>' in answers
        assert "Completion review" in answers and "After kickoff" in answers
        assert "Reports are &lt;slow&gt;" in answers  # escaped, as everything typed
        assert "completion review" in answers and "survey email" in answers

        cohort = (await browser.get("/cohort")).text
        nps = cohort[
            cohort.index('id="nps"') : cohort.index("</section>", cohort.index('id="nps"'))
        ]
        role_rows = re.findall(
            r'data-group="([a-z_]+)">\s*<th scope="row">([^<]+)</th>\s*'
            r'<td class="num">(.*?)</td>\s*<td class="num">(\d+)</td>',
            nps[nps.index('id="nps-role"') : nps.index('id="nps-touchpoint"')],
        )
        assert [(group, answers) for group, _, _, answers in role_rows] == [
            ("decision_maker", "1"),
            ("administrator", "1"),
            ("end_user", "0"),
        ]
        assert "n too small" in nps
        japanese = (await browser.get("/cohort", params={"lang": "ja"})).text
        assert "回答数不足" in japanese and "役割別" in japanese
