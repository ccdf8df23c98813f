"""The CSM dashboard over the real worker on a local dev server, spoken to in-process.

Each test gets its own CSM address: the dev server lives for the whole session and
visibility lists every customer started in it.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from api.dashboard.i18n import EN, JA, Translator
from api.dashboard.render import Formatter
from api.deps import SESSION_COOKIE
from models.events import KickoffHeld
from models.handoff import CustomerHandoff
from models.onboarding import Stage, TaskKind
from models.playbook import Playbook
from records import reports
from records.tokens import TokenRole
from testkit.factories import add_usage, make_fast_playbook, make_handoff, make_playbook
from tests.support.api_harness import ApiHarness
from tests.support.eventually import eventually

WAIT_SECONDS = 30.0


def _csm() -> str:
    return f"csm-{uuid.uuid4().hex[:8]}@liftoff.example"


async def _start(api: ApiHarness, playbook: Playbook | None = None, **fields: object) -> str:
    handoff: CustomerHandoff = make_handoff(**fields)
    await api.services.onboarding.start(handoff, playbook or make_playbook())

    await api.past_handoff(handoff.customer_id, timeout=WAIT_SECONDS)
    return handoff.customer_id


def _element(html: str, element_id: str, end: str) -> str:
    """The markup from the element with this id to the first `end` after it."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index(end, start)]


def _row(html: str, customer_id: str) -> str:
    start = html.index(f'data-customer="{customer_id}"')
    return html[start : html.index("</tr>", start)]


def _timeline_kinds(html: str) -> list[str]:
    return re.findall(r'data-kind="([a-z_]+)"', _element(html, "timeline", "</section>"))


async def test_pages_need_a_sign_in_and_the_cookie_is_httponly_and_lax(api: ApiHarness) -> None:
    csm = _csm()
    token = api.token(TokenRole.CSM, csm)
    async with api.client() as browser:
        first = await browser.get("/customers/anything?lang=en")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=/customers/anything%3Flang%3Den"
        form = await browser.get(first.headers["location"])
        assert 'name="token"' in form.text
        assert 'name="next" value="/customers/anything?lang=en"' in form.text

        ingest = await browser.post("/login", data={"token": api.token(TokenRole.INGEST)})
        assert ingest.status_code == 403
        assert "An ingest token only sends usage data" in ingest.text
        unknown = await browser.post("/login", data={"token": "lo_not-a-real-token"})
        assert unknown.status_code == 401
        assert "unknown or has been revoked" in unknown.text
        assert "lo_not-a-real-token" not in unknown.text
        assert SESSION_COOKIE not in browser.cookies

        # A `next` pointing at another site lands on the dashboard instead.
        signed_in = await browser.post(
            "/login", data={"token": token, "next": "//evil.example/phish"}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/"
        cookie = signed_in.headers["set-cookie"].lower()
        assert f"{SESSION_COOKIE}=" in cookie
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie

        home = await browser.get("/")
        assert home.status_code == 200
        assert home.headers["cache-control"] == "no-store"
        assert home.headers["x-frame-options"] == "DENY"
        assert "<h1>My customers</h1>" in home.text
        assert csm in home.text  # the signed-in person's name is shown in the top bar

        out = await browser.post("/logout")
        assert out.status_code == 303
        assert out.headers["location"] == "/login?signed_out=1"
        assert SESSION_COOKIE not in browser.cookies
        assert "You are signed out." in (await browser.get(out.headers["location"])).text
        assert (await browser.get("/")).status_code == 303


async def test_the_lists_put_stuck_and_stalled_customers_first_with_their_flags(
    api: ApiHarness,
) -> None:
    csm = _csm()
    fast = make_fast_playbook()
    kickoff = await _start(api, csm=csm, name="Waiting Kickoff KK")
    stuck = await _start(api, fast, csm=csm, name="No Data Yet KK", trial_used=True)
    stalled = await _start(api, fast, csm=csm, name="Barely Used KK", trial_used=True)
    other = await _start(api, csm=_csm(), name="Someone Else's KK")
    today = datetime.now(UTC).date()
    for customer in (stuck, stalled):
        await api.services.onboarding.record(customer, KickoffHeld(held_on=today))
    # One active user of ten seats: usage arrived, far below the stall rule (20%).
    add_usage(api.database, stalled, datetime.now(UTC), active_users=1)

    async def flagged() -> bool:
        a = await api.services.onboarding.status(stuck)
        b = await api.services.onboarding.status(stalled)
        written = reports.customer_timeline(
            api.database, customer_id=stalled, kinds=["stall_started"]
        )
        return a.state.setup.stuck and b.state.stall.stalled and bool(written)

    await eventually(
        flagged, what="the setup-stuck and stalled flags", timeout=WAIT_SECONDS, interval=0.2
    )

    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get("/")).text
    assert "1 stuck in setup" in page and "1 stalled" in page
    assert "Stuck in setup" in _row(page, stuck)
    assert "Stalled" in _row(page, stalled) and "Stuck in setup" not in _row(page, stalled)
    assert "flag-" not in _row(page, kickoff)
    adoption = _element(page, "stage-adoption", "</section>")
    assert adoption.index(stuck) < adoption.index(stalled)
    assert "Weekly measurement" in _row(page, stuck)  # the next timer the workflow waits for
    assert other not in page

    async with api.client(api.token(TokenRole.LEAD)) as lead:
        narrowed = (await lead.get("/", params={"csm": csm})).text
        assert "<h1>All customers</h1>" in narrowed
        assert all(c in narrowed for c in (kickoff, stuck, stalled)) and other not in narrowed
        assert f'<option value="{csm}" selected>' in narrowed

        customer = (await lead.get(f"/customers/{stalled}")).text
    assert 'class="flag flag-stalled"' in customer
    assert "<svg" in _element(customer, "measurement", "</section>")
    # The completion criterion and the stall rule on active seats, as the chart's lines.
    assert "≥ 60%" in customer and "&lt; 20%" in customer
    assert "stall_started" in _timeline_kinds(customer)


