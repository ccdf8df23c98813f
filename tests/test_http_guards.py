"""Every route of the HTTP app: bodies capped before they are read, and the headers a
browser needs on API answers and the API docs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.deps import SESSION_COOKIE
from api.guards import DEFAULT_BODY_BYTES
from records.tokens import TokenRole
from tests.support.api_harness import ApiHarness

CHUNK = 64 * 1024


class CountingBody:
    """A request body of `size` bytes that counts how much of it the server pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.size:
            self.pulled += CHUNK
            yield b" " * CHUNK


@pytest.mark.parametrize("path", ["/api/customers", "/webhooks/sendgrid", "/login"])
async def test_a_body_declared_too_large_is_refused_before_any_of_it_is_read(
    api: ApiHarness, path: str
) -> None:
    body = CountingBody(300 * 1024 * 1024)
    async with api.as_lead() as lead:
        refused = await lead.post(
            path,
            content=body,
            headers={"Content-Length": str(body.size), "Content-Type": "application/json"},
        )
    assert refused.status_code == 413, refused.text
    assert "may be at most" in refused.json()["detail"]
    assert body.pulled <= CHUNK


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(api: ApiHarness) -> None:
    body = CountingBody(300 * 1024 * 1024)
    async with api.as_lead() as lead:
        # No Content-Length: httpx sends an async body chunked.
        refused = await lead.post(
            "/api/customers", content=body, headers={"Content-Type": "application/json"}
        )
    assert refused.status_code == 413, refused.text
    assert body.pulled <= DEFAULT_BODY_BYTES + 2 * CHUNK


async def test_api_answers_and_the_docs_carry_the_browser_safety_headers(
    api: ApiHarness,
) -> None:
    async with api.as_lead() as lead:
        listed = await lead.get("/api/customers")
        docs = await lead.get("/docs")
    assert listed.status_code == 200
    assert listed.headers["X-Content-Type-Options"] == "nosniff"
    assert listed.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert listed.headers["Cache-Control"] == "no-store"
    assert docs.status_code == 200
    assert docs.headers["X-Content-Type-Options"] == "nosniff"
    assert docs.headers["X-Frame-Options"] == "DENY"


async def test_a_cookie_post_from_another_origin_is_refused_and_one_from_the_app_is_not(
    api: ApiHarness,
) -> None:
    token = api.token(TokenRole.LEAD)
    form = {"kind": "meeting_requested", "meeting": "customer_request", "notes": "x"}
    async with api.client() as browser:
        signed_in = await browser.post("/login", data={"token": token})
        assert SESSION_COOKIE in browser.cookies, signed_in.text
        foreign = await browser.post(
            "/customers/acme", data=form, headers={"Origin": "http://liftoff.test:9999"}
        )
        foreign_referer = await browser.post(
            "/api/usage/csv", headers={"Referer": "http://evil.example/page"}
        )
        own = await browser.post(
            "/customers/acme", data=form, headers={"Origin": "http://liftoff.test"}
        )
    assert foreign.status_code == 403
    assert "another origin" in foreign.json()["detail"]
    assert foreign_referer.status_code == 403
    # Past the origin check: the dashboard itself answers (no such customer).
    assert own.status_code == 404


async def test_a_token_in_the_authorization_header_is_not_an_ambient_credential(
    api: ApiHarness,
) -> None:
    async with api.as_lead() as lead:
        answered = await lead.post(
            "/api/customers/acme/events",
            json={"kind": "cancelled", "reason": "test"},
            headers={"Origin": "http://elsewhere.example"},
        )
    # Not refused as cross-origin: the customer simply does not exist.
    assert answered.status_code == 404, answered.text


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/playbook-versions/%00/review"),
        ("GET", "/api/playbook-versions/a%00/diff/b"),
        ("POST", "/api/playbook-versions/%00/pause"),
        ("GET", "/api/nps?csm=a%00@x.y"),
        ("GET", "/cohort?csm=a%00@b.c"),
        ("GET", "/?csm=line%0Abreak"),
        ("GET", "/api/customers/acme%7F"),
    ],
)
async def test_a_url_with_a_control_character_is_refused_before_any_route(
    api: ApiHarness, method: str, url: str
) -> None:
    # PostgreSQL answers a NUL in a filter or an id with an error: these had been 500s.
    async with api.as_lead() as lead:
        refused = await lead.request(method, url, json={"reason": "x"})
    assert refused.status_code == 400, refused.text
    assert "control character" in refused.json()["detail"]


async def test_a_url_with_non_ascii_text_and_a_tab_still_reaches_its_route(api: ApiHarness) -> None:
    async with api.as_lead() as lead:
        answered = await lead.get("/api/nps", params={"csm": "さくら\t@example.com"})
    assert answered.status_code == 200, answered.text


async def test_a_refused_value_is_quoted_back_cut_short(api: ApiHarness) -> None:
    async with api.as_lead() as lead:
        refused = await lead.get("/api/nps", params={"csm": "a" * 60_000})
    assert refused.status_code == 422
    assert len(refused.content) < 2_000
    [error] = refused.json()["detail"]
    assert error["input"].startswith('"aaaa') and error["input"].endswith("…")
