"""Usage intake in the Segment tracking API's format, CSV back-fills, and what went unmatched.

A product instrumented with a Segment library only changes its host: the write
key (an ingest token) arrives as the HTTP Basic user name, calls as Segment's
JSON. This module reads, limits and authenticates requests; records/usage/
maps and stores.

Like Segment's API, a request that was read answers 200 with `"success": true`,
here with a report of what was stored, rejected and unmatched (the first 100 of
each listed, all counted); a body that is not JSON or not a batch answers 400, one
over Segment's size limits or a batch of more than 5,000 calls 413.
"""

from __future__ import annotations

import json
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from starlette.datastructures import UploadFile
from starlette.types import Message

import observability.metrics as metrics
from api.deps import SESSION_COOKIE, AppServices, require
from records.sessions import session_principal
from records.tokens import Principal, TokenRole, authenticate
from records.usage.csv_import import MAX_CSV_BYTES, ingest_usage_csv
from records.usage.rejected import (
    DEFAULT_REJECTED_LIMIT,
    RejectedSummary,
    record_refused_request,
    rejected_summary,
    shown,
)
from records.usage.segment import (
    MAX_BATCH_BYTES,
    MAX_BATCH_CALLS,
    MAX_CALL_BYTES,
    CallType,
    ingest_calls,
)
from records.usage.store import IntakeError, IntakeReport
from records.usage.unmatched import DEFAULT_UNMATCHED_LIMIT, UnmatchedSummary, unmatched_summary

router = APIRouter(tags=["usage intake"])

# Who may send usage: the write key, and the people who back-fill and look after it.
SENDERS = (TokenRole.INGEST, TokenRole.OPS, TokenRole.LEAD)
CSV_FIELD = "file"
MAX_UNMATCHED_LIMIT = 500
MAX_UNMATCHED_DAYS = 366

_basic = HTTPBasic(
    auto_error=False,
    realm="Liftoff usage intake",
    description="The write key (an ingest token) as user name, no password, as Segment sends it",
)
_bearer = HTTPBearer(auto_error=False, description="An ingest, ops or lead token")


# A reply lists the first rejected and unmatched calls or rows; its counts cover all.
MAX_LISTED = 100


class IntakeResponse(IntakeReport):
    success: bool = True
    rejected_count: int = 0
    unmatched_count: int = 0


def _reply(report: IntakeReport) -> IntakeResponse:
    return IntakeResponse(
        **report.model_dump(exclude={"rejected", "unmatched"}),
        rejected=report.rejected[:MAX_LISTED],
        unmatched=report.unmatched[:MAX_LISTED],
        rejected_count=len(report.rejected),
        unmatched_count=len(report.unmatched),
    )


def _sender(
    token: str | None, services: AppServices, session: Principal | None = None
) -> Principal:
    if not token and session is not None:
        who: Principal | None = session
    elif not token:
        _count_refused(services)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send the write key (a token from `liftoff token create --role ingest`) as the "
            "HTTP Basic user name with an empty password, or as Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Basic realm="Liftoff usage intake"'},
        )
    else:
        who = authenticate(services.database, token)
    if who is None:
        _count_refused(services)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked write key",
            headers={"WWW-Authenticate": 'Basic realm="Liftoff usage intake"'},
        )
    if who.role not in SENDERS:
        _count_refused(services)
        allowed = ", ".join(role.value for role in SENDERS)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a {who.role.value} token cannot send usage ({allowed} tokens can)",
        )
    return who


def _count_refused(services: AppServices) -> None:
    """A request refused for its key: counted (a source whose key was revoked shows on
    the intake alert), not kept, since anyone can send one."""
    metrics.count(services.metrics, metrics.INTAKE_EVENTS, {"result": "refused_request"})


def usage_sender(
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    services: AppServices,
) -> Principal:
    """A write key as Segment's libraries send it (Basic), or a Bearer token."""
    token = basic.username if basic else bearer.credentials if bearer else None
    return _sender(token, services)


def csv_sender(
    request: Request,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    services: AppServices,
) -> Principal:
    """As usage_sender, and the dashboard's session cookie (a lead back-filling from a form)."""
    token = basic.username if basic else bearer.credentials if bearer else None
    cookie = request.cookies.get(SESSION_COOKIE)
    session = session_principal(services.database, cookie) if cookie and not token else None
    return _sender(token, services, session)


UsageSender = Annotated[Principal, Depends(usage_sender)]


# Reading a body within Segment's limits


BATCH_HINT = ", as in Segment's API: send fewer calls per batch"
CALL_HINT = ", as in Segment's API: send fewer properties or traits"
CSV_HINT = ": split the file, or import it with `liftoff usage import`"


def _too_large(limit: int, what: str, hint: str) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"{what} may be at most {limit // 1024} KB ({limit} bytes){hint}",
    )