async def test_a_refused_action_shows_the_reason_by_its_form_and_keeps_what_was_typed(
    api: ApiHarness,
) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm)
    goal = "Halve the <paper> at reception"
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        refused = await browser.post(
            f"/customers/{customer}",
            data={"kind": "goal_agreed", "event_id": "dashboard-test-1", "goal": goal},
        )
        invalid = await browser.post(
            f"/customers/{customer}",
            data={"kind": "kickoff_held", "held_on": "", "goals": "Scan all post\nOne inbox"},
        )
    assert refused.status_code == 409
    form = _element(refused.text, "action-goal_agreed", "</details>")
    assert "Not recorded: goals are agreed at the kickoff: record the kickoff first" in form
    assert 'value="Halve the &lt;paper&gt; at reception"' in form
    assert 'value="dashboard-test-1"' in form  # a resend stays the same event
    assert " open>" in _element(refused.text, "action-goal_agreed", "<summary>")

    assert invalid.status_code == 422
    form = _element(invalid.text, "action-kickoff_held", "</details>")
    assert "Not recorded: please check the fields marked below." in form
    assert 'id="action-kickoff_held-held_on-error">Required.' in form
    assert ">Scan all post\nOne inbox</textarea>" in form

    status = await api.services.onboarding.status(customer)
    assert status.state.stage is Stage.KICKOFF and status.state.goals == []


async def test_a_megabyte_of_meeting_notes_is_refused_by_the_form_field(api: ApiHarness) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm)
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        refused = await browser.post(
            f"/customers/{customer}",
            data={
                "kind": "meeting_requested",
                "meeting": "customer_request",
                "notes": "x" * 1_000_000,
            },
        )
    assert refused.status_code == 422
    form = _element(refused.text, "action-meeting_requested", "</details>")
    assert 'id="action-meeting_requested-notes-error">Too long: at most 4000 characters.' in form
    status = await api.services.onboarding.status(customer)
    assert status.state.meetings == []


