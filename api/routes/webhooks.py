"""Routes: webhooks. SendGrid's event webhook, authenticated by its signature, not a token.

The signature covers the bytes as sent, so the body is read raw and handed to
`records.email_events.process_events` untouched; FastAPI never parses it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status

from api.deps import AppServices
from api.routes.customers import problem
from records.email_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventBatchReport,
    WebhookRejected,
    process_events,
    verify_signature,
)

router = APIRouter(tags=["webhooks"])

# Documented here because the body is read raw, so FastAPI cannot infer it.
_EVENT_BATCH_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": True},
                "description": "SendGrid events (sg_event_id, event, email, timestamp...), "
                "with the custom_args customer_id and ledger_key",
            }
        }
    },
}


@router.post(
    "/webhooks/sendgrid",
    summary="SendGrid's event webhook (signed; no API token)",
    openapi_extra={"requestBody": _EVENT_BATCH_BODY},
    responses={
        status.HTTP_400_BAD_REQUEST: problem("the body is not a JSON array of events"),
        status.HTTP_401_UNAUTHORIZED: problem("the signature headers are missing"),
        status.HTTP_403_FORBIDDEN: problem("the signature does not match, or is too old"),
    },
)
async def sendgrid_events(
    request: Request,
    services: AppServices,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
) -> EventBatchReport:
    raw_body = await request.body()
    key = services.webhook_public_key
    try:
        return await asyncio.to_thread(
            process_events,
            services.database,
            raw_body,
            signature=signature,
            timestamp=timestamp,
            public_key=key,
        )
    except WebhookRejected as err:
        code = await asyncio.to_thread(_rejection_status, key, raw_body, signature, timestamp)
        raise HTTPException(code, str(err)) from None


def _rejection_status(
    key: str | None, raw_body: bytes, signature: str | None, timestamp: str | None
) -> int:
    """Which 4xx a refused batch gets; only runs on the refusal path.

    WebhookRejected does not say which check failed, so the conditions it checks in
    order are re-read here: unsigned, then forged or stale, then an unreadable body.
    """
    if key is None:
        return status.HTTP_400_BAD_REQUEST  # unverified: only the body can be refused
    if not signature or not timestamp:
        return status.HTTP_401_UNAUTHORIZED
    if not verify_signature(key, raw_body, signature, timestamp):
        return status.HTTP_403_FORBIDDEN
    # Genuinely signed: either a replay past the allowed age, or a body that is not events.
    return status.HTTP_400_BAD_REQUEST if _unreadable(raw_body) else status.HTTP_403_FORBIDDEN


def _unreadable(raw_body: bytes) -> bool:
    try:
        return not isinstance(json.loads(raw_body), list)
    except ValueError:
        return True
