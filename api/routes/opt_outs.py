"""Routes: the unsubscribe link of every non-operational email, and its preference page.

`/u/<token>` is what a message's `List-Unsubscribe` header and footer point to; the
token (emails/opt_out_links.py) names the customer, the contact and the category of
the message it came in, and is the only credential:

- `POST` with the body `List-Unsubscribe=One-Click` is a mail client's one-click
  unsubscribe (RFC 8058): that category is left at once, answered 200 with no redirect.
  Mail clients send it without cookie or origin, so `SameOrigin` exempts `/u/`
  (api/app.py); with no ambient credential to ride on, a forged post would need the
  signed token, which is the authority itself.
- `GET` shows the contact's preferences, every category they can leave with a
  checkbox, in the customer's language; mail scanners fetch links, so GET changes
  nothing.
- `POST` from that page's form (`choices`, and `subscribed` once per ticked category)
  saves them all: an unticked category is left, a ticked one rejoined.

Operational mail (meeting invitations, tasks to staff) has no link and no checkbox:
the page says it is always sent. A tampered link answers 400, an expired one 410, a
server without the secret 503: each a page that says so, changing nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response

from api.dashboard.i18n import Locale, Translator, parse_locale
from api.dashboard.render import Formatter, PageContext, page_context, render
from api.deps import AppServices
from emails.opt_out_links import (
    ONE_CLICK_FIELD,
    ONE_CLICK_VALUE,
    LinkExpired,
    LinkRefused,
    OptOutClaim,
)
from models.email_categories import OPT_OUT_CATEGORIES, EmailCategory
from records.database import Database
from records.email_opt_outs import Source, choices_of, set_choice, set_choices, subject

router = APIRouter()

# The page's form: a marker that it is the page's form, and the ticked categories.
CHOICES = "choices"
SUBSCRIBED = "subscribed"
# A one-click body or the page's form with every category ticked fits many times over.
BODY_BYTES = 4 * 1024
# The form's fields at most: the marker and one per category, with room to spare.
MAX_FIELDS = 2 * len(EmailCategory) + 2


def _page(request: Request, locale: str) -> PageContext:
    # The customer's language, unless the reader switched (the page's language links).
    chosen: Locale = parse_locale(request.query_params.get("lang")) or parse_locale(locale) or "en"
    t = Translator(chosen)
    return PageContext(
        request=request, t=t, fmt=Formatter(t, datetime.now(UTC)), who=None, remember_locale=False
    )


def _refusal(request: Request, code: int, key: str) -> HTMLResponse:
    # No customer to take the language from: the browser's, as on the dashboard.
    ctx = page_context(request, None)
    return render(
        ctx,
        "error.html",
        code,
        title=ctx.t(f"optout_{key}_title"),
        body=ctx.t(f"optout_{key}_body"),
    )


async def _claim(
    request: Request, services: AppServices, token: str
) -> tuple[OptOutClaim, PageContext, str] | HTMLResponse:
    """The verified link, its page context and the customer's name; or the refusal."""
    links = services.opt_out_links
    if links is None:
        return _refusal(request, status.HTTP_503_SERVICE_UNAVAILABLE, "off")
    try:
        claim = links.read(token)
    except LinkExpired:
        return _refusal(request, status.HTTP_410_GONE, "expired")
    except LinkRefused:
        return _refusal(request, status.HTTP_400_BAD_REQUEST, "invalid")
    found = await asyncio.to_thread(subject, services.database, claim.customer_id)
    if found is None:
        # Signed by us, yet naming no customer this database holds (another deployment).
        return _refusal(request, status.HTTP_400_BAD_REQUEST, "invalid")
    return claim, _page(request, found.locale), found.name


async def _preferences(
    ctx: PageContext,
    database: Database,
    token: str,
    claim: OptOutClaim,
    customer: str,
    *,
    notice: str | None = None,
) -> HTMLResponse:
    choices = await asyncio.to_thread(choices_of, database, claim.customer_id, claim.email)
    return render(
        ctx,
        "opt_out.html",
        status.HTTP_200_OK,
        token=token,
        claim=claim,
        customer=customer,
        categories=[(category.value, not choices[category]) for category in OPT_OUT_CATEGORIES],
        notice=notice,
        # A reader who switched language keeps it after saving.
        lang=parse_locale(ctx.request.query_params.get("lang")),
    )


@router.get("/u/{token}", include_in_schema=False)
async def preference_page(request: Request, token: str, services: AppServices) -> Response:
    found = await _claim(request, services, token)
    if isinstance(found, Response):
        return found
    claim, ctx, customer = found
    return await _preferences(ctx, services.database, token, claim, customer)


@router.post("/u/{token}", include_in_schema=False)
async def unsubscribe(request: Request, token: str, services: AppServices) -> Response:
    found = await _claim(request, services, token)
    if isinstance(found, Response):
        return found
    claim, ctx, customer = found
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    now = datetime.now(UTC)
    if form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE:
        await asyncio.to_thread(_leave, services.database, claim, now)
        notice = ctx.t("optout_one_click_done", category=ctx.t(f"category_{claim.category.value}"))
        return await _preferences(ctx, services.database, token, claim, customer, notice=notice)
    if form.get(CHOICES) is None:
        # Neither a mail client's one-click nor the page's form: nothing to act on.
        return _refusal(request, status.HTTP_400_BAD_REQUEST, "invalid")
    ticked = {value for value in form.getlist(SUBSCRIBED) if isinstance(value, str)}
    known = {category.value for category in OPT_OUT_CATEGORIES}
    if not ticked <= known:
        return _refusal(request, status.HTTP_400_BAD_REQUEST, "invalid")
    await asyncio.to_thread(
        set_choices,
        services.database,
        customer_id=claim.customer_id,
        email=claim.email,
        opted_out={category: category.value not in ticked for category in OPT_OUT_CATEGORIES},
        at=now,
        source=Source.PREFERENCE_PAGE,
    )
    return await _preferences(
        ctx, services.database, token, claim, customer, notice=ctx.t("optout_saved")
    )


def _leave(database: Database, claim: OptOutClaim, at: datetime) -> None:
    with database.session() as session:
        set_choice(
            session,
            customer_id=claim.customer_id,
            email=claim.email,
            category=claim.category,
            opted_out=True,
            at=at,
            source=Source.ONE_CLICK,
        )
