"""The dashboard in a real browser: Debian's chromium, driven by Playwright, over HTTP.

uvicorn serves the `api` fixture's app as a task in the test's own event loop, where
the fixture's worker runs too; Playwright's async API shares that loop. No browser is
downloaded: the test uses /usr/bin/chromium (`.ci/run` installs it) or is skipped.
Screenshots of every step are kept in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from playwright.async_api import Page, async_playwright, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from api.app import create_app
from api.services import Services
from emails.opt_out_links import OptOutLinks
from models.email_categories import EmailCategory
from models.events import KickoffHeld
from records.database import Database
from records.email_opt_outs import choices_of
from records.reports import customer_timeline
from records.tokens import TokenRole
from testkit.factories import (
    REPO,
    SURVEY_SECRET,
    add_usage,
    make_fast_playbook,
    make_handoff,
    make_playbook,
    store_customer,
)
from tests.support.api_harness import ApiHarness
from tests.support.eventually import eventually

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
SERVER_START_SECONDS = 10.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Debian's chromium is not installed at {CHROMIUM}: apt-get install chromium "
    "(.ci/run does it); Playwright's own browser download is never used",
)


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """The app on a free loopback port, in this event loop; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # log_config=None: uvicorn leaves the test run's logging alone.
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    serve = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await eventually(
            lambda: server.started,
            what="uvicorn started",
            timeout=SERVER_START_SECONDS,
            interval=0.02,
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serve
        listener.close()


async def _sign_in(page: Page, base: str, token: str, then: str) -> None:
    await page.goto(f"{base}/login?next={quote(then)}")
    await page.fill("#token", token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("nav")).to_be_visible()


def _policy_violations(page: Page) -> list[str]:
    """What the page's Content-Security-Policy blocked, as chromium reports it: a list
    that grows while the page lives."""
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return blocked


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"dashboard-{name}.png", full_page=True)


