"""Routes: the answer pages of NPS survey emails, and NPS over REST.

A score link (`GET /s/<token>`) only shows a page: the score chosen and a button that
sends it, with an optional comment (`POST /s/<token>`). Mail scanners and link
previews fetch every link of a message; recording on GET would let them answer for
the recipient with whichever link they fetched first, the reason RFC 8058 makes
one-click unsubscribe a POST. The signed token is the form's only credential: there
is no cookie to ride on, and `SameOrigin` (api/guards.py) refuses a post from another
site's page all the same. The first answer per person and touchpoint stands
(records/surveys.py): a second click shows "already answered" and changes nothing,
and so does a later click on another score, even within the link's validity (the
first, spontaneous answer is the one NPS wants; a link forwarded to a colleague
cannot overwrite it). A comment can be added once to an answer that has none.

Pages speak the customer's language. A tampered link answers 400, an expired one
410, a server without `LIFTOFF_SURVEY_SECRET` 503: each a page, never a 500.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from analytics.nps import CSV_HEADER, MIN_ANSWERS, csv_rows
from api.dashboard.cohort import nps_groups
from api.dashboard.i18n import Locale, Translator, parse_locale
from api.dashboard.render import Formatter, PageContext, page_context, render
from api.deps import AppServices, Staff
from api.routes.customers import problem
from emails.survey_links import LinkExpired, LinkRefused, ScoreClaim
from models import limits
from models.playbook import Touchpoint
from models.tables import SurveyAnswer
from models.text import refuse_control_characters
from records.surveys import (
    AnswerIn,
    NpsBy,
    Source,
    add_comment,
    find_answer,
    record_answer,
    respondent,
)

router = APIRouter()
api_router = APIRouter(tags=["nps"])

# The form's one field.
COMMENT = "comment"
# What a browser posts for a full comment: 4 UTF-8 bytes a character, each URL-encoded
# as 3, with room to spare; a larger body is refused before it is read (api/guards.py).
BODY_BYTES = 16 * limits.NOTE_CHARS


def _page(request: Request, locale: str) -> PageContext:
    # The customer's language, unless the reader switched (the page's language links).
    chosen: Locale = parse_locale(request.query_params.get("lang")) or parse_locale(locale) or "en"
    t = Translator(chosen)
    return PageContext(
        request=request,
        t=t,
        fmt=Formatter(t, datetime.now(UTC)),
        who=None,
        remember_locale=False,
    )


def _refusal(ctx: PageContext, code: int, key: str) -> HTMLResponse:
    return render(
        ctx,
        "error.html",
        code,
        title=ctx.t(f"survey_{key}_title"),
        body=ctx.t(f"survey_{key}_body"),
    )


async def _claim(request: Request, services: AppServices, token: str) -> ScoreClaim | HTMLResponse:
    """The verified link, or the page that says why it does not count."""
    links = services.survey_links
    # No customer to take the language from: the browser's, as on the dashboard.
    fallback = page_context(request, None)
    if links is None:
        return _refusal(fallback, status.HTTP_503_SERVICE_UNAVAILABLE, "off")
    try:
        return links.read(token)
    except LinkExpired:
        return _refusal(fallback, status.HTTP_410_GONE, "expired")
    except LinkRefused:
        return _refusal(fallback, status.HTTP_400_BAD_REQUEST, "invalid")


async def _context(
    request: Request, services: AppServices, claim: ScoreClaim
) -> tuple[PageContext, str] | HTMLResponse:
    found = await asyncio.to_thread(respondent, services.database, claim.customer_id)
    if found is None or claim.touchpoint not in {t.value for t in Touchpoint}:
        # Signed by us, yet naming no customer this database holds (another deployment).
        return _refusal(page_context(request, None), status.HTTP_400_BAD_REQUEST, "invalid")
    return _page(request, found.locale), found.name


def _survey_page(
    ctx: PageContext,
    token: str,
    claim: ScoreClaim,
    customer: str,
    *,
    state: str,
    answer: SurveyAnswer | None = None,
    comment: str = "",
    error: str | None = None,
    notice: str | None = None,
    code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    return render(
        ctx,
        "survey.html",
        code,
        token=token,
        claim=claim,
        customer=customer,
        state=state,
        answer=answer,
        comment=comment,
        error=error,
        notice=notice,
        max_comment=limits.NOTE_CHARS,
    )


@router.get("/s/{token}", include_in_schema=False)
async def survey_link(request: Request, token: str, services: AppServices) -> Response:
    claim = await _claim(request, services, token)
    if isinstance(claim, Response):
        return claim
    found = await _context(request, services, claim)
    if isinstance(found, Response):
        return found
    ctx, customer = found
    stored = await asyncio.to_thread(
        find_answer, services.database, claim.customer_id, claim.touchpoint, claim.email
    )
    if stored is not None:
        return _survey_page(ctx, token, claim, customer, state="already", answer=stored)
    return _survey_page(ctx, token, claim, customer, state="confirm")


async def _comment_field(request: Request) -> str:
    form = await request.form(max_files=0, max_fields=4)
    value = form.get(COMMENT, "")
    return value.strip() if isinstance(value, str) else ""


def _comment_error(ctx: PageContext, comment: str) -> str | None:
    """Why this comment cannot be recorded, in the reader's language; None if it can."""
    if len(comment) > limits.NOTE_CHARS:
        return ctx.t("survey_comment_too_long", max=limits.NOTE_CHARS, n=len(comment))
    try:
        # PostgreSQL refuses a NUL in text; other control characters only garble it.
        refuse_control_characters(comment)
    except ValueError:
        return ctx.t("survey_comment_control")
    return None


