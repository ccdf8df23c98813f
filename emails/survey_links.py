"""The one-click score links of NPS survey emails: signed, expiring, one per score.

A link carries who is asked (customer, touchpoint, role, address) and the score,
signed with `LIFTOFF_SURVEY_SECRET` by itsdangerous's `URLSafeTimedSerializer` (HMAC
with a derived key, a timestamp inside the signature, URL-safe base64): the same
well-kept serializer Flask signs its sessions with, rather than a signature scheme of
our own. The link is its own credential, so the answer page needs no sign-in; the
validity the playbook gave travels signed in the link, and a link older than
`limits.SURVEY_LINK_DAYS_MAX` is refused whatever it says. Single use is the store's
business (records/surveys.py): the first answer per person and touchpoint counts.

The worker signs (the mail activity renders per recipient), `liftoff serve` verifies:
both need the same secret.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from temporalio.exceptions import ApplicationError

from emails.contexts import SURVEY
from models import limits

# Changing it invalidates every link sent: a version in the name says so.
SALT = "liftoff.survey-score.v1"
SCORES = tuple(range(11))
# What the mail activity adds to a survey email's context, per recipient.
SCORE_LINKS = "score_links"
# A link's token is a few hundred characters; anything much longer is not one of ours.
MAX_TOKEN_CHARS = 2_000
# Settings refuse a shorter secret: an HMAC key people can guess signs nothing.
SECRET_MIN_CHARS = 32
NOT_CONFIGURED = (
    "survey links cannot be signed: LIFTOFF_SURVEY_SECRET is not set "
    "(set the same secret on the worker and on `liftoff serve`)"
)


class LinkRefused(Exception):
    """A link that cannot count: tampered, not ours, or expired."""


class LinkExpired(LinkRefused):
    pass


class _Claim(BaseModel):
    """What a token carries, in short keys: a link stays short enough for any mail client."""

    model_config = ConfigDict(extra="forbid")

    c: str = Field(min_length=1, max_length=64)
    t: str = Field(min_length=1, max_length=32)
    r: str = Field(max_length=32)
    e: str = Field(min_length=3, max_length=limits.EMAIL_CHARS)
    s: int = Field(ge=0, le=10)
    v: int = Field(ge=1, le=limits.SURVEY_LINK_DAYS_MAX * 86_400)


@dataclass(frozen=True)
class ScoreClaim:
    """A verified link: this person, at this touchpoint, chose this score."""

    customer_id: str
    touchpoint: str
    role: str
    email: str
    score: int
    signed_at: datetime
    expires_at: datetime


class SurveyLinks:
    def __init__(
        self, secret: str, base_url: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._base_url = base_url.rstrip("/")
        self._serializer = URLSafeTimedSerializer(
            secret,
            salt=SALT,
            # The signer's clock is ours, so a test can sign a link in the past.
            signer=clocked_signer(clock),
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def token(
        self,
        *,
        customer_id: str,
        touchpoint: str,
        role: str,
        email: str,
        score: int,
        valid_seconds: int,
    ) -> str:
        claim = _Claim(c=customer_id, t=touchpoint, r=role, e=email, s=score, v=valid_seconds)
        return str(self._serializer.dumps(claim.model_dump()))

    def url(self, token: str) -> str:
        return f"{self._base_url}/s/{token}"

    def read(self, token: str) -> ScoreClaim:
        """The link's claim, or LinkExpired / LinkRefused; never anything unverified."""
        if len(token) > MAX_TOKEN_CHARS:
            raise LinkRefused("not a survey link")
        longest = limits.SURVEY_LINK_DAYS_MAX * 86_400
        try:
            data, signed_at = self._serializer.loads(token, max_age=longest, return_timestamp=True)
        except SignatureExpired as err:
            raise LinkExpired("the link has expired") from err
        except BadData as err:
            raise LinkRefused("not a valid survey link") from err
        try:
            claim = _Claim.model_validate(data)
        except ValidationError as err:
            raise LinkRefused("not a valid survey link") from err
        signed = signed_at.astimezone(UTC)
        expires = datetime.fromtimestamp(signed.timestamp() + claim.v, UTC)
        if self._clock() > expires.timestamp():
            raise LinkExpired("the link has expired")
        return ScoreClaim(
            customer_id=claim.c,
            touchpoint=claim.t,
            role=claim.r,
            email=claim.e,
            score=claim.s,
            signed_at=signed,
            expires_at=expires,
        )

    def score_links(self, survey: Mapping[str, Any], role: str, recipient: str) -> list[JsonValue]:
        """One link per score for this recipient: what the template shows as 0 ... 10."""
        return [
            {
                "score": score,
                "url": self.url(
                    self.token(
                        customer_id=str(survey["customer_id"]),
                        touchpoint=str(survey["touchpoint"]),
                        role=role,
                        email=recipient,
                        score=score,
                        valid_seconds=int(survey["valid_seconds"]),
                    )
                ),
            }
            for score in SCORES
        ]


def with_score_links(
    links: SurveyLinks | None, context: dict[str, Any], role: str | None, recipient: str
) -> dict[str, Any]:
    """A survey email's context with the recipient's score links; others unchanged.

    Without a secret the send fails for good, visibly (the timeline's email_failed):
    an email whose links cannot count would only ask people for nothing."""
    survey = context.get(SURVEY)
    if not isinstance(survey, Mapping):
        return context
    if links is None:
        raise ApplicationError(NOT_CONFIGURED, type="SurveyNotConfigured", non_retryable=True)
    return {**context, SCORE_LINKS: links.score_links(survey, role or "", recipient)}


def clocked_signer(clock: Callable[[], float]) -> type[TimestampSigner]:
    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return ClockedSigner
