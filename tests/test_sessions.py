"""Dashboard sessions: the cookie is a session id, not the API token, and it dies with
sign-out, expiry or its token's revocation, wherever it was copied to."""

from __future__ import annotations

from datetime import timedelta

from api.deps import SESSION_COOKIE
from records.database import Database
from records.sessions import end_session, session_principal, start_session
from records.tokens import TokenRole, authenticate, create_token, revoke_token
from tests.support.api_harness import ApiHarness


async def _signed_in_cookie(api: ApiHarness, token: str) -> str:
    async with api.client() as browser:
        signed_in = await browser.post("/login", data={"token": token})
        assert signed_in.status_code == 303, signed_in.text
        return browser.cookies[SESSION_COOKIE]


async def test_the_cookie_holds_a_session_id_not_the_token(api: ApiHarness) -> None:
    token = api.token(TokenRole.LEAD)
    cookie = await _signed_in_cookie(api, token)
    assert token not in cookie and cookie not in token
    async with api.client() as browser:
        browser.cookies.set(SESSION_COOKIE, cookie)
        assert (await browser.get("/")).status_code == 200
        # The token itself in the cookie is not a session.
        browser.cookies.set(SESSION_COOKIE, token)
        assert (await browser.get("/")).status_code == 303


async def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    api: ApiHarness,
) -> None:
    cookie = await _signed_in_cookie(api, api.token(TokenRole.LEAD))
    async with api.client() as browser, api.client() as thief:
        browser.cookies.set(SESSION_COOKIE, cookie)
        thief.cookies.set(SESSION_COOKIE, cookie)
        assert (await thief.get("/")).status_code == 200
        signed_out = await browser.post("/logout", headers={"Origin": "http://liftoff.test"})
        assert signed_out.status_code == 303
        replayed = await thief.get("/")
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/login")


async def test_a_get_of_logout_only_asks_so_another_site_cannot_sign_a_csm_out(
    api: ApiHarness,
) -> None:
    # An <img src="/logout"> on any page the CSM visits sends this GET with the cookie.
    cookie = await _signed_in_cookie(api, api.token(TokenRole.CSM, "csm@liftoff.example"))
    async with api.client() as browser:
        browser.cookies.set(SESSION_COOKIE, cookie)
        asked = await browser.get("/logout", headers={"Referer": "https://evil.example/"})
        assert asked.status_code == 200
        assert '<form method="post" action="/logout"' in asked.text
        assert "Sign out of Liftoff on this browser?" in asked.text
        assert (await browser.get("/")).status_code == 200  # still signed in
        foreign = await browser.post("/logout", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert (await browser.get("/")).status_code == 200


async def test_revoking_the_token_ends_its_sessions(api: ApiHarness) -> None:
    token = api.token(TokenRole.CSM, "csm@liftoff.example")
    cookie = await _signed_in_cookie(api, token)
    who = authenticate(api.database, token)
    assert who is not None
    revoke_token(api.database, who.token_id)
    assert session_principal(api.database, cookie) is None


async def test_an_expired_session_is_refused(api: ApiHarness) -> None:
    who = authenticate(api.database, api.token(TokenRole.LEAD))
    assert who is not None
    expired = start_session(api.database, who, lasts=timedelta(seconds=-1))
    current = start_session(api.database, who, lasts=timedelta(hours=1))
    assert session_principal(api.database, expired) is None
    assert session_principal(api.database, current) == who


def test_sessions_start_end_and_expire_on_both_databases(database: Database) -> None:
    token, _ = create_token(database, name="lead", role=TokenRole.LEAD)
    who = authenticate(database, token)
    assert who is not None
    live = start_session(database, who, lasts=timedelta(hours=1))
    expired = start_session(database, who, lasts=timedelta(seconds=-1))
    assert session_principal(database, live) == who
    assert session_principal(database, expired) is None
    # Whatever a client puts in the cookie is only looked up, never trusted or stored.
    assert session_principal(database, "x" * 10_000) is None
    assert session_principal(database, "\x00") is None
    end_session(database, live)
    assert session_principal(database, live) is None
