"""The HTTP app: REST API, Segment-compatible usage intake, SendGrid webhook and dashboard.

Built by `create_app` from its services, so tests and the server wire it the same way.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from temporalio.service import RPCError

from api import dashboard
from api.guards import DEFAULT_BODY_BYTES, BodyLimit, PlainUrl, SameOrigin, SecurityHeaders
from api.routes import (
    cohort,
    customers,
    health,
    opt_outs,
    outcomes,
    playbook_versions,
    surveys,
    tasks,
    usage,
    webhooks,
)
from api.services import Services
from client.codec import PayloadCodecError
from client.errors import (
    CommandRejectedError,
    LiftoffClientError,
    OnboardingClosedError,
    UnknownCustomerError,
)
from models.text import shorten
from records.usage.csv_import import MAX_CSV_BYTES
from records.usage.segment import MAX_BATCH_BYTES

# Of the input a validation error quotes back: enough to recognise it, however long it was.
SHOWN_INPUT_CHARS = 200


def _with_input_cut(error: dict[str, Any]) -> dict[str, Any]:
    if "input" not in error:
        return error
    shown = json.dumps(error["input"], ensure_ascii=True)
    if len(shown) <= SHOWN_INPUT_CHARS:
        return error
    return {**error, "input": shorten(shown, SHOWN_INPUT_CHARS)}


_STATUS = {
    UnknownCustomerError: status.HTTP_404_NOT_FOUND,
    OnboardingClosedError: status.HTTP_409_CONFLICT,
    CommandRejectedError: status.HTTP_409_CONFLICT,
}


def create_app(services: Services) -> FastAPI:
    # /docs and /redoc from files the app serves itself: FastAPI's default pages load
    # Swagger UI from a CDN, which an offline or locked-down network cannot reach.
    app = FastAPIOffline(
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

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, err: ValidationError) -> JSONResponse:
        # A model built inside a route (an event from path and body parts) refused its input.
        errors = err.errors(include_url=False, include_context=False, include_input=False)
        return JSONResponse(
            {"detail": jsonable_encoder(errors)},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> Response:
        # FastAPI's own answer, written as ASCII JSON: an input holding a lone surrogate
        # (a valid JSON escape that is no UTF-8) made the default answer fail with a 500.
        errors = [_with_input_cut(error) for error in jsonable_encoder(err.errors())]
        body = json.dumps({"detail": errors}, ensure_ascii=True)
        return Response(
            body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, media_type="application/json"
        )

    @app.exception_handler(PayloadCodecError)
    async def unreadable_payload(request: Request, err: PayloadCodecError) -> JSONResponse:
        # A deployment mistake, not the caller's: this server lacks a key its data needs,
        # or something wrote a payload no Liftoff process wrote.
        return JSONResponse(
            {"detail": f"this server cannot read the customer's data: {err}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.exception_handler(RPCError)
    async def temporal_unavailable(request: Request, err: RPCError) -> JSONResponse:
        # Temporal down or refusing: the request may succeed later, nothing was changed.
        return JSONResponse(
            {"detail": f"Temporal did not answer: {err.message}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    # Outermost last: the body limit sees the request before anything reads it.
    app.add_middleware(SecurityHeaders)
    app.add_middleware(PlainUrl)
    # A mail client's one-click unsubscribe names no origin and carries no cookie: the
    # signed token in the path is its authority (api/routes/opt_outs.py).
    app.add_middleware(SameOrigin, exempt=("/u/",))
    app.add_middleware(
        BodyLimit,
        default=DEFAULT_BODY_BYTES,
        limits={
            # A backstop: the intake routes refuse with Segment's own limits first.
            "/v1/": 2 * MAX_BATCH_BYTES,
            # The CSV file plus its multipart envelope.
            "/api/usage/csv": MAX_CSV_BYTES + 64 * 1024,
            # SendGrid posts events in batches; a busy hour's batch stays well inside.
            "/webhooks/": 10 * DEFAULT_BODY_BYTES,
            # A survey answer's comment form (4,000 characters, URL-encoded).
            "/s/": surveys.BODY_BYTES,
            # A one-click unsubscribe or the preference page's checkboxes.
            "/u/": opt_outs.BODY_BYTES,
        },
    )
    app.include_router(customers.router)
    app.include_router(playbook_versions.router)
    app.include_router(cohort.router)
    app.include_router(tasks.router)
    app.include_router(webhooks.router)
    app.include_router(usage.router)
    app.include_router(outcomes.router)
    app.include_router(surveys.router)
    app.include_router(surveys.api_router)
    app.include_router(opt_outs.router)
    app.include_router(dashboard.router)
    app.include_router(health.router)
    return app
