"""The REST API against a real worker on the local dev server: every endpoint, who may
call it, what bad input gets back, and a small journey from handoff to adoption."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from client.onboarding import OnboardingClient
from models.onboarding import OnboardingStatus
from records.email_events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from records.tokens import TokenRole
from testkit.factories import make_handoff, make_playbook
from tests.support.api_harness import BASE_URL, CSM, LEADER, OTHER_CSM, ApiHarness
from tests.support.eventually import eventually
from tests.support.sendgrid import Signer, sg_event

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
UNKNOWN_ID = "never-started"

# Every route behind a token, with a body it would accept.
PROTECTED: list[tuple[str, str, Any]] = [
    ("POST", "/api/customers", make_handoff(customer_id="auth-probe").model_dump(mode="json")),
    ("GET", "/api/customers", None),
    ("GET", f"/api/customers/{UNKNOWN_ID}", None),
    ("GET", f"/api/customers/{UNKNOWN_ID}/timeline", None),
    ("POST", f"/api/customers/{UNKNOWN_ID}/events", {"kind": "goal_agreed", "goal": "Go live"}),
    ("PUT", f"/api/customers/{UNKNOWN_ID}/overrides", {"overrides": {}, "reason": "r"}),
    ("GET", "/api/tasks", None),
    ("POST", f"/api/customers/{UNKNOWN_ID}/tasks/{UNKNOWN_ID}-1/done", {"note": "done"}),
    ("POST", "/api/playbook-versions/none/pause", {"reason": "freeze"}),
    ("GET", "/api/playbook-versions", None),
    ("GET", "/api/playbook-versions/a/diff/b", None),
    ("POST", "/api/playbook-versions/none/migrate", {"all": True, "reason": "r"}),
]


def handoff_json(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = make_handoff(**overrides).model_dump(mode="json")
    return fields


async def start(client: httpx.AsyncClient, **overrides: Any) -> str:
    handoff = handoff_json(**overrides)
    response = await client.post("/api/customers", json=handoff)
    assert response.status_code == 201, response.text
    customer_id: str = handoff["customer_id"]
    return customer_id


async def listed(client: httpx.AsyncClient, **params: Any) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/customers", params=params)
    assert response.status_code == 200, response.text
    return {row["customer_id"]: row for row in response.json()}


async def settled(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    """The status once the onboarding has begun (it looks up the holidays first) and
    the worker has written every record the workflow queued."""

    async def status() -> dict[str, Any]:
        response = await client.get(f"/api/customers/{customer_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return await eventually(
        status,
        lambda s: s["state"]["started_at"] is not None and s["pending_side_effects"] == 0,
        what=f"{customer_id} settled",
    )


# Authentication and roles


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_every_route_needs_a_valid_token(
    api: ApiHarness, method: str, path: str, body: Any
) -> None:
    async with api.client() as anonymous, api.client("lo_not-a-real-token") as forged:
        for client in (anonymous, forged):
            response = await client.request(method, path, json=body)
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"] == "Bearer"
            assert "API token is required" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_an_ingest_token_only_sends_usage(
    api: ApiHarness, method: str, path: str, body: Any
) -> None:
    async with api.client(api.token(TokenRole.INGEST)) as ingest:
        response = await ingest.request(method, path, json=body)
    assert response.status_code == 403, response.text
    assert "ingest tokens cannot do this" in response.json()["detail"]


async def test_docs_and_schema_are_open_and_list_every_endpoint(api: ApiHarness) -> None:
    async with api.client() as anonymous:
        docs = await anonymous.get("/docs")
        schema = (await anonymous.get("/openapi.json")).json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Swagger UI comes from the app itself, so /docs works where no CDN is reachable.
    assets = re.findall(
        r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+\.(?:js|css|png))['"]""", docs.text
    )
    assert len(assets) >= 2 and all(asset.startswith("/") for asset in assets), assets
    async with api.client() as anonymous:
        for asset in assets:
            assert (await anonymous.get(asset)).status_code == 200, asset
    operations = {
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    }
    assert {
        ("POST", "/api/customers"),
        ("GET", "/api/customers"),
        ("GET", "/api/customers/{customer_id}"),
        ("GET", "/api/customers/{customer_id}/timeline"),
        ("POST", "/api/customers/{customer_id}/events"),
        ("GET", "/api/tasks"),
        ("POST", "/api/customers/{customer_id}/tasks/{task_id}/done"),
        ("POST", "/webhooks/sendgrid"),
    } <= operations
    # The webhook is authenticated by its signature, everything else by a bearer token.
    webhook = schema["paths"]["/webhooks/sendgrid"]["post"]
    assert "security" not in webhook
    assert schema["paths"]["/api/tasks"]["get"]["security"] == [{"HTTPBearer": []}]


