"""API tokens: created once, stored as a hash, checked on every request.

The same store backs the CLI (`liftoff token create|list|revoke`) and the app.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import update
from sqlmodel import col, select

from models.handoff import Email
from models.tables import ApiToken, utc_now
from records.database import Database

TOKEN_PREFIX = "lo_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRole(StrEnum):
    # Acts on its own customers (the token's CSM) only.
    CSM = "csm"
    # A CS leader: sees and acts on every customer.
    LEAD = "lead"
    # CS operations: every customer, and the tokens themselves.
    OPS = "ops"
    # Sends usage only (the Segment write key).
    INGEST = "ingest"


class Principal(BaseModel):
    """Who a request acts for."""

    token_id: int
    name: str
    role: TokenRole
    csm: str | None = None

    def sees(self, customer_csm: str | None) -> bool:
        """Whether this principal may read and act on a customer of `customer_csm`."""
        if self.role in (TokenRole.LEAD, TokenRole.OPS):
            return True
        if self.role is TokenRole.CSM:
            return customer_csm is not None and customer_csm.lower() == (self.csm or "")
        return False


class TokenInfo(BaseModel):
    id: int
    name: str
    role: TokenRole
    csm: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenError(ValueError):
    """A token request that cannot be honoured; the message says why."""


def secret_digest(secret: str) -> str:
    """What is stored of a random secret (a token, a session id): 256 random bits leave
    nothing to guess, so a fast hash is enough."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    database: Database, *, name: str, role: TokenRole, csm: str | None = None
) -> tuple[str, TokenInfo]:
    """A new token; the plain token is returned here and never again."""
    name = name.strip()
    if not name:
        raise TokenError("a token needs a name, e.g. the person or system that uses it")
    if role is TokenRole.CSM:
        if not csm:
            raise TokenError("a csm token needs --csm EMAIL: the CSM whose customers it sees")
        try:
            csm = TypeAdapter(Email).validate_python(csm)
        except ValidationError:
            raise TokenError(f"not an email address: {csm!r}") from None
    elif csm:
        raise TokenError(f"only a csm token names a CSM, not a {role.value} token")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        role=role.value,
        csm=csm,
        token_hash=secret_digest(token),
        prefix=token[:10],
        created_at=utc_now(),
    )
    with database.session() as session:
        session.add(row)
        session.flush()
        info = _info(row)
    return token, info


def list_tokens(database: Database) -> list[TokenInfo]:
    with database.session() as session:
        rows = session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()
        return [_info(row) for row in rows]


def revoke_token(database: Database, token_id: int) -> TokenInfo:
    with database.session() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise TokenError(f"no token with id {token_id}")
        if row.revoked_at is None:
            row.revoked_at = utc_now()
            session.add(row)
            session.flush()
        return _info(row)


def authenticate(database: Database, token: str) -> Principal | None:
    """The principal a presented token stands for, or None if unknown or revoked."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = secret_digest(token)
    with database.session() as session:
        row = session.exec(select(ApiToken).where(col(ApiToken.token_hash) == digest)).first()
        if row is None or row.revoked_at is not None or row.id is None:
            return None
        now = utc_now()
        # At most one write a minute per token: a busy intake must not pay a write per batch.
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            session.exec(
                update(ApiToken).where(col(ApiToken.id) == row.id).values(last_used_at=now)
            )
        return Principal(token_id=row.id, name=row.name, role=TokenRole(row.role), csm=row.csm)


def _info(row: ApiToken) -> TokenInfo:
    if row.id is None:
        raise RuntimeError("token row without id")
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=TokenRole(row.role),
        csm=row.csm,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