async def test_a_recorded_action_redirects_and_shows_on_the_timeline_once(
    api: ApiHarness,
) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm)
    form = {
        "kind": "kickoff_held",
        "event_id": "dashboard-kickoff-1",
        "held_on": datetime.now(UTC).date().isoformat(),
        "goals": "Every invoice scanned on arrival",
        "attendees": "Dana Boss\nAri Admin",
    }
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        recorded = await browser.post(f"/customers/{customer}", data=form)
        assert recorded.status_code == 303
        location = recorded.headers["location"]
        # The training stage offers no kickoff form: back to the actions panel, noted there.
        assert location == f"/customers/{customer}?done=kickoff_held#actions"
        page = (await browser.get(location)).text
        assert "Kickoff held: recorded, it is on the timeline." in page
        assert _timeline_kinds(page).count("kickoff_held") == 1
        assert "Every invoice scanned on arrival" in _element(page, "goals", "</section>")
        assert '<span class="stage stage-training">Training</span>' in page

        # A double submit (same form, same event id) is applied once.
        again = await browser.post(f"/customers/{customer}", data=form)
        assert again.headers["location"].endswith("duplicate=1#actions")
        page = (await browser.get(again.headers["location"])).text
        assert "Already recorded" in page
        assert _timeline_kinds(page).count("kickoff_held") == 1

        # The training stage opened a task; its form marks it done.
        status = await api.services.onboarding.status(customer)
        task = status.state.open_tasks[0]
        done = await browser.post(
            f"/customers/{customer}",
            data={"kind": "task_completed", "task_id": task.task_id, "note": "booked"},
        )
        assert done.status_code == 303
        page = (await browser.get(done.headers["location"])).text
        assert "task_completed" in _timeline_kinds(page)
        assert f'data-task="{task.task_id}"' not in page


async def test_a_paused_customer_shows_since_when_and_why_on_its_page_and_the_list(
    api: ApiHarness,
) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm, time_zone="UTC")
    today = datetime.now(UTC).date()
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get(f"/customers/{customer}")).text
        assert 'id="action-paused"' in page and 'id="action-resumed"' not in page
        paused = await browser.post(
            f"/customers/{customer}",
            data={"kind": "paused", "reason": "Budget <freeze>", "resume_on": ""},
        )
        assert paused.status_code == 303, paused.text
        page = (await browser.get(paused.headers["location"])).text
        flag = f"Paused since {today.isoformat()} (Budget &lt;freeze&gt;)"
        assert flag in page
        assert 'id="action-resumed"' in page and 'id="action-paused"' not in page
        assert "paused" in _timeline_kinds(page)
        japanese = (await browser.get(f"/customers/{customer}?lang=ja")).text
        assert f"{today.isoformat()} から一時停止中（Budget &lt;freeze&gt;）" in japanese

        await eventually(
            lambda: browser.get("/?lang=en"),
            lambda listed: flag in _row(listed.text, customer),
            what="the paused flag on the list",
            timeout=WAIT_SECONDS,
            interval=0.2,
        )
        resumed = await browser.post(f"/customers/{customer}", data={"kind": "resumed"})
        assert resumed.status_code == 303, resumed.text
        page = (await browser.get(resumed.headers["location"])).text
        assert "flag-paused" not in page and 'id="action-paused"' in page
    status = await api.services.onboarding.status(customer)
    assert status.state.pause is None and status.state.paused_seconds > 0


async def test_a_customers_page_shows_its_people_the_handoff_notes_and_meeting_notes(
    api: ApiHarness,
) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm, handoff_notes="Wants <b>invoices</b> digitised first")
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        await browser.post(
            f"/customers/{customer}",
            data={
                "kind": "meeting_requested",
                "meeting": "customer_request",
                "notes": "Asked for an API walkthrough",
            },
        )
        page = (await browser.get(f"/customers/{customer}?lang=ja")).text
    people = _element(page, "people", "</section>")
    assert 'data-contact="admin@acme.example"' in people
    assert "Ari Admin" in people and "管理者" in people
    # Escaped, as everything a person typed.
    assert "Wants &lt;b&gt;invoices&lt;/b&gt; digitised first" in people
    assert "顧客からの依頼" in people and "Asked for an API walkthrough" in people