async def test_a_csm_acts_on_their_own_customers_only(api: ApiHarness) -> None:
    async with api.as_csm(CSM) as csm, api.as_csm(OTHER_CSM) as other, api.as_lead() as lead:
        mine = await start(csm, csm=CSM)
        theirs = await start(lead, csm=OTHER_CSM)

        # Starting a customer for another CSM, or "restarting" theirs, is refused.
        refused = await csm.post("/api/customers", json=handoff_json(csm=OTHER_CSM))
        assert refused.status_code == 403
        assert OTHER_CSM in refused.json()["detail"]
        hijack = await csm.post("/api/customers", json=handoff_json(customer_id=theirs, csm=CSM))
        assert hijack.status_code == 409
        assert "already in use" in hijack.json()["detail"]
        assert OTHER_CSM not in hijack.json()["detail"]

        for method, path, body in [
            ("GET", f"/api/customers/{theirs}", None),
            ("GET", f"/api/customers/{theirs}/timeline", None),
            ("POST", f"/api/customers/{theirs}/events", {"kind": "goal_agreed", "goal": "x"}),
            ("POST", f"/api/customers/{theirs}/tasks/{theirs}-1/done", None),
        ]:
            kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body}
            response = await csm.request(method, path, **kwargs)
            # Exactly as a customer never started: a CSM cannot probe others' ids.
            unknown = await csm.request(method, path.replace(theirs, "never-started"), **kwargs)
            assert response.status_code == unknown.status_code == 404, (path, response.text)
            assert response.json()["detail"].replace(theirs, "?") == unknown.json()[
                "detail"
            ].replace("never-started", "?")
        listing_theirs = await csm.get("/api/customers", params={"csm": OTHER_CSM})
        assert listing_theirs.status_code == 403
        assert (await csm.get(f"/api/customers/{mine}")).status_code == 200
        assert (await other.get(f"/api/customers/{theirs}")).status_code == 200

        # The listing of a CSM is forced to their own customers; a lead sees all.
        both = await eventually(
            lambda: listed(lead),
            lambda rows: {mine, theirs} <= rows.keys(),
            what="both customers listed for the lead",
        )
        assert both[mine]["csm"] == CSM and both[theirs]["csm"] == OTHER_CSM
        own = await listed(csm)
        assert mine in own and theirs not in own
        assert {row["csm"] for row in own.values()} == {CSM}
        assert mine in await listed(csm, csm=CSM.upper())

        # Tasks: each CSM sees those of their own customers; the lead sees both.
        await settled(lead, mine)
        await settled(lead, theirs)
        csm_tasks = {t["customer_id"] for t in (await csm.get("/api/tasks")).json()}
        lead_tasks = {t["customer_id"] for t in (await lead.get("/api/tasks")).json()}
        assert mine in csm_tasks and theirs not in csm_tasks
        assert {mine, theirs} <= lead_tasks
        asked = await csm.get("/api/tasks", params={"customer": theirs})
        assert asked.status_code == 200 and asked.json() == []


async def test_a_lead_may_act_on_any_customer(api: ApiHarness) -> None:
    async with api.as_csm(OTHER_CSM) as other, api.as_lead() as lead:
        customer = await start(other, csm=OTHER_CSM)
        status = await lead.get(f"/api/customers/{customer}")
        assert status.status_code == 200 and status.json()["csm"] == OTHER_CSM
        meeting = await lead.post(
            f"/api/customers/{customer}/events", json={"kind": "meeting_requested"}
        )
        assert meeting.status_code == 200, meeting.text
        assert meeting.json()["kind"] == "meeting_requested"
    async with api.client(api.token(TokenRole.OPS)) as ops:
        assert (await ops.get(f"/api/customers/{customer}")).status_code == 200


