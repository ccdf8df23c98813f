"""API tokens: stored hashed, shown once, refused once revoked, scoped by role."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import select

from models.tables import ApiToken
from records.database import Database
from records.tokens import (
    Principal,
    TokenError,
    TokenRole,
    authenticate,
    create_token,
    list_tokens,
    revoke_token,
)
from tests.support.api_harness import ApiHarness


def test_a_token_is_stored_only_as_its_hash_and_authenticates_until_revoked(
    database: Database,
) -> None:
    token, info = create_token(database, name="Yuki", role=TokenRole.CSM, csm="Yuki@CS.example")
    with database.session() as session:
        row = session.exec(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {row.name, row.prefix, row.token_hash}
    who = authenticate(database, token)
    assert who == Principal(
        token_id=info.id, name="Yuki", role=TokenRole.CSM, csm="yuki@cs.example"
    )
    assert authenticate(database, token + "x") is None
    assert authenticate(database, "not-a-token") is None

    revoke_token(database, info.id)
    assert authenticate(database, token) is None
    assert list_tokens(database)[0].revoked_at is not None


@pytest.mark.parametrize(
    ("role", "csm", "message"),
    [
        (TokenRole.CSM, None, "a csm token needs --csm EMAIL"),
        (TokenRole.CSM, "nope", "not an email address"),
        (TokenRole.LEAD, "a@b.example", "only a csm token names a CSM"),
    ],
)
def test_bad_token_requests_are_refused_and_store_nothing(
    sqlite_database: Database, role: TokenRole, csm: str | None, message: str
) -> None:
    with pytest.raises(TokenError, match=message):
        create_token(sqlite_database, name="x", role=role, csm=csm)
    assert list_tokens(sqlite_database) == []


def test_csm_principals_see_their_own_customers_only() -> None:
    csm = Principal(token_id=1, name="Yuki", role=TokenRole.CSM, csm="yuki@cs.example")
    assert csm.sees("Yuki@CS.example") and not csm.sees("ken@cs.example")
    lead = Principal(token_id=2, name="Ken", role=TokenRole.LEAD)
    assert lead.sees("anyone@cs.example")
    ingest = Principal(token_id=3, name="Segment", role=TokenRole.INGEST)
    assert not ingest.sees("yuki@cs.example")


async def test_the_app_serves_its_openapi_without_a_token(api: ApiHarness) -> None:
    async with api.client() as anonymous:
        schema = await anonymous.get("/openapi.json")
        assert schema.status_code == 200
        assert schema.json()["info"]["title"] == "Liftoff"


def test_last_use_is_recorded_at_most_once_a_minute(sqlite_database: Database) -> None:
    token, info = create_token(sqlite_database, name="Segment", role=TokenRole.INGEST)
    assert list_tokens(sqlite_database)[0].last_used_at is None
    authenticate(sqlite_database, token)
    first = list_tokens(sqlite_database)[0].last_used_at
    authenticate(sqlite_database, token)
    assert first is not None and list_tokens(sqlite_database)[0].last_used_at == first