async def test_japanese_by_query_then_cookie_or_by_accept_language(api: ApiHarness) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm)
    token = api.token(TokenRole.CSM, csm)
    async with api.client(token) as browser:
        chosen = await browser.get("/", params={"lang": "ja"})
        assert '<html lang="ja">' in chosen.text
        assert "<h1>担当顧客</h1>" in chosen.text
        assert "キックオフ" in chosen.text
        assert "liftoff_lang=ja" in chosen.headers["set-cookie"]
        remembered = await browser.get(f"/customers/{customer}")
        assert "タイムライン" in remembered.text and "対応を記録" in remembered.text
        # Stage changes read in Japanese too, not in the workflow's English.
        assert "引き継ぎ → キックオフ" in _element(remembered.text, "timeline", "</section>")
        back = await browser.get("/", params={"lang": "en"})
        assert "<h1>My customers</h1>" in back.text
    async with api.client(token) as browser:
        asked = await browser.get("/", headers={"Accept-Language": "fr-FR, ja;q=0.9, en;q=0.8"})
        assert "<h1>担当顧客</h1>" in asked.text
        default = await browser.get("/", headers={"Accept-Language": "fr-FR"})
        assert "<h1>My customers</h1>" in default.text


def test_times_read_on_the_zone_they_are_formatted_for() -> None:
    now = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)  # a Wednesday evening in UTC
    utc = Formatter(Translator("en"), now)
    assert utc.when(now) == "2026-11-25 20:30 UTC"
    tokyo = utc.in_zone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.when(now) == "2026-11-26 05:30 JST"
    assert tokyo.day(now) == "2026-11-26"  # already Thursday there
    assert tokyo.today() == date(2026, 11, 26) and utc.today() == date(2026, 11, 25)
    assert tokyo.clock() == "05:30 (Thu)"
    assert Formatter(Translator("ja"), now, ZoneInfo("Asia/Tokyo")).clock() == "05:30 (木)"
    new_york = utc.in_zone(ZoneInfo("America/New_York"))
    assert new_york.when(now) == "2026-11-25 15:30 EST"
    assert new_york.when(datetime(2026, 7, 1, 12, tzinfo=UTC)) == "2026-07-01 08:00 EDT"


async def test_a_customers_page_shows_times_on_the_customers_clock(api: ApiHarness) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm, time_zone="America/New_York")
    status = await api.services.onboarding.status(customer)
    since = status.state.stage_since
    assert since is not None
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get(f"/customers/{customer}")).text
    local = since.astimezone(ZoneInfo("America/New_York"))
    assert f"since {local:%Y-%m-%d %H:%M %Z}" in page
    assert local.strftime("%Z") in ("EST", "EDT")
    clock = _element(page, "local-time", "</div>")
    assert "America/New_York" in clock and "customer&#39;s local time" in clock
    # The timeline's entries carry the same clock.
    assert local.strftime("%Z") in _element(page, "timeline", "</section>")

    # The forms offer the customer's date: at UTC+14 it is tomorrow for most of a UTC day.
    far_east = await _start(api, csm=csm, time_zone="Pacific/Kiritimati")
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get(f"/customers/{far_east}")).text
    their_today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    kickoff = _element(page, "action-kickoff_held", "</details>")
    assert f'name="held_on" value="{their_today}"' in kickoff


async def test_purposes_are_named_and_offered_from_the_customers_own_playbook(
    api: ApiHarness,
) -> None:
    csm = _csm()
    shipped = make_playbook()
    # An older version: purpose A under another title, and only A and B in its catalogue.
    older = shipped.model_copy(
        update={
            "version": "2025.1",
            "purposes": [
                shipped.purposes[0].model_copy(update={"title": "Paperless invoices (v2025)"}),
                shipped.purposes[1],
            ],
        }
    )
    customer = await _start(api, older, csm=csm)
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        page = (await browser.get(f"/customers/{customer}")).text
    assert "A: Paperless invoices (v2025)" in _element(page, "goals", "</section>")
    offered = re.findall(
        r'<option value="(\w+)"', _element(page, "action-purpose_added", "</details>")
    )
    assert offered == [shipped.purposes[1].id]  # B; A is held, C to F are not in 2025.1