async def test_a_lead_pauses_and_resumes_a_playbook_version_and_a_csm_may_not(
    api: ApiHarness,
) -> None:
    version = api.services.playbook.version
    async with api.as_lead() as lead, api.as_csm(CSM) as csm:
        cohort = [await start(lead, csm=CSM) for _ in range(2)]
        for customer in cohort:
            await api.past_handoff(customer)
        pause = f"/api/playbook-versions/{version}/pause"
        refused = await csm.post(pause, json={"reason": "playbook freeze"})
        assert refused.status_code == 403, refused.text
        empty = await lead.post(pause, json={"reason": ""})
        assert empty.status_code == 422, empty.text

        resume_on = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        paused = await lead.post(pause, json={"reason": "playbook freeze", "resume_on": resume_on})
        assert paused.status_code == 200, paused.text
        answers = {answer["customer_id"]: answer for answer in paused.json()}
        assert answers.keys() == set(cohort)
        assert all(answer["result"]["kind"] == "paused" for answer in answers.values())
        for customer in cohort:
            detail = await settled(lead, customer)
            assert detail["state"]["pause"]["reason"] == "playbook freeze"
            assert detail["next_due"]["kind"] == "resume"

        # One customer by the CSM, through the events route every kind goes through.
        first = f"/api/customers/{cohort[0]}/events"
        assert (await csm.post(first, json={"kind": "resumed"})).status_code == 200
        again = await csm.post(first, json={"kind": "resumed"})
        assert again.status_code == 409 and "not paused" in again.json()["detail"]
        await settled(lead, cohort[0])
        resumed = await lead.post(f"/api/playbook-versions/{version}/resume")
        assert resumed.status_code == 200, resumed.text
        assert [answer["customer_id"] for answer in resumed.json()] == [cohort[1]]
        assert (await settled(lead, cohort[1]))["state"]["pause"] is None


# Starting customers


async def test_a_start_is_idempotent_and_the_customer_is_listed(api: ApiHarness) -> None:
    async with api.as_lead() as lead:
        handoff = handoff_json(csm=CSM, cs_leader=LEADER)
        first = await lead.post("/api/customers", json=handoff)
        again = await lead.post("/api/customers", json=handoff)
        customer_id = handoff["customer_id"]

        assert first.status_code == 201
        assert first.json()["already_running"] is False
        assert first.json()["workflow_id"] == f"onboarding-{customer_id}"
        assert again.status_code == 200
        assert again.json()["already_running"] is True
        assert again.json()["run_id"] == first.json()["run_id"]

        rows = await eventually(
            lambda: listed(lead, stage="kickoff", csm=CSM),
            lambda rows: customer_id in rows,
            what="the new customer in kickoff",
        )
        row = rows[customer_id]
        assert (row["stage"], row["csm"], row["stalled"], row["setup_stuck"]) == (
            "kickoff",
            CSM,
            False,
            False,
        )
        assert customer_id in await listed(lead, stalled=False, stuck=False)
        assert customer_id not in await listed(lead, stuck=True)
        assert customer_id not in await listed(lead, stage="adoption")


async def test_a_bad_handoff_gets_422_naming_each_field(api: ApiHarness) -> None:
    handoff = handoff_json(csm=CSM)
    handoff.update(
        seats_contracted=0, cs_leader="not-an-email", time_zone="Mars/Olympus", country="XX"
    )
    del handoff["name"]
    async with api.as_lead() as lead:
        response = await lead.post("/api/customers", json=handoff)
    assert response.status_code == 422
    problems = {tuple(item["loc"]): item["msg"] for item in response.json()["detail"]}
    assert problems.keys() == {
        ("body", "seats_contracted"),
        ("body", "cs_leader"),
        ("body", "time_zone"),
        ("body", "country"),
        ("body", "name"),
    }
    assert "not an email address" in problems["body", "cs_leader"]
    assert "unknown time zone" in problems["body", "time_zone"]
    assert "unknown country 'XX'" in problems["body", "country"]


async def test_control_characters_in_text_get_422_and_nothing_starts(api: ApiHarness) -> None:
    # A NUL cannot be stored in PostgreSQL text: the customer's first write would retry forever.
    handoff = handoff_json()
    handoff["name"] = "Acme\x00Logistics"
    async with api.as_lead() as lead:
        response = await lead.post("/api/customers", json=handoff)
        status = await lead.get(f"/api/customers/{handoff['customer_id']}")
    assert response.status_code == 422
    assert "control character" in response.json()["detail"][0]["msg"]
    assert status.status_code == 404


async def test_a_purpose_the_playbook_lacks_gets_422_and_nothing_starts(api: ApiHarness) -> None:
    handoff = handoff_json(purposes=["A", "Z"])
    async with api.as_lead() as lead:
        response = await lead.post("/api/customers", json=handoff)
        status = await lead.get(f"/api/customers/{handoff['customer_id']}")
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "purposes"]
    assert problem["input"] == ["Z"]
    assert problem["msg"].startswith("unknown purpose(s) Z: the playbook offers A, B")
    assert status.status_code == 404