async def test_a_csm_signs_in_records_a_kickoff_and_a_meeting_and_sees_the_timeline(
    api: ApiHarness,
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    handoff = make_handoff(csm=csm, name="Acme Logistics")
    await api.services.onboarding.start(handoff, make_playbook())
    await api.services.onboarding.start(
        make_handoff(csm=csm, name="Borealis Freight", trial_used=True), make_playbook()
    )
    token = api.token(TokenRole.CSM, csm)
    goal = "Every incoming invoice scanned on the day it arrives"

    async with serving(api.app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
            blocked = _policy_violations(page)

            # Not signed in: the dashboard sends the browser to the sign-in page.
            await page.goto(f"{base}/")
            await expect(page).to_have_url(re.compile(r"/login\?next=/$"))
            await _shot(page, "01-sign-in")
            await page.fill("#token", token)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("h1")).to_have_text("My customers")
            await expect(page.locator(f'[data-customer="{handoff.customer_id}"]')).to_be_visible()
            # The vendored htmx loaded from the app itself and boosts links and forms.
            assert await page.evaluate("typeof htmx") == "object"
            await _shot(page, "02-my-customers")

            await page.get_by_role("link", name="Acme Logistics").click()
            await expect(page).to_have_url(f"{base}/customers/{handoff.customer_id}")
            await expect(page.locator(".stage-line .stage")).to_have_text("Kickoff")
            await _shot(page, "03-customer")

            # The kickoff: the stage's next step, its form already open.
            kickoff = page.locator("#action-kickoff_held")
            await kickoff.locator("textarea[name=goals]").fill(goal)
            await kickoff.locator("textarea[name=attendees]").fill("Dana Boss\nAri Admin")
            await kickoff.get_by_role("button", name="Record").click()
            timeline = page.locator("#timeline")
            await expect(timeline.locator('[data-kind="kickoff_held"]')).to_have_count(1)
            await expect(page.locator(".stage-line .stage")).to_have_text("Training")
            await expect(page.locator("#goals")).to_contain_text(goal)
            await _shot(page, "04-kickoff-recorded")

            # A meeting held, from the folded "other actions".
            meeting = page.locator("#action-meeting_held")
            await meeting.locator("summary").click()
            await meeting.locator("select[name=meeting]").select_option("customer_request")
            await meeting.locator("textarea[name=notes]").fill("Scanner set up with the admin")
            await meeting.get_by_role("button", name="Record").click()
            await expect(timeline.locator('[data-kind="meeting_held"]')).to_have_count(1)
            # The form offered the customer's own date (Asia/Tokyo).
            their_today = datetime.now(ZoneInfo(handoff.time_zone)).date()
            await expect(timeline.locator("li").first).to_contain_text(
                f"meeting held on {their_today} (Customer request)"
            )
            await expect(meeting.locator(".notice.ok")).to_be_visible()
            await _shot(page, "05-meeting-recorded")

            # The same goal again: the workflow refuses, the reason sits by the form
            # and what was typed is still there.
            agreed = page.locator("#action-goal_agreed")
            await agreed.locator("summary").click()
            await agreed.locator("input[name=goal]").fill(goal)
            await agreed.get_by_role("button", name="Record").click()
            await expect(agreed.locator(".notice.error")).to_contain_text("is already agreed")
            await expect(agreed.locator("input[name=goal]")).to_have_value(goal)
            await _shot(page, "06-refused-by-the-workflow")

            await page.goto(f"{base}/cohort?lang=ja")
            await expect(page.locator("h1")).to_have_text("コホート")
            await _shot(page, "07-cohort-ja")
            # htmx and every page worked within the policy: nothing inline was blocked.
            assert blocked == [], "\n".join(blocked)

            # The API's docs render from the app's own files: this machine has no CDN.
            await page.goto(f"{base}/docs")
            await expect(page.locator(".opblock-summary-path").first).to_be_visible()
            await expect(page.locator("#swagger-ui")).to_contain_text("/api/customers")

            # Without JavaScript the same forms work as plain HTML posts.
            plain = await browser.new_page(java_script_enabled=False, locale="en-US")
            await _sign_in(plain, base, token, f"/customers/{handoff.customer_id}")
            requested = plain.locator("#action-meeting_requested")
            await requested.locator("summary").click()
            await requested.locator("textarea[name=notes]").fill("Asked for a session on approvals")
            await requested.get_by_role("button", name="Record").click()
            await expect(plain).to_have_url(re.compile(r"done=meeting_requested"))
            await expect(plain.locator('#timeline [data-kind="meeting_requested"]')).to_have_count(
                1
            )
            await _shot(plain, "08-without-javascript")
        finally:
            await browser.close()


async def test_a_lead_sees_stuck_and_stalled_customers_first_and_the_weekly_chart(
    api: ApiHarness,
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    fast = make_fast_playbook()
    await api.services.onboarding.start(make_handoff(csm=csm, name="Cobalt Clinics"), fast)
    stuck = make_handoff(csm=csm, name="Delta Dental", trial_used=True)
    stalled = make_handoff(csm=csm, name="Ember Energy", trial_used=True)
    for handoff in (stuck, stalled):
        await api.services.onboarding.start(handoff, fast)
        await api.past_handoff(handoff.customer_id)
        await api.services.onboarding.record(
            handoff.customer_id, KickoffHeld(held_on=datetime.now(UTC).date(), goals=["Go live"])
        )
    # Ember: usage arrives each second-long week but stays below the stall rules.
    add_usage(api.database, stalled.customer_id, datetime.now(UTC), active_users=1)

    async with serving(api.app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
            blocked = _policy_violations(page)
            # The dev server holds every test's customers: the lead looks at this CSM's.
            await _sign_in(page, base, api.token(TokenRole.LEAD), f"/?csm={csm}")
            await expect(page.locator("h1")).to_have_text("All customers")
            # The CSM filter applies as soon as another CSM is chosen.
            await page.goto(f"{base}/cohort")
            await page.select_option("#csm-filter", csm)
            await expect(page).to_have_url(f"{base}/cohort?csm={quote(csm)}")
            await expect(page.locator("#funnel")).to_be_visible()
            rows = page.locator("#stage-adoption tbody tr")

            # The flags come with each workflow's own measurements, not at the same moment:
            # wait for both.
            async def flags_shown() -> tuple[int, int]:
                await page.goto(f"{base}/?csm={csm}")
                stuck_flags = await page.locator("#stage-adoption .flag-stuck").count()
                stalled_flags = await page.locator("#stage-adoption .flag-stalled").count()
                return stuck_flags, stalled_flags

            await eventually(flags_shown, all, what="both flags", timeout=15, interval=0.5)
            await expect(rows.nth(0)).to_contain_text("Stuck in setup")
            await expect(rows.nth(0)).to_contain_text("Delta Dental")
            await expect(rows.nth(1)).to_contain_text("Stalled")
            await expect(rows.nth(1)).to_contain_text("Ember Energy")
            await _shot(page, "09-lead-flags")

            # Two weeks measured, so the chart has a line to draw.
            await eventually(
                lambda: api.services.onboarding.status(stalled.customer_id),
                lambda status: len(status.state.recent_weeks) >= 2,
                what="Ember's second weekly measurement",
            )
            await page.get_by_role("link", name="Ember Energy").click()
            chart = page.locator("#measurement svg").first
            await expect(chart).to_be_visible()
            assert await chart.locator("circle").count() >= 2
            await expect(page.locator("#measurement")).to_contain_text("≥ 60%")
            await expect(page.locator("#measurement")).to_contain_text("< 20%")
            await _shot(page, "10-weekly-chart")

            await page.get_by_role("link", name="日本語").click()
            await expect(page.locator("#measurement h2")).to_have_text("週次計測")
            await expect(page.locator("html")).to_have_attribute("lang", "ja")
            await _shot(page, "11-customer-ja")
            assert blocked == [], "\n".join(blocked)
        finally:
            await browser.close()


def _attacker_app(target: str, customer_id: str) -> Starlette:
    """A page on another port of the same host that posts the dashboard's form by itself."""
    page = f"""<!doctype html><html><body>
<form id="f" method="post" action="{target}/customers/{customer_id}">
<input name="kind" value="meeting_requested"><input name="meeting" value="customer_request">
<input name="notes" value="forged"></form>
<script>document.getElementById("f").submit()</script></body></html>"""

    async def forged(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", forged)])


async def test_a_form_posted_from_another_port_is_refused_and_the_dashboards_own_form_works(
    api: ApiHarness,
) -> None:
    csm = f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"
    handoff = make_handoff(csm=csm, name="Cobalt Mining")
    await api.services.onboarding.start(handoff, make_playbook())
    await api.past_handoff(handoff.customer_id)
    token = api.token(TokenRole.CSM, csm)

    async with (
        serving(api.app) as base,
        async_playwright() as playwright,
    ):
        async with serving(_attacker_app(base, handoff.customer_id)) as attacker:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                page = await browser.new_page(locale="en-US")
                await _sign_in(page, base, token, f"/customers/{handoff.customer_id}")

                # The signed-in CSM opens the other port's page; its form posts itself.
                await page.goto(attacker)
                await expect(page.locator("body")).to_contain_text("another origin")

                # The dashboard's own form, from the dashboard's page, still records.
                await page.goto(f"{base}/customers/{handoff.customer_id}")
                kickoff = page.locator("#action-kickoff_held")
                await kickoff.locator("textarea[name=goals]").fill("Scan every invoice")
                await kickoff.get_by_role("button", name="Record").click()
                await expect(page.locator('#timeline [data-kind="kickoff_held"]')).to_have_count(1)
            finally:
                await browser.close()

    kinds = [row.kind for row in customer_timeline(api.database, customer_id=handoff.customer_id)]
    assert "kickoff_held" in kinds
    assert "meeting_requested" not in kinds


async def test_a_lead_reads_the_cohort_analytics_and_outcomes_in_both_languages_and_exports_csv(
    api: ApiHarness,
) -> None:
    from testkit.outcomes import SEATS_DRIVE_OUTCOMES, write_outcome_cohort

    # A year and more of finished customers, as `make run` seeds them.
    write_outcome_cohort(
        api.database, SEATS_DRIVE_OUTCOMES, count=60, as_of=datetime.now(UTC).date()
    )

    async with serving(api.app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = await browser.new_context(
                viewport={"width": 1360, "height": 900}, locale="en-US", accept_downloads=True
            )
            page = await context.new_page()
            blocked = _policy_violations(page)
            await _sign_in(page, base, api.token(TokenRole.LEAD), "/cohort/analytics")
            await expect(page.locator("h1")).to_have_text("Cohort analytics")
            onboard = page.locator("#time-to-onboard")
            # A Kaplan-Meier curve drawn on the server: one path per group at least.
            await expect(onboard.locator("svg").first).to_be_visible()
            assert await onboard.locator("svg path").count() >= 1
            await _shot(page, "12-cohort-analytics")

            async with page.expect_download() as downloading:
                await onboard.get_by_role("link", name="CSV").click()
            exported = Path(await (await downloading.value).path()).read_text("utf-8-sig")
            header, *rows = exported.splitlines()
            assert "median" in header
            assert rows, "the time-to-onboard CSV has no rows"

            await page.goto(f"{base}/cohort/analytics?lang=ja")
            await expect(page.locator("h1")).to_have_text("コホート分析")
            await expect(page.locator("html")).to_have_attribute("lang", "ja")
            await expect(onboard.locator("h2")).to_contain_text("オンボーディング完了までの期間")
            await _shot(page, "13-cohort-analytics-ja")

            await page.goto(f"{base}/cohort/outcomes?lang=en")
            await expect(page.locator("h1")).to_have_text("Outcomes after onboarding")
            conclusion = page.locator("#conclusion")
            await expect(conclusion).to_contain_text("churn")
            await _shot(page, "14-outcomes")
            async with page.expect_download() as downloading:
                await conclusion.get_by_role("link", name="Download as CSV").click()
            analysis = Path(await (await downloading.value).path()).read_text("utf-8-sig")
            assert len(analysis.splitlines()) > 2

            await page.goto(f"{base}/cohort/outcomes?lang=ja")
            await expect(page.locator("h1")).to_have_text("オンボーディング後の成果")
            await expect(conclusion.get_by_role("link", name="CSV でダウンロード")).to_be_visible()
            await _shot(page, "15-outcomes-ja")
            assert blocked == [], "\n".join(blocked)
        finally:
            await browser.close()


async def test_a_lead_opens_the_playbook_review_in_both_languages_and_downloads_it(
    api: ApiHarness,
) -> None:
    from testkit.outcomes import SEATS_DRIVE_OUTCOMES, write_outcome_cohort

    # 60 finished customers of version 1: past the default threshold of 50.
    write_outcome_cohort(
        api.database, SEATS_DRIVE_OUTCOMES, count=60, as_of=datetime.now(UTC).date()
    )

    async with serving(api.app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = await browser.new_context(
                viewport={"width": 1360, "height": 900}, locale="en-US", accept_downloads=True
            )
            page = await context.new_page()
            blocked = _policy_violations(page)
            await _sign_in(page, base, api.token(TokenRole.LEAD), "/cohort/review?version=1")
            await expect(page.locator("h1")).to_have_text("Playbook review: 1")
            await expect(page.locator("#review-task")).to_contain_text("lead@liftoff.example")
            suggestions = page.locator("#suggestions tbody tr")
            assert await suggestions.count() >= 1
            await expect(page.locator("#outcomes")).to_contain_text("churn")
            await _shot(page, "16-playbook-review")

            async with page.expect_download() as downloading:
                await page.locator("#review-csv").click()
            exported = Path(await (await downloading.value).path()).read_text("utf-8-sig")
            assert exported.splitlines()[0] == "section,item,measure,value"
            assert any(line.startswith("suggestion,") for line in exported.splitlines())
            async with page.expect_download() as downloading:
                await page.locator("#review-md").click()
            written = Path(await (await downloading.value).path()).read_text("utf-8")
            assert written.startswith("# Playbook review: 1")

            await page.goto(f"{base}/cohort/review?version=1&lang=ja")
            await expect(page.locator("h1")).to_have_text("プレイブックのレビュー：1")
            await expect(page.locator("html")).to_have_attribute("lang", "ja")
            await expect(page.locator("#suggestions h2")).to_have_text("完了基準への提案")
            await _shot(page, "17-playbook-review-ja")
            assert blocked == [], "\n".join(blocked)
        finally:
            await browser.close()


async def test_a_lead_moves_a_versions_customers_and_a_csm_pauses_and_resumes_one(
    api: ApiHarness,
) -> None:
    from records.playbook_versions import record_version

    old = make_playbook(version=f"old-{uuid.uuid4().hex[:4]}")
    new = old.model_copy(
        update={"version": f"new-{uuid.uuid4().hex[:4]}", "deadline": old.deadline * 2}
    )
    for playbook in (old, new):
        record_version(api.database, playbook, f"playbooks/{playbook.version}.toml")
    csm = f"csm-{uuid.uuid4().hex[:6]}@liftoff.example"
    handoff = make_handoff(csm=csm, time_zone="UTC")
    await api.services.onboarding.start(handoff, old)
    await api.past_handoff(handoff.customer_id)

    async with serving(api.app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = await browser.new_context(
                viewport={"width": 1360, "height": 900}, locale="en-US"
            )
            page = await context.new_page()
            blocked = _policy_violations(page)
            await _sign_in(page, base, api.token(TokenRole.LEAD), "/playbooks")
            await expect(page.locator("h1")).to_have_text("Playbook versions")
            form = page.locator("#migrate form")
            await form.locator("select[name=from]").select_option(old.version)
            await form.locator("select[name=to]").select_option(new.version)
            await form.locator("input[name=reason]").fill("a longer deadline for everyone")
            await form.get_by_role("button", name="Preview").click()
            await expect(page.locator("#differences")).to_contain_text("deadline: 180 days")
            row = page.locator(f'#preview [data-customer="{handoff.customer_id}"]')
            await expect(row).to_contain_text("timer(s) re-based")
            await _shot(page, "18-migration-dry-run")
            await page.locator("#migrate-apply").click()
            await expect(page.locator("#preview h2")).to_have_text(
                f"1 moved to {new.version}, 0 refused"
            )
            await _shot(page, "19-migration-applied")
            status = await api.services.onboarding.status(handoff.customer_id)
            assert status.playbook_version == new.version

            await context.clear_cookies()
            await _sign_in(page, base, api.token(TokenRole.CSM, csm), "/")
            await page.goto(f"{base}/customers/{handoff.customer_id}")
            timeline = page.locator("#timeline")
            await expect(timeline.locator('[data-kind="playbook_migrated"]')).to_have_count(1)
            pause = page.locator("#action-paused")
            await pause.locator("summary").click()
            await pause.locator("input[name=reason]").fill("customer asked for a month off")
            await pause.get_by_role("button", name="Record").click()
            await expect(page.locator("body")).to_contain_text("customer asked for a month off")
            await expect(timeline.locator('[data-kind="paused"]')).to_have_count(1)
            await _shot(page, "20-customer-paused")
            resume = page.locator("#action-resumed")
            await resume.locator("summary").click()
            await resume.get_by_role("button", name="Record").click()
            await expect(timeline.locator('[data-kind="resumed"]')).to_have_count(1)
            await expect(page.locator("#action-paused")).to_be_attached()
            assert blocked == [], "\n".join(blocked)
        finally:
            await browser.close()


async def test_a_contact_leaves_one_kind_of_email_on_the_preference_page_and_comes_back(
    sqlite_database: Database,
) -> None:
    # The page a message's unsubscribe link opens: no sign-in, the customer's language.
    links = OptOutLinks(SURVEY_SECRET, "http://liftoff.invalid")
    app = create_app(
        Services(
            None,  # type: ignore[arg-type]  # the preference page never asks Temporal
            sqlite_database,
            make_playbook(),
            opt_out_links=links,
        )
    )
    contact = "kanri@sakura.example"
    store_customer(
        sqlite_database,
        make_handoff(
            customer_id="sakura", locale="ja", name="株式会社さくら", time_zone="Asia/Tokyo"
        ),
    )
    token = links.token(customer_id="sakura", email=contact, category=EmailCategory.SURVEY)

    async with serving(app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 700}, locale="ja-JP")
            blocked = _policy_violations(page)
            await page.goto(f"{base}/u/{token}")
            await expect(page.locator("h1")).to_have_text("メール配信設定")
            await expect(page.locator("#opt-out")).to_contain_text("株式会社さくら")
            boxes = page.locator("#opt-out input[type=checkbox]")
            await expect(boxes).to_have_count(3)  # operational mail has none
            survey = page.get_by_label("満足度アンケート")
            await expect(survey).to_be_checked()
            await survey.uncheck()
            await page.get_by_role("button", name="設定を保存する").click()
            await expect(page.locator(".notice")).to_have_text("設定を保存しました。")
            await expect(page.get_by_label("満足度アンケート")).not_to_be_checked()
            await _shot(page, "21-preferences-survey-left")
            assert choices_of(sqlite_database, "sakura", contact) == {
                EmailCategory.STEP: False,
                EmailCategory.PROPOSAL: False,
                EmailCategory.SURVEY: True,
            }

            await page.goto(f"{base}/u/{token}?lang=en")
            await expect(page.locator("h1")).to_have_text("Email preferences")
            await page.get_by_label("Satisfaction surveys").check()
            await page.get_by_label("Onboarding step emails").uncheck()
            await page.get_by_role("button", name="Save my choices").click()
            # Saved, and still in the language the reader chose.
            await expect(page.locator(".notice")).to_have_text("Your choices are saved.")
            assert choices_of(sqlite_database, "sakura", contact) == {
                EmailCategory.STEP: True,
                EmailCategory.PROPOSAL: False,
                EmailCategory.SURVEY: False,
            }
            assert blocked == [], "\n".join(blocked)
        finally:
            await browser.close()


async def test_a_csm_adjusts_the_playbook_for_one_customer_from_its_page(api: ApiHarness) -> None:
    csm = f"csm-{uuid.uuid4().hex[:6]}@liftoff.example"
    handoff = make_handoff(csm=csm, time_zone="UTC")
    await api.services.onboarding.start(handoff, make_playbook(campaign=True))
    await api.past_handoff(handoff.customer_id)

    async with serving(api.app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = await browser.new_context(
                viewport={"width": 1360, "height": 900}, locale="en-US"
            )
            page = await context.new_page()
            blocked = _policy_violations(page)
            await _sign_in(page, base, api.token(TokenRole.CSM, csm), "/")
            await page.goto(f"{base}/customers/{handoff.customer_id}?lang=en")
            overrides = page.locator("#overrides")
            await expect(overrides).to_contain_text("The playbook's values apply.")

            adjust = overrides.locator("details.action")
            await adjust.locator("summary").click()
            await adjust.locator("#overrides-thresholds").fill("key_actions=lots")
            await adjust.locator("#overrides-reason").fill("seasonal business")
            await adjust.get_by_role("button", name="Save adjustments").click()
            # Refused: the form comes back open, the error beside what was typed.
            adjust = page.locator("#overrides details.action")
            await expect(adjust.get_by_role("alert")).to_contain_text(
                "threshold key_actions: not a number"
            )
            await expect(adjust.locator("#overrides-thresholds")).to_have_value("key_actions=lots")
            await _shot(page, "22-overrides-refused")

            await adjust.locator("#overrides-thresholds").fill("key_actions=12")
            await adjust.locator("#overrides-timers").fill("kickoff=10d/20d")
            await adjust.get_by_role("button", name="Save adjustments").click()
            overrides = page.locator("#overrides")
            await expect(overrides.get_by_role("status")).to_contain_text("Adjustments saved")
            row = overrides.locator('[data-override="threshold key_actions"]')
            await expect(row.locator("td")).to_have_text(["threshold key_actions", "20", "12"])
            await expect(
                overrides.locator('[data-override="kickoff remind_csm_after"]')
            ).to_have_count(1)
            timeline = page.locator("#timeline")
            await expect(timeline.locator('[data-kind="overrides_set"]')).to_have_count(1)
            await _shot(page, "23-overrides-saved")
            assert blocked == [], "\n".join(blocked)
        finally:
            await browser.close()

    status = await api.services.onboarding.status(handoff.customer_id)
    assert status.state.overrides is not None
    assert status.state.overrides.thresholds == {"key_actions": 12}