async def _read_body(request: Request, limit: int, what: str, hint: str) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, what, hint)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, what, hint)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {shown(encoding)} is not supported: send gzip or no encoding",
        )
    # Segment's libraries may gzip; the limit holds for what the body inflates to.
    inflater = zlib.decompressobj(wbits=31)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"the gzip body is corrupt: {err}"
        ) from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise _too_large(limit, what, hint)
    if not inflater.eof:
        # Cut short: without its trailer, its checksum was never compared.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the gzip body is truncated")
    return inflated


def _not_json(constant: str) -> Any:
    # Python's json module takes NaN and Infinity; JSON (and PostgreSQL) does not.
    raise ValueError(f"{constant} is not a JSON value")


def _json(body: bytes) -> Any:
    if not body.strip():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is empty: send a JSON object")
    try:
        return json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError) as err:
        # UnicodeDecodeError is a ValueError too.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the body is not JSON: {err}") from None


async def _kept(
    services: AppServices, request: Request, refused: HTTPException, body: bytes = b""
) -> HTTPException:
    """A refused request, kept for operators (Segment's clients discard the reply)."""
    metrics.count(services.metrics, metrics.INTAKE_EVENTS, {"result": "refused_request"})
    await run_in_threadpool(
        record_refused_request,
        services.database,
        endpoint=request.url.path[:32],
        reason=str(refused.detail),
        body=body,
    )
    return refused


def _count(services: AppServices, report: IntakeReport) -> None:
    """Each call or row in exactly one result, as the report counts them."""
    accepted = report.stored + report.duplicates + report.mapped + report.ignored
    for result, value in (
        ("accepted", accepted),
        ("rejected", len(report.rejected)),
        ("unmatched", len(report.unmatched)),
    ):
        metrics.count(services.metrics, metrics.INTAKE_EVENTS, {"result": result}, value)


async def _json_body(
    request: Request, services: AppServices, limit: int, what: str, hint: str
) -> tuple[bytes, Any]:
    """The body within the limit and its JSON; a refusal is kept before it is raised."""
    body = b""
    try:
        body = await _read_body(request, limit, what, hint)
        return body, _json(body)
    except HTTPException as refused:
        raise await _kept(services, request, refused, body) from None


_CALL_EXAMPLES: dict[CallType, dict[str, Any]] = {
    CallType.TRACK: {
        "userId": "u-17",
        "event": "document_scanned",
        "properties": {"quantity": 3},
        "context": {"groupId": "acme"},
        "timestamp": "2026-01-20T10:00:00+09:00",
        "messageId": "0f8c9a2e-5c1b-4f7e-9d1a-3b2c4d5e6f70",
    },
    CallType.IDENTIFY: {"userId": "u-17", "traits": {"company_id": "acme", "email": "u@a.example"}},
    CallType.GROUP: {"userId": "u-17", "groupId": "acme", "traits": {"name": "Acme"}},
    CallType.PAGE: {"userId": "u-17", "name": "Invoices"},
}


def _body_doc(example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "additionalProperties": True},
                    "example": example,
                }
            },
        }
    }


async def _single(request: Request, services: AppServices, call_type: CallType) -> IntakeResponse:
    body, payload = await _json_body(request, services, MAX_CALL_BYTES, "a single call", CALL_HINT)
    if not isinstance(payload, dict):
        not_a_call = HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"expected a JSON object: one {call_type.value} call",
        )
        raise await _kept(services, request, not_a_call, body)
    report = await run_in_threadpool(
        ingest_calls,
        services.database,
        [payload],
        customer_trait=services.customer_trait,
        implied_type=call_type,
    )
    _count(services, report)
    if report.rejected:
        # One call that could not be taken is the client's error, said plainly
        # (ingest_calls has kept it for operators).
        raise HTTPException(status.HTTP_400_BAD_REQUEST, report.rejected[0].reason)
    return _reply(report)


@router.post(
    "/v1/track",
    openapi_extra=_body_doc(_CALL_EXAMPLES[CallType.TRACK]),
    response_model_exclude_none=True,
)
async def track(request: Request, _: UsageSender, services: AppServices) -> IntakeResponse:
    """A usage event: stored for the customer its group id or its user names."""
    return await _single(request, services, CallType.TRACK)


@router.post(
    "/v1/identify",
    openapi_extra=_body_doc(_CALL_EXAMPLES[CallType.IDENTIFY]),
    response_model_exclude_none=True,
)
async def identify(request: Request, _: UsageSender, services: AppServices) -> IntakeResponse:
    """Ties the user to the customer its customer trait (company_id by default) names."""
    return await _single(request, services, CallType.IDENTIFY)


@router.post(
    "/v1/group",
    openapi_extra=_body_doc(_CALL_EXAMPLES[CallType.GROUP]),
    response_model_exclude_none=True,
)
async def group(request: Request, _: UsageSender, services: AppServices) -> IntakeResponse:
    """Ties the user to the customer the group id names."""
    return await _single(request, services, CallType.GROUP)