async def test_an_ended_onboarding_refuses_a_new_start_and_events(api: ApiHarness) -> None:
    async with api.as_lead() as lead:
        handoff = handoff_json()
        customer_id = handoff["customer_id"]
        assert (await lead.post("/api/customers", json=handoff)).status_code == 201
        cancelled = await lead.post(
            f"/api/customers/{customer_id}/events",
            json={"kind": "cancelled", "reason": "contract ended"},
        )
        assert cancelled.status_code == 200 and cancelled.json()["stage"] == "cancelled"

        async def restart() -> httpx.Response:
            return await lead.post("/api/customers", json=handoff)

        # The workflow returns once its last records are written.
        refused = await eventually(
            restart, lambda r: r.status_code != 200, what="the workflow to close"
        )
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"the onboarding of {customer_id!r} has already ended (cancelled)"
        )
        late = await lead.post(
            f"/api/customers/{customer_id}/events", json={"kind": "goal_agreed", "goal": "x"}
        )
        assert late.status_code == 409
        assert "has already ended (cancelled)" in late.json()["detail"]


# Reading and recording


async def test_an_unknown_customer_is_404_everywhere(api: ApiHarness) -> None:
    async with api.as_lead() as lead, api.as_csm() as csm:
        for client in (lead, csm):
            for method, path, body in PROTECTED[2:]:
                if "/api/customers/" not in path:
                    continue
                response = await client.request(method, path, json=body)
                assert response.status_code == 404, (path, response.text)
                assert response.json()["detail"] == (
                    f"unknown customer {UNKNOWN_ID!r}: no onboarding was started for it"
                )
        bad_id = await lead.get("/api/customers/has spaces")
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["loc"] == ["path", "customer_id"]


async def test_events_out_of_order_get_409_with_the_workflows_reason(api: ApiHarness) -> None:
    async with api.as_csm() as csm:
        customer_id = await start(csm)
        review = await csm.post(
            f"/api/customers/{customer_id}/events",
            json={
                "kind": "completion_review_held",
                "held_on": YESTERDAY,
                "success_confirmed": True,
            },
        )
        training = await csm.post(
            f"/api/customers/{customer_id}/events",
            json={"kind": "training_held", "held_on": YESTERDAY},
        )
        unknown_task = await csm.post(f"/api/customers/{customer_id}/tasks/nope-1/done")
        status = await csm.get(f"/api/customers/{customer_id}")
    assert review.status_code == 409
    assert review.json()["detail"] == (
        "the completion review comes once the completion criteria are met; "
        "the customer is in kickoff"
    )
    assert training.status_code == 409
    assert training.json()["detail"] == (
        "the training comes after the kickoff: record the kickoff first"
    )
    assert unknown_task.status_code == 409
    assert unknown_task.json()["detail"] == "no open task 'nope-1' for this customer"
    # Refused updates never entered history: nothing changed.
    assert status.json()["state"]["stage"] == "kickoff"


async def test_a_malformed_event_gets_422_naming_the_problem(api: ApiHarness) -> None:
    async with api.as_csm() as csm:
        customer_id = await start(csm)
        path = f"/api/customers/{customer_id}/events"
        no_kind = await csm.post(path, json={"held_on": YESTERDAY})
        bad_kind = await csm.post(path, json={"kind": "party_held"})
        no_date = await csm.post(path, json={"kind": "kickoff_held", "goals": ["x"]})
        bad_nps = await csm.post(
            path,
            json={
                "kind": "completion_review_held",
                "held_on": YESTERDAY,
                "success_confirmed": True,
                "nps": [{"email": "taro@acme.example", "score": 11}],
            },
        )
        not_json = await csm.post(
            path, content=b"{kickoff", headers={"Content-Type": "application/json"}
        )
    for response in (no_kind, bad_kind, no_date, bad_nps, not_json):
        assert response.status_code == 422, response.text
    assert no_kind.json()["detail"][0]["type"] == "union_tag_not_found"
    assert bad_kind.json()["detail"][0]["type"] == "union_tag_invalid"
    assert no_date.json()["detail"][0]["loc"] == ["body", "kickoff_held", "held_on"]
    assert no_date.json()["detail"][0]["msg"] == "Field required"
    assert bad_nps.json()["detail"][0]["loc"] == [
        "body",
        "completion_review_held",
        "nps",
        0,
        "score",
    ]
    assert not_json.json()["detail"][0]["type"] == "json_invalid"


