"""Dashboard sessions: what the sign-in cookie stands for.

The cookie holds a random session id, never the API token: a stolen cookie dies
when its session ends (sign-out, expiry, or its token revoked), and the token a
person typed stays out of the browser after sign-in.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col

from models.tables import ApiToken, DashboardSession, utc_now
from records.database import Database
from records.tokens import Principal, TokenRole, secret_digest


def start_session(database: Database, who: Principal, *, lasts: timedelta) -> str:
    """A new session for the principal; returns the id to put in the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = utc_now()
    with database.session() as session:
        session.add(
            DashboardSession(
                id_hash=secret_digest(session_id),
                token_id=who.token_id,
                created_at=now,
                expires_at=now + lasts,
            )
        )
    return session_id


def session_principal(database: Database, session_id: str) -> Principal | None:
    """Who a session stands for, or None once it ended, expired or lost its token."""
    if not session_id or len(session_id) > 100:
        return None
    with database.session() as session:
        row = session.get(DashboardSession, secret_digest(session_id))
        if row is None or row.ended_at is not None or row.expires_at <= utc_now():
            return None
        token = session.get(ApiToken, row.token_id)
        if token is None or token.revoked_at is not None or token.id is None:
            return None
        return Principal(
            token_id=token.id, name=token.name, role=TokenRole(token.role), csm=token.csm
        )


def end_session(database: Database, session_id: str) -> None:
    """Sign-out: the session id is worthless from now on, wherever it was copied."""
    with database.session() as session:
        session.exec(
            update(DashboardSession)
            .where(col(DashboardSession.id_hash) == secret_digest(session_id))
            .where(col(DashboardSession.ended_at).is_(None))
            .values(ended_at=utc_now())
        )