def test_every_task_kind_has_its_words() -> None:
    missing = [kind.value for kind in TaskKind if f"task_kind_{kind.value}" not in JA]
    assert missing == []


async def test_a_japanese_page_names_tasks_in_japanese_with_the_workflows_title_beneath(
    api: ApiHarness,
) -> None:
    csm = _csm()
    customer = await _start(api, csm=csm)
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        ja = (await browser.get(f"/customers/{customer}", params={"lang": "ja"})).text
        en = (await browser.get(f"/customers/{customer}", params={"lang": "en"})).text
    tasks = _element(ja, "tasks", "</section>")
    assert "キックオフミーティングを設定する" in tasks
    assert '<div class="muted small" lang="en">Schedule the kickoff meeting</div>' in tasks
    assert "キックオフミーティング" not in _element(en, "tasks", "</section>")


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    assert EN.keys() == JA.keys()
    for key, text in EN.items():
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", JA[key])), key


async def test_every_page_forbids_inline_script_and_style_and_uses_none(
    api: ApiHarness,
) -> None:
    csm = _csm()
    customer = await _start(api, make_fast_playbook(), csm=csm, trial_used=True)
    await api.services.onboarding.record(customer, KickoffHeld(held_on=datetime.now(UTC).date()))
    async with api.client(api.token(TokenRole.CSM, csm)) as browser:
        pages = {
            path: await browser.get(path)
            for path in ("/login", "/", f"/customers/{customer}", "/cohort", "/customers/nobody")
        }
    # A lead's lists carry the CSM filter as well.
    async with api.client(api.token(TokenRole.LEAD)) as lead:
        pages |= {
            f"lead {path}": await lead.get(path) for path in ("/", "/cohort", "/cohort/outcomes")
        }
    assert 'id="csm-filter"' in pages["lead /"].text
    for path, page in pages.items():
        policy = page.headers.get("content-security-policy", "")
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives.get("script-src") == "'self'", (path, policy)
        assert directives.get("style-src") == "'self'", (path, policy)
        assert directives.get("frame-ancestors") == "'none'", (path, policy)
        assert page.headers["x-content-type-options"] == "nosniff"
        # What the policy would block: inline script, style elements and attributes, handlers.
        html = page.text
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path


async def test_another_csms_customer_answers_as_an_unknown_one(api: ApiHarness) -> None:
    owner, intruder = _csm(), _csm()
    customer = await _start(api, csm=owner)
    async with api.client(api.token(TokenRole.CSM, intruder)) as browser:
        page = await browser.get(f"/customers/{customer}")
        assert page.status_code == 404
        assert "Customer not found" in page.text and "Acme Logistics" not in page.text
        post = await browser.post(
            f"/customers/{customer}",
            data={"kind": "cancelled", "reason": "not mine", "confirm": "on"},
        )
        assert post.status_code == 404
        missing = await browser.get("/customers/no-such-customer", params={"lang": "ja"})
        assert missing.status_code == 404
        assert "顧客が見つかりません" in missing.text
    status = await api.services.onboarding.status(customer)
    assert status.state.stage is Stage.KICKOFF


