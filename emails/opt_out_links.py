"""Unsubscribe links: one per message, naming its contact and its email category.

The token carries customer, address and category, signed by itsdangerous's
`URLSafeTimedSerializer` as survey score links are (emails/survey_links.py), with the
same secret (`LIFTOFF_SURVEY_SECRET`) under a salt of its own, so neither kind of link
can stand for the other. The link is its own credential: the one-click POST a mail
client sends (RFC 8058) carries no cookie and names no origin, and the preference page
needs no sign-in. A link is valid `limits.OPT_OUT_LINK_DAYS`.

The worker signs (the mail activity, per recipient), `liftoff serve` verifies.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emails.survey_links import clocked_signer
from models import limits
from models.email_categories import EmailCategory

# Changing it invalidates every link sent: a version in the name says so.
SALT = "liftoff.email-opt-out.v1"
# A token is about 150 characters; anything much longer is not one of ours.
MAX_TOKEN_CHARS = 1_000
VALID_SECONDS = limits.OPT_OUT_LINK_DAYS * 86_400
# The body RFC 8058 has a mail client POST for one-click unsubscribe.
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


class LinkRefused(Exception):
    """A link that cannot count: tampered, not ours, or naming no category one can leave."""


class LinkExpired(LinkRefused):
    pass


class _Claim(BaseModel):
    """What a token carries, in short keys: a header line stays short."""

    model_config = ConfigDict(extra="forbid")

    c: str = Field(min_length=1, max_length=64)
    e: str = Field(min_length=3, max_length=limits.EMAIL_CHARS)
    k: EmailCategory


@dataclass(frozen=True)
class OptOutClaim:
    """A verified link: this contact of this customer, about this category."""

    customer_id: str
    email: str
    category: EmailCategory
    signed_at: datetime


class OptOutLinks:
    def __init__(
        self, secret: str, base_url: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._serializer = URLSafeTimedSerializer(
            secret,
            salt=SALT,
            signer=clocked_signer(clock),
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def token(self, *, customer_id: str, email: str, category: EmailCategory) -> str:
        if not category.can_opt_out:
            raise ValueError(f"{category.value} email has no unsubscribe link")
        claim = _Claim(c=customer_id, e=email.strip().lower(), k=category)
        return str(self._serializer.dumps(claim.model_dump(mode="json")))

    def url(self, token: str) -> str:
        return f"{self._base_url}/u/{token}"

    def headers(self, *, customer_id: str, email: str, category: EmailCategory) -> dict[str, str]:
        """`List-Unsubscribe` (RFC 2369) with one-click (RFC 8058) for one message."""
        link = self.url(self.token(customer_id=customer_id, email=email, category=category))
        return {
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE}",
        }

    def read(self, token: str) -> OptOutClaim:
        """The link's claim, or LinkExpired / LinkRefused; never anything unverified."""
        if len(token) > MAX_TOKEN_CHARS:
            raise LinkRefused("not an unsubscribe link")
        try:
            data, signed_at = self._serializer.loads(
                token, max_age=VALID_SECONDS, return_timestamp=True
            )
        except SignatureExpired as err:
            raise LinkExpired("the link has expired") from err
        except BadData as err:
            raise LinkRefused("not a valid unsubscribe link") from err
        try:
            claim = _Claim.model_validate(data)
        except ValidationError as err:
            raise LinkRefused("not a valid unsubscribe link") from err
        if not claim.k.can_opt_out:
            raise LinkRefused("not a valid unsubscribe link")
        return OptOutClaim(
            customer_id=claim.c,
            email=claim.e,
            category=claim.k,
            signed_at=signed_at.astimezone(UTC),
        )
