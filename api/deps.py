"""Request dependencies: the app's services and who is asking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.services import Services
from records.sessions import session_principal
from records.tokens import Principal, TokenRole, authenticate

# The dashboard's session id lives in this cookie (HttpOnly); the API takes a Bearer token.
SESSION_COOKIE = "liftoff_session"

_bearer = HTTPBearer(auto_error=False, description="An API token from `liftoff token create`")


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain function in the thread pool, where it would wait
    # behind every route blocked on the database (the readiness probe included).
    found: Services = request.app.state.services
    return found


def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    found: Annotated[Services, Depends(services)],
) -> Principal | None:
    if credentials:
        return authenticate(found.database, credentials.credentials)
    session_id = request.cookies.get(SESSION_COOKIE)
    return session_principal(found.database, session_id) if session_id else None


def principal(
    who: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if who is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid API token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return who


def require(*roles: TokenRole) -> Callable[[Principal], Principal]:
    """A dependency admitting only the given roles."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in roles:
            allowed = ", ".join(role.value for role in roles)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{who.role.value} tokens cannot do this (allowed: {allowed})",
            )
        return who

    return check


# The people who work with customers: everything but usage-only tokens.
Staff = Annotated[Principal, Depends(require(TokenRole.CSM, TokenRole.LEAD, TokenRole.OPS))]
AppServices = Annotated[Services, Depends(services)]