async def test_a_megabyte_of_notes_gets_422_naming_the_field_and_the_customer_goes_on(
    api: ApiHarness,
) -> None:
    async with api.as_csm() as csm:
        customer_id = await start(csm)
        await api.past_handoff(customer_id)
        response = await csm.post(
            f"/api/customers/{customer_id}/events",
            json={"kind": "meeting_requested", "notes": "x" * 1_000_000},
        )
        assert response.status_code == 422
        problem = response.json()["detail"][0]
        assert problem["loc"] == ["body", "meeting_requested", "notes"]
        assert problem["type"] == "string_too_long"
        customer = await csm.get(f"/api/customers/{customer_id}")
    assert customer.json()["state"]["stage"] == "kickoff"
    assert customer.json()["state"]["meetings"] == []


async def test_a_journey_from_handoff_to_adoption(api: ApiHarness) -> None:
    async with api.as_csm() as csm:
        customer_id = await start(csm, purposes=["A"])
        base = f"/api/customers/{customer_id}"

        requested = await csm.post(
            f"{base}/events",
            json={"kind": "meeting_requested", "meeting": "customer_request", "notes": "demo"},
        )
        assert requested.status_code == 200, requested.text
        opened = await settled(csm, customer_id)
        meeting = next(t for t in opened["state"]["open_tasks"] if t["kind"] == "meeting")

        done = await csm.post(
            f"{base}/tasks/{meeting['task_id']}/done", json={"note": "demo given on a call"}
        )
        assert done.status_code == 200, done.text
        assert done.json()["kind"] == "task_completed"

        kickoff = await csm.post(
            f"{base}/events",
            json={"kind": "kickoff_held", "held_on": YESTERDAY, "goals": ["Scan all invoices"]},
        )
        assert kickoff.status_code == 200, kickoff.text
        assert kickoff.json() == {
            "kind": "kickoff_held",
            "stage": "training",
            "duplicate": False,
            "detail": "training",
        }
        training = await csm.post(
            f"{base}/events", json={"kind": "training_held", "held_on": YESTERDAY}
        )
        assert training.json()["stage"] == "adoption"

        status = await settled(csm, customer_id)
        assert status["state"]["stage"] == "adoption"
        assert [goal["text"] for goal in status["state"]["goals"]] == ["Scan all invoices"]
        assert status["state"]["purposes"] == ["A"]
        # Adoption put the first weekly measurement on the agenda.
        assert "measure" in {due["kind"] for due in status["state"]["agenda"]}
        assert status["next_due"] is not None
        # Every task opened went to the CSM by email, through the send ledger.
        to_csm = {e["ledger_key"]: e["status"] for e in status["emails"] if e["recipient"] == CSM}
        assert {f"task:{customer_id}-1", f"task:{meeting['task_id']}"} <= to_csm.keys()
        assert set(to_csm.values()) == {"sent"}

        timeline = (await csm.get(f"{base}/timeline")).json()
        stages = [
            (row["details"]["from"], row["details"]["to"])
            for row in timeline
            if row["kind"] == "transition"
        ]
        assert stages == [
            (None, "handoff"),
            ("handoff", "kickoff"),
            ("kickoff", "training"),
            ("training", "adoption"),
        ]
        kickoff_row = next(row for row in timeline if row["kind"] == "kickoff_held")
        assert kickoff_row["details"]["recorded_by"] == CSM
        only = (await csm.get(f"{base}/timeline", params={"kind": "transition"})).json()
        assert [row["kind"] for row in only] == ["transition"] * 4

        tasks = (
            await csm.get("/api/tasks", params={"customer": customer_id, "state": "all"})
        ).json()
        by_id = {task["task_id"]: task for task in tasks}
        assert by_id[meeting["task_id"]]["state"] == "done"
        assert by_id[meeting["task_id"]]["resolution"] == "demo given on a call"
        # The stage's own tasks closed as the stage ended.
        resolutions = {t["kind"]: t["resolution"] for t in tasks if t["kind"] != "meeting"}
        assert resolutions == {
            "schedule_kickoff": "stage kickoff ended",
            "schedule_training": "stage training ended",
        }

        async def ids(**params: str) -> set[str]:
            response = await csm.get("/api/tasks", params={"customer": customer_id, **params})
            return {task["task_id"] for task in response.json()}

        done_ids = {t["task_id"] for t in tasks if t["state"] == "done"}
        assert await ids(state="done") == done_ids
        assert await ids() == await ids(state="open") == by_id.keys() - done_ids
        assert by_id.keys() <= await ids(assignee=CSM, state="all")
        assert await ids(assignee=OTHER_CSM, state="all") == set()