async def test_the_cohort_counts_the_funnel_and_time_in_stage(api: ApiHarness) -> None:
    csm = _csm()
    moved = await _start(api, csm=csm, trial_used=True)
    await _start(api, csm=csm)
    await api.services.onboarding.record(moved, KickoffHeld(held_on=datetime.now(UTC).date()))
    await api.settled(moved, timeout=WAIT_SECONDS)
    async with api.client(api.token(TokenRole.LEAD)) as lead:
        page = (await lead.get("/cohort", params={"csm": csm})).text

    def row(section: str, stage: str) -> list[str]:
        html = _element(page, section, "</section>")
        start = html.index(f'data-stage="{stage}"')
        cells = html[start : html.index("</tr>", start)]
        return [c.strip() for c in re.findall(r">([^<>]*)<", cells) if c.strip()]

    assert row("funnel", "kickoff") == ["Kickoff", "2", "1"]
    assert row("funnel", "adoption") == ["Adoption", "1", "1"]
    assert row("funnel", "onboarded") == ["Onboarded", "0", "0"]
    # The moved customer finished its kickoff stay; one is still in kickoff, one in adoption.
    kickoff_times = row("time-in-stage", "kickoff")
    assert kickoff_times[0] == "Kickoff" and kickoff_times[2] == "1" and kickoff_times[4] == "1"
    assert row("time-in-stage", "adoption")[-1] == "1"


async def test_static_files_are_local_and_cached_by_content(api: ApiHarness) -> None:
    async with api.client() as browser:
        page = (await browser.get("/login")).text
        sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css)[^"]*)"', page)
        assert len(sources) == 2 and all(s.startswith("/dashboard/static/") for s in sources)
        for source in sources:
            served = await browser.get(source)
            assert served.status_code == 200
            assert "immutable" in served.headers["cache-control"]
        # Only the listed files: not the package's other files next to them.
        assert (await browser.get("/dashboard/static/pages.py")).status_code == 404


async def test_a_lead_previews_then_moves_a_versions_customers_and_a_csm_may_not(
    api: ApiHarness,
) -> None:
    from records.playbook_versions import record_version

    old = make_playbook(version=f"old-{uuid.uuid4().hex[:6]}")
    new = old.model_copy(
        update={
            "version": f"new-{uuid.uuid4().hex[:6]}",
            "deadline": old.deadline + (old.deadline - old.momentum_after),
            "purposes": [p for p in old.purposes if p.id != "C"],
        }
    )
    for playbook in (old, new):
        record_version(api.services.database, playbook, f"{playbook.version}.toml")
    moves = await _start(api, old, csm=_csm())
    stays = await _start(api, old, csm=_csm(), purposes=["C"])
    ask = {"from": old.version, "to": new.version, "reason": "longer deadline <b>"}

    async with api.client(api.token(TokenRole.CSM, _csm())) as csm:
        assert (await csm.get("/playbooks")).status_code == 403
        assert (await csm.post("/playbooks/migrate", data=ask)).status_code == 403
    async with api.client(api.token(TokenRole.LEAD)) as lead:
        listing = (await lead.get("/playbooks")).text
        assert old.version in _element(listing, "versions", "</section>")
        bad = await lead.get("/playbooks", params={**ask, "to": "no-such"})
        assert bad.status_code == 422 and "Unknown version: no-such" in bad.text
        same = await lead.get("/playbooks", params={**ask, "to": old.version})
        assert same.status_code == 422

        preview = await lead.get("/playbooks", params=ask)
        assert preview.status_code == 200, preview.text
        assert "purpose C removed" in _element(preview.text, "differences", "</section>")
        assert "timer(s) re-based" in _row(preview.text, moves)
        assert f"version {new.version} has no purpose C" in _row(preview.text, stays)
        assert 'id="migrate-apply"' in preview.text and "Move 1 customer(s)" in preview.text
        assert (await api.services.onboarding.status(moves)).playbook_version == old.version

        applied = await lead.post("/playbooks/migrate", data=ask)
        assert applied.status_code == 200, applied.text
        assert f"1 moved to {new.version}, 1 refused" in applied.text
        assert (await api.services.onboarding.status(moves)).playbook_version == new.version
        assert (await api.services.onboarding.status(stays)).playbook_version == old.version
        page = (await lead.get(f"/customers/{moves}?lang=ja")).text
        assert f"プレイブック {old.version} → {new.version}" in page
        assert "longer deadline &lt;b&gt;" in page
        japanese = (await lead.get("/playbooks?lang=ja")).text
        assert "プレイブックのバージョン" in japanese
