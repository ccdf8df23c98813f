"""Rendering: one jinja2 environment for the pages, the locale-aware formatting they
use, and the vendored static files (served with a content hash in their URL)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.dashboard.i18n import LANG_COOKIE, LOCALES, Translator, negotiate
from models.playbook import Metric
from records.tokens import Principal

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
# The only files /dashboard/static/ serves, and their media types.
STATIC_FILES = {
    "dashboard.css": "text/css; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
}
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
# Pages load only the app's own script and stylesheet; no inline script or style, so
# text a customer or CSM typed can never run or restyle a page even if escaping slipped.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        # htmx fetches boosted links and forms from the app.
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@cache
def static_url(name: str) -> str:
    """The file's URL with its content hash, so it can be cached for good."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"/dashboard/static/{name}?v={digest}"


_environment.globals["static_url"] = static_url


class Formatter:
    """Dates, durations and relative times in the request's locale. Lists show UTC, as
    they mix customers; a customer's page shows its own local time (`in_zone`)."""

    def __init__(self, t: Translator, now: datetime, zone: tzinfo = UTC) -> None:
        self.t = t
        self.now = now
        self.zone = zone

    def in_zone(self, zone: tzinfo) -> Formatter:
        return Formatter(self.t, self.now, zone)

    def when(self, value: datetime | None) -> str:
        """ "2026-11-25 18:02 JST": the zone's abbreviation says which clock it is."""
        if value is None:
            return self.t("none")
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")

    def day(self, value: datetime | None) -> str:
        return value.astimezone(self.zone).strftime("%Y-%m-%d") if value else self.t("none")

    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    def clock(self) -> str:
        """The time now on this formatter's clock: "18:02 (Wed)"."""
        local = self.now.astimezone(self.zone)
        return f"{local:%H:%M} ({self.t('weekday_' + str(local.weekday()))})"

    def duration(self, seconds: float | None) -> str:
        """Days for real journeys; hours, minutes or seconds for short ones (demo playbook)."""
        if seconds is None:
            return self.t("none")
        seconds = abs(seconds)
        if seconds >= 2 * 86400:
            return self.t("unit_d", n=f"{seconds / 86400:.0f}")
        if seconds >= 86400:
            return self.t("unit_d", n=f"{seconds / 86400:.1f}")
        if seconds >= 2 * 3600:
            return self.t("unit_h", n=f"{seconds / 3600:.0f}")
        if seconds >= 120:
            return self.t("unit_min", n=f"{seconds / 60:.0f}")
        return self.t("unit_s", n=f"{seconds:.0f}")

    def metric(self, metric: Metric, value: float) -> str:
        """Ratios as percentages, counts as numbers."""
        if metric in (Metric.ACTIVE_SEAT_RATIO, Metric.QUOTA_CONSUMPTION):
            return f"{value * 100:.0f}%"
        return f"{value:g}"

    def since(self, value: datetime | None) -> str:
        """How long ago `value` was: "12 d"."""
        if value is None:
            return self.t("none")
        return self.duration((self.now - value).total_seconds())

    def relative(self, value: datetime | None) -> str:
        """ "in 3 d" or "2 h ago"."""
        if value is None:
            return self.t("none")
        seconds = (value - self.now).total_seconds()
        span = self.duration(seconds)
        return self.t("in_future", d=span) if seconds >= 0 else self.t("in_past", d=span)


@dataclass(frozen=True)
class PageContext:
    request: Request
    t: Translator
    fmt: Formatter
    who: Principal | None
    remember_locale: bool


def page_context(request: Request, who: Principal | None) -> PageContext:
    locale, remember = negotiate(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )
    t = Translator(locale)
    return PageContext(
        request=request,
        t=t,
        fmt=Formatter(t, datetime.now(UTC)),
        who=who,
        remember_locale=remember,
    )


def _with_lang(request: Request, locale: str) -> str:
    """This page's path and query with ?lang= set: the language switch keeps the rest."""
    url = request.url.include_query_params(lang=locale)
    return f"{url.path}?{url.query}"


def render(ctx: PageContext, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    path = ctx.request.url.path
    html = _environment.get_template(template).render(
        t=ctx.t,
        fmt=ctx.fmt,
        locale=ctx.t.locale,
        who=ctx.who,
        path=path,
        # The language switch keeps the page's other query parameters.
        lang_urls={locale: _with_lang(ctx.request, locale) for locale in LOCALES},
        **values,
    )
    response = HTMLResponse(html, status_code=status_code)
    # Signed-in pages hold customer data: never cached by the browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    # The action forms must not be framed by another site (clickjacking).
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if ctx.remember_locale:
        response.set_cookie(
            LANG_COOKIE,
            ctx.t.locale,
            max_age=LANG_COOKIE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=ctx.request.url.scheme == "https",
        )
    return response