@router.post(
    "/v1/page",
    openapi_extra=_body_doc(_CALL_EXAMPLES[CallType.PAGE]),
    response_model_exclude_none=True,
)
async def page(request: Request, _: UsageSender, services: AppServices) -> IntakeResponse:
    """Accepted and counted, not stored: page views are not usage here."""
    return await _single(request, services, CallType.PAGE)


_BATCH_EXAMPLE = {
    "batch": [
        {"type": "identify", **_CALL_EXAMPLES[CallType.IDENTIFY]},
        {"type": "track", **_CALL_EXAMPLES[CallType.TRACK]},
    ]
}


@router.post("/v1/batch", openapi_extra=_body_doc(_BATCH_EXAMPLE), response_model_exclude_none=True)
async def batch(request: Request, _: UsageSender, services: AppServices) -> IntakeResponse:
    """Calls of any type, applied in order; the good ones are stored, the bad ones reported."""
    body, payload = await _json_body(request, services, MAX_BATCH_BYTES, "a batch", BATCH_HINT)
    calls = payload.get("batch") if isinstance(payload, dict) else None
    if not isinstance(calls, list):
        not_a_batch = HTTPException(
            status.HTTP_400_BAD_REQUEST,
            'not a batch: expected {"batch": [{"type": "track", ...}, ...]}',
        )
        raise await _kept(services, request, not_a_batch, body)
    if len(calls) > MAX_BATCH_CALLS:
        too_many = HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a batch may hold at most {MAX_BATCH_CALLS:,} calls: send fewer calls per batch",
        )
        raise await _kept(services, request, too_many, body)
    context = payload.get("context")
    report = await run_in_threadpool(
        ingest_calls,
        services.database,
        calls,
        customer_trait=services.customer_trait,
        batch_context=context if isinstance(context, dict) else None,
        # A request within one call's limit cannot hold a call over it.
        max_call_bytes=MAX_CALL_BYTES if len(body) > MAX_CALL_BYTES else None,
    )
    _count(services, report)
    return _reply(report)


_CSV_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [CSV_FIELD],
                    "properties": {CSV_FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post("/api/usage/csv", openapi_extra=_CSV_DOC, response_model_exclude_none=True)
async def upload_usage_csv(
    request: Request,
    _: Annotated[Principal, Depends(csv_sender)],
    services: AppServices,
) -> IntakeResponse:
    """A back-fill: the CSV `liftoff usage import` reads, uploaded as the form field `file`.

    Columns customer_id, user_id, event, occurred_at, and optionally quantity and
    event_key. Rejected rows are reported with their line numbers.
    """
    # The form is read here, after authentication, and only within the limit.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CSV_BYTES:
        raise await _kept(services, request, _too_large(MAX_CSV_BYTES, "a CSV upload", CSV_HINT))
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > MAX_CSV_BYTES:  # a chunked upload declares no length
            raise _too_large(MAX_CSV_BYTES, "a CSV upload", CSV_HINT)
        return message

    limited = Request(request.scope, receive_within_limit)
    try:
        async with limited.form(max_files=1, max_fields=1) as form:
            upload = form.get(CSV_FIELD)
            if not isinstance(upload, UploadFile):
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST,
                    f"send the CSV file as the multipart form field {CSV_FIELD!r}",
                )
            try:
                report = await run_in_threadpool(ingest_usage_csv, services.database, upload.file)
            except IntakeError as err:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from None
    except HTTPException as refused:
        raise await _kept(services, request, refused) from None
    _count(services, report)
    return _reply(report)


@router.get("/api/intake/unmatched")
def list_unmatched(
    _: Annotated[Principal, Depends(require(TokenRole.LEAD, TokenRole.OPS))],
    services: AppServices,
    limit: Annotated[int, Query(ge=1, le=MAX_UNMATCHED_LIMIT)] = DEFAULT_UNMATCHED_LIMIT,
    days: Annotated[int, Query(ge=1, le=MAX_UNMATCHED_DAYS)] = 7,
) -> UnmatchedSummary:
    """Intake that named no known customer: counts by reason and group id, and the newest calls."""
    return unmatched_summary(services.database, days=days, limit=limit)


@router.get("/api/intake/rejected")
def list_rejected(
    _: Annotated[Principal, Depends(require(TokenRole.LEAD, TokenRole.OPS))],
    services: AppServices,
    limit: Annotated[int, Query(ge=1, le=MAX_UNMATCHED_LIMIT)] = DEFAULT_REJECTED_LIMIT,
    days: Annotated[int, Query(ge=1, le=MAX_UNMATCHED_DAYS)] = 7,
) -> RejectedSummary:
    """Intake refused (bad calls, CSV rows, whole requests): counts by reason, and the newest.

    One row per reason per request, with the first refused call cut to 1,000
    characters; only the newest 10,000 rows of the last 30 days are kept.
    """
    return rejected_summary(services.database, days=days, limit=limit)