async def test_the_timeline_of_a_customer_just_started_is_empty_or_growing(
    api: ApiHarness,
) -> None:
    async with api.as_lead() as lead:
        customer_id = await start(lead)
        early = await lead.get(f"/api/customers/{customer_id}/timeline")
        # Either the worker has written the first entries already or not yet: never a 404.
        assert early.status_code == 200, early.text

        async def timeline() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = (
                await lead.get(f"/api/customers/{customer_id}/timeline")
            ).json()
            return rows

        def stages_entered(rows: list[dict[str, Any]]) -> list[str]:
            return [row["details"]["to"] for row in rows if row["kind"] == "transition"]

        later = await eventually(
            timeline,
            lambda rows: stages_entered(rows)[:2] == ["handoff", "kickoff"],
            what="the handoff and the kickoff on the timeline",
        )
    # What the CSM saw at first is where the timeline starts: it only grows, oldest first.
    assert later[: len(early.json())] == early.json()
    assert [row["seq"] for row in later] == sorted(row["seq"] for row in later)


async def test_a_misspelt_timeline_kind_is_refused_naming_the_kinds(api: ApiHarness) -> None:
    async with api.as_lead() as lead:
        customer_id = await start(lead)
        refused = await lead.get(
            f"/api/customers/{customer_id}/timeline", params={"kind": ["transition", "bogus"]}
        )
    assert refused.status_code == 422
    assert "'bogus'" in refused.json()["detail"]
    assert "weekly_measurement" in refused.json()["detail"]


# SendGrid's event webhook


def webhook_client(api: ApiHarness, public_key: str | None) -> httpx.AsyncClient:
    app = create_app(dataclasses.replace(api.services, webhook_public_key=public_key))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


def signed(signer: Signer, body: bytes, *, age: timedelta = timedelta(0)) -> dict[str, str]:
    timestamp = str(int((datetime.now(UTC) - age).timestamp()))
    return {
        SIGNATURE_HEADER: signer.sign(timestamp, body),
        TIMESTAMP_HEADER: timestamp,
        "Content-Type": "application/json",
    }


async def test_a_signed_webhook_batch_shows_in_the_customers_emails(api: ApiHarness) -> None:
    signer = Signer.generate()
    async with api.as_csm() as csm, webhook_client(api, signer.public_key) as sendgrid:
        customer_id = await start(csm)
        status = await eventually(
            lambda: settled(csm, customer_id),
            lambda s: bool(s["emails"]),
            what="the kickoff task email in the ledger",
        )
        email = status["emails"][0]
        assert email["last_event"] is None
        events = [
            sg_event("delivered", customer_id, email=CSM, ledger_key=email["ledger_key"]),
            sg_event("open", "someone-else", email=CSM),
            {"event": "click"},
        ]
        body = json.dumps(events).encode()
        # No API token: the signature is the authentication.
        response = await sendgrid.post(
            "/webhooks/sendgrid", content=body, headers=signed(signer, body)
        )
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["received"], report["recorded"], report["unmatched"]) == (3, 1, 1)
        assert [index for index, _ in report["rejected"]] == [2]

        again = await sendgrid.post(
            "/webhooks/sendgrid", content=body, headers=signed(signer, body)
        )
        assert again.json()["duplicates"] == 2

        after = (await csm.get(f"/api/customers/{customer_id}")).json()
        fate = next(e for e in after["emails"] if e["ledger_key"] == email["ledger_key"])
        assert fate["last_event"] == "delivered"
        assert [event["event"] for event in fate["events"]] == ["delivered"]


async def test_a_webhook_batch_not_signed_by_sendgrid_is_refused(api: ApiHarness) -> None:
    signer, impostor = Signer.generate(), Signer.generate()
    body = json.dumps([sg_event("delivered", "acme", email=CSM)]).encode()
    async with webhook_client(api, signer.public_key) as sendgrid:
        unsigned = await sendgrid.post("/webhooks/sendgrid", content=body)
        forged = await sendgrid.post(
            "/webhooks/sendgrid", content=body, headers=signed(impostor, body)
        )
        tampered = await sendgrid.post(
            "/webhooks/sendgrid",
            content=body.replace(b"delivered", b"bounce"),
            headers=signed(signer, body),
        )
        stale = await sendgrid.post(
            "/webhooks/sendgrid", content=body, headers=signed(signer, body, age=timedelta(days=2))
        )
        garbage = b'{"not": "a list"}'
        signed_garbage = await sendgrid.post(
            "/webhooks/sendgrid", content=garbage, headers=signed(signer, garbage)
        )
    assert unsigned.status_code == 401
    assert unsigned.json()["detail"].startswith("unsigned batch")
    for refused in (forged, tampered):
        assert refused.status_code == 403
        assert refused.json()["detail"] == "the signature does not match the body"
    assert stale.status_code == 403 and "refused as a replay" in stale.json()["detail"]
    assert signed_garbage.status_code == 400
    assert signed_garbage.json()["detail"] == "the body is not a JSON array of events"