@router.post("/s/{token}", include_in_schema=False)
async def survey_answer(request: Request, token: str, services: AppServices) -> Response:
    claim = await _claim(request, services, token)
    if isinstance(claim, Response):
        return claim
    found = await _context(request, services, claim)
    if isinstance(found, Response):
        return found
    ctx, customer = found
    comment = await _comment_field(request)
    error = _comment_error(ctx, comment)
    if error is not None:
        return _survey_page(
            ctx,
            token,
            claim,
            customer,
            state="confirm",
            comment=comment,
            error=error,
            code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    answer = AnswerIn(
        customer_id=claim.customer_id,
        touchpoint=Touchpoint(claim.touchpoint),
        email=claim.email,
        role=claim.role,
        score=claim.score,
        answered_at=datetime.now(UTC),
        source=Source.LINK,
        comment=comment,
    )
    row, stored = await asyncio.to_thread(record_answer, services.database, answer)
    return _survey_page(
        ctx, token, claim, customer, state="thanks" if stored else "already", answer=row
    )


@router.post("/s/{token}/comment", include_in_schema=False)
async def survey_comment(request: Request, token: str, services: AppServices) -> Response:
    claim = await _claim(request, services, token)
    if isinstance(claim, Response):
        return claim
    found = await _context(request, services, claim)
    if isinstance(found, Response):
        return found
    ctx, customer = found
    stored = await asyncio.to_thread(
        find_answer, services.database, claim.customer_id, claim.touchpoint, claim.email
    )
    if stored is None:
        # No answer to comment on yet: the confirm page, comment kept.
        return _survey_page(ctx, token, claim, customer, state="confirm")
    comment = await _comment_field(request)
    error = _comment_error(ctx, comment) if comment else ctx.t("survey_comment_empty")
    if error is not None:
        return _survey_page(
            ctx,
            token,
            claim,
            customer,
            state="already",
            answer=stored,
            comment=comment,
            error=error,
            code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    added = await asyncio.to_thread(
        add_comment,
        services.database,
        claim.customer_id,
        claim.touchpoint,
        claim.email,
        comment,
        datetime.now(UTC),
    )
    refreshed = await asyncio.to_thread(
        find_answer, services.database, claim.customer_id, claim.touchpoint, claim.email
    )
    notice = ctx.t("survey_comment_saved" if added else "survey_comment_kept")
    return _survey_page(
        ctx, token, claim, customer, state="thanks", answer=refreshed or stored, notice=notice
    )


# NPS over REST


class NpsGroupOut(BaseModel):
    group: str
    answers: int
    promoters: int
    passives: int
    detractors: int
    # -100 to 100; None without answers.
    nps: float | None
    # At least `min_answers` answers: below, the figure is too small to read.
    enough: bool


class NpsOut(BaseModel):
    by: NpsBy
    min_answers: int
    groups: list[NpsGroupOut]


ByQuery = Annotated[NpsBy, Query(description="group the answers by role, touchpoint or seats band")]
CsmQuery = Annotated[
    str | None,
    Query(
        max_length=limits.EMAIL_CHARS,
        description="a lead or ops narrows to one CSM's customers; a CSM sees only their own",
    ),
]


async def _groups(who: Staff, services: AppServices, by: NpsBy, csm: str | None) -> NpsOut:
    groups = await asyncio.to_thread(nps_groups, services.database, who, csm, by)
    return NpsOut(
        by=by,
        min_answers=MIN_ANSWERS,
        groups=[
            NpsGroupOut(
                group=g.group,
                answers=g.answers,
                promoters=g.promoters,
                passives=g.passives,
                detractors=g.detractors,
                nps=g.nps,
                enough=g.enough,
            )
            for g in groups
        ],
    )


@api_router.get(
    "/api/nps",
    summary="NPS of the customers you see, by role, touchpoint or seats band",
    responses={status.HTTP_403_FORBIDDEN: problem("an ingest token")},
)
async def get_nps(
    who: Staff, services: AppServices, by: ByQuery = NpsBy.ROLE, csm: CsmQuery = None
) -> NpsOut:
    return await _groups(who, services, by, csm)


@api_router.get(
    "/api/nps.csv",
    summary="The same figures as CSV, one group a row",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {"content": {"text/csv": {}}},
        status.HTTP_403_FORBIDDEN: problem("an ingest token"),
    },
)
async def get_nps_csv(
    who: Staff, services: AppServices, by: ByQuery = NpsBy.ROLE, csm: CsmQuery = None
) -> Response:
    found = await asyncio.to_thread(nps_groups, services.database, who, csm, by)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(found))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="nps-by-{by.value}.csv"'},
    )
