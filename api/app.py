"""The HTTP app: REST API, Segment-compatible usage intake, SendGrid webhook and dashboard.

Built by `create_app` from its services, so tests and the server wire it the same way.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from api import dashboard, intake
from api.routes import customers, tasks, webhooks
from api.services import Services
from client.errors import (
    CommandRejectedError,
    LiftoffClientError,
    OnboardingClosedError,
    UnknownCustomerError,
)

_STATUS = {
    UnknownCustomerError: status.HTTP_404_NOT_FOUND,
    OnboardingClosedError: status.HTTP_409_CONFLICT,
    CommandRejectedError: status.HTTP_409_CONFLICT,
}


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Liftoff",
        summary="Customer onboarding on Temporal: customers, CSM actions, tasks, usage intake",
        version="1",
    )
    app.state.services = services

    @app.exception_handler(LiftoffClientError)
    async def client_refusal(request: Request, err: LiftoffClientError) -> JSONResponse:
        # The client layer's refusals are sentences a CSM can act on: pass them on.
        code = _STATUS.get(type(err), status.HTTP_409_CONFLICT)
        return JSONResponse({"detail": str(err)}, status_code=code)

    app.include_router(customers.router)
    app.include_router(tasks.router)
    app.include_router(webhooks.router)
    app.include_router(intake.router)
    app.include_router(dashboard.router)
    return app