async def test_without_a_key_webhook_events_are_taken_unverified(api: ApiHarness) -> None:
    async with webhook_client(api, None) as sendgrid:
        body = json.dumps([sg_event("delivered", None, email=CSM, ledger_key=None)]).encode()
        taken = await sendgrid.post("/webhooks/sendgrid", content=body)
        not_json = await sendgrid.post("/webhooks/sendgrid", content=b"<xml/>")
    assert taken.status_code == 200
    assert taken.json()["received"] == 1 and taken.json()["unmatched"] == 1
    assert not_json.status_code == 400
    assert not_json.json()["detail"].startswith("the body is not JSON")


async def test_a_listing_filter_temporal_cannot_read_gets_422(api: ApiHarness) -> None:
    async with api.as_lead() as lead:
        nul = await lead.get("/api/customers", params={"csm": "a\x00@b.example"})
        not_email = await lead.get("/api/customers", params={"csm": "nobody"})
        quoted = await lead.get("/api/customers", params={"csm": "o'brien\\@b.example"})
        bad_stage = await lead.get("/api/customers", params={"stage": "party"})
    # A NUL reaches the visibility store's SQL and fails there: refused before any
    # route, as every URL holding a control character is (api/guards.PlainUrl).
    assert nul.status_code == 400
    assert "control character" in nul.json()["detail"]
    assert not_email.status_code == 422
    assert "not an email address" in not_email.json()["detail"][0]["msg"]
    # Quotes and backslashes are escaped in the query: a valid filter matching nobody.
    assert quoted.status_code == 200 and quoted.json() == []
    assert bad_stage.status_code == 422
    assert bad_stage.json()["detail"][0]["loc"] == ["query", "stage"]


class _TemporalDown(OnboardingClient):
    async def status(self, customer_id: str) -> OnboardingStatus:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")


async def test_temporal_unavailable_is_503_with_retry_after(api: ApiHarness) -> None:
    down = dataclasses.replace(api.services, onboarding=_TemporalDown(api.temporal, "unused"))
    app = create_app(down)
    token = api.token(TokenRole.LEAD)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers={"Authorization": f"Bearer {token}"}
    ) as lead:
        response = await lead.get("/api/customers/acme")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "connection refused" in response.json()["detail"]


async def test_a_task_id_or_note_the_event_refuses_gets_422_not_500(api: ApiHarness) -> None:
    async with api.as_lead() as lead:
        customer_id = await start(lead)
        response = await lead.post(
            f"/api/customers/{customer_id}/tasks/{customer_id}-1/done",
            json={"note": "called\x07them"},
        )
    assert response.status_code == 422
    assert "control character" in response.json()["detail"][0]["msg"]


async def test_a_lead_lists_diffs_and_migrates_a_playbook_version_a_csm_may_not(
    api: ApiHarness,
) -> None:
    from records.playbook_versions import record_version

    current = api.services.playbook
    later = current.model_copy(
        update={
            "version": f"{current.version}-later",
            "deadline": current.deadline + timedelta(days=7),
        }
    )
    record_version(api.services.database, later, "later.toml")
    base = "/api/playbook-versions"
    async with api.as_lead() as lead, api.as_csm(CSM) as csm:
        customer = await start(lead, csm=CSM)  # records the server's playbook
        await settled(lead, customer)
        assert (await csm.get(base)).status_code == 403
        listed_versions = {row["version"]: row for row in (await lead.get(base)).json()}
        assert listed_versions[current.version]["ongoing"] >= 1
        assert listed_versions[later.version]["source"] == "later.toml"

        diff = await lead.get(f"{base}/{current.version}/diff/{later.version}")
        assert diff.status_code == 200, diff.text
        assert (
            f"deadline: {current.deadline.days} days → {current.deadline.days + 7} days"
            in (diff.json()["differences"])
        )
        missing = await lead.get(f"{base}/{current.version}/diff/nope")
        assert missing.status_code == 404 and "no playbook version 'nope'" in missing.text

        migrate = f"{base}/{later.version}/migrate"
        body = {"customers": [customer, UNKNOWN_ID], "reason": "a week more"}
        assert (await csm.post(migrate, json=body)).status_code == 403
        for bad in ({**body, "all": True}, {**body, "reason": ""}, {**body, "surprise": 1}):
            assert (await lead.post(migrate, json=bad)).status_code == 422, bad
        preview = await lead.post(migrate, json=body)
        assert preview.status_code == 200, preview.text
        plans = {plan["customer_id"]: plan for plan in preview.json()}
        assert [t["kind"] for t in plans[customer]["timers"]] == ["deadline"]
        assert "unknown customer" in plans[UNKNOWN_ID]["refused"]
        assert (await settled(lead, customer))["playbook_version"] == current.version

        applied = await lead.post(migrate, json={**body, "dry_run": False})
        assert applied.status_code == 200, applied.text
        moved = await settled(lead, customer)
        assert moved["playbook_version"] == later.version
        timeline = (await lead.get(f"/api/customers/{customer}/timeline")).json()
        assert any(entry["kind"] == "playbook_migrated" for entry in timeline)


async def test_a_version_never_recorded_gets_404_where_a_route_selects_customers_by_it(
    api: ApiHarness,
) -> None:
    from records.playbook_versions import record_version

    record_version(api.services.database, api.services.playbook, "api")
    base = "/api/playbook-versions"
    asks: list[tuple[str, str, Any]] = [
        ("POST", f"{base}/2026.1/pause", {"reason": "freeze"}),
        ("POST", f"{base}/2026.1/resume", None),
        ("GET", f"{base}/2026.1/review?format=md", None),
        ("GET", "/api/outcomes/analysis?playbook_version=2026.1", None),
        ("GET", "/api/outcomes/analysis.csv?playbook_version=2026.1", None),
        (
            "POST",
            f"{base}/{api.services.playbook.version}/migrate",
            {"from_version": "2026.1", "reason": "r"},
        ),
    ]
    async with api.as_lead() as lead:
        for method, path, body in asks:
            response = await lead.request(method, path, json=body)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["detail"].startswith("no playbook version '2026.1' was recorded")
        # Recorded, and no customer on it: an empty cohort, not an error.
        record_version(api.services.database, make_playbook(version="2026.1"), "2026.1.toml")
        for method, path, body in asks:
            response = await lead.request(method, path, json=body)
            assert response.status_code == 200, (path, response.text)
        assert (await lead.post(f"{base}/2026.1/pause", json={"reason": "x"})).json() == []


async def test_a_start_whose_playbook_version_was_recorded_with_other_content_gets_409(
    api: ApiHarness,
) -> None:
    from records.playbook_versions import record_version

    current = api.services.playbook
    edited = current.model_copy(update={"deadline": current.deadline + timedelta(days=1)})
    record_version(api.services.database, edited, "edited.toml")
    handoff = handoff_json()
    async with api.as_lead() as lead:
        response = await lead.post("/api/customers", json=handoff)
        assert response.status_code == 409, response.text
        assert response.json()["detail"] == (
            f"playbook version {current.version!r} was already recorded with different "
            "content: bump `version` in this playbook"
        )
        unknown = await lead.get(f"/api/customers/{handoff['customer_id']}")
        assert unknown.status_code == 404


async def test_a_lone_surrogate_in_a_body_gets_422_not_500(api: ApiHarness) -> None:
    """JSON may escape half a UTF-16 pair, which no UTF-8 text holds: FastAPI's default
    answer failed writing it back."""
    body = json.dumps(handoff_json()).replace('"Acme', '"\\ud800Acme', 1)
    async with api.as_lead() as lead:
        response = await lead.post(
            "/api/customers", content=body, headers={"Content-Type": "application/json"}
        )
        event = await lead.post(
            "/api/customers/acme/events",
            content='{"kind": "goal_agreed", "goal": "\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
        # An email address passed its pattern with one, then failed being sent on (500).
        contact = await lead.post(
            "/api/customers/acme/events",
            content='{"kind": "contact_added", "contact": {"email": "\\udcff@x.example", '
            '"name": "B", "role": "end_user"}}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 422, response.text
    assert event.status_code == 422, event.text
    assert contact.status_code == 422, contact.text
    assert "only printable characters" in contact.text
    assert response.json()["detail"]
