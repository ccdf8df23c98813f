"""The dashboard's pages: sign-in, my customers, one customer with its action forms,
and the cohort. Server-rendered; htmx (boost) only spares full reloads."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from temporalio.service import RPCError

from analytics.nps import MIN_ANSWERS as NPS_MIN_ANSWERS
from analytics.outcomes import MIN_GROUP
from analytics.survival import GroupBy, TimedStage
from api.dashboard import chart
from api.dashboard import outcomes as outcome_words
from api.dashboard.cohort import cohort_page as read_cohort
from api.dashboard.cohort_analytics import analytics_page as read_analytics
from api.dashboard.cohort_analytics import emails_page as read_emails
from api.dashboard.data import (
    LIST_PAGE_SIZE,
    STATUS_TIMEOUT_SECONDS,
    ListedCustomer,
    visible_filters,
)
from api.dashboard.forms import (
    EVENT_TYPES,
    FORM_FIELDS,
    NEXT_STEP,
    OFFERED,
    PANEL_ACTIONS,
    Field,
    FieldError,
    build_event,
    new_event_id,
    offered,
)
from api.dashboard.i18n import Translator
from api.dashboard.outcomes import read_outcomes
from api.dashboard.overrides import OverridesForm, build_request, form_values, in_words
from api.dashboard.render import STATIC_DIR, STATIC_FILES, PageContext, page_context, render
from api.dashboard.review import review_report, suggestion_figures
from api.dashboard.timeline import sentence as timeline_sentence
from api.deps import SESSION_COOKIE, AppServices, optional_principal
from api.routes.customers import recorded_by
from api.services import Services
from client.errors import CommandRejectedError, OnboardingClosedError, UnknownCustomerError
from models import limits
from models.handoff import CUSTOMER_ID_PATTERN
from models.migration import MigrationRequest
from models.onboarding import OnboardingStatus, Stage, TaskKind
from models.playbook_diff import differences
from records import customer_lists, reports
from records.database import Database
from records.playbook_versions import find_version, list_versions
from records.reports import customer_csm
from records.sessions import end_session, start_session
from records.surveys import answers_of
from records.tokens import Principal, TokenRole, authenticate

router = APIRouter(include_in_schema=False)

Who = Annotated[Principal | None, Depends(optional_principal)]

# The sign-in cookie lives as long as a working fortnight; the token itself may live longer.
SESSION_MAX_AGE_SECONDS = 14 * 24 * 3600
# An update waits for a worker to take it; past this the CSM is told and may resend
# (the form's event id makes a resend count once).
RECORD_TIMEOUT_SECONDS = 20.0
_CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)
# Stages in the order the "my customers" page lists them.
_ACTIVE_STAGES = [
    Stage.HANDOFF,
    Stage.KICKOFF,
    Stage.TRAINING,
    Stage.ADOPTION,
    Stage.COMPLETION_REVIEW,
]


# Who is asking


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _to_login(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={quote(here)}", status.HTTP_303_SEE_OTHER)
    if SESSION_COOKIE in request.cookies:
        response.delete_cookie(SESSION_COOKIE, path="/")  # unknown or revoked: forget it
    return response


def _gate(request: Request, who: Principal | None) -> Principal | Response:
    """The signed-in person, or where to send someone who is not one."""
    if who is None:
        return _to_login(request)
    if who.role is TokenRole.INGEST:
        ctx = page_context(request, None)
        return _error(
            ctx,
            status.HTTP_403_FORBIDDEN,
            ctx.t("error_role_title"),
            ctx.t("error_role_body", role=who.role.value),
        )
    return who


def _error(ctx: PageContext, code: int, title: str, body: str) -> HTMLResponse:
    return render(ctx, "error.html", code, title=title, body=body)


def _unavailable(ctx: PageContext, err: Exception) -> HTMLResponse:
    return _error(
        ctx,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        ctx.t("error_unavailable_title"),
        ctx.t("error_unavailable_body", reason=str(err) or ctx.t("no_answer")),
    )


# Sign-in


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    ctx = page_context(request, None)
    notice = ctx.t("signed_out") if request.query_params.get("signed_out") else None
    return render(
        ctx,
        "login.html",
        next=_safe_next(request.query_params.get("next")),
        error=None,
        notice=notice,
    )


@router.post("/login")
async def login(request: Request, services: AppServices) -> Response:
    ctx = page_context(request, None)
    form = await request.form()
    token = str(form.get("token", "")).strip()
    target = _safe_next(str(form.get("next", "/")))

    def refuse(code: int, key: str) -> HTMLResponse:
        # The token is never echoed back into the page.
        return render(ctx, "login.html", code, next=target, error=ctx.t(key), notice=None)

    if not token:
        return refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, "login_empty")
    who = await asyncio.to_thread(authenticate, services.database, token)
    if who is None:
        return refuse(status.HTTP_401_UNAUTHORIZED, "login_unknown")
    if who.role is TokenRole.INGEST:
        return refuse(status.HTTP_403_FORBIDDEN, "login_ingest")
    session_id = await asyncio.to_thread(
        start_session, services.database, who, lasts=timedelta(seconds=SESSION_MAX_AGE_SECONDS)
    )
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        # Lax: the cookie is not sent with another site's POST, which keeps the
        # action forms from being submitted cross-site.
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/logout")
async def logout_page(request: Request) -> HTMLResponse:
    # Signing out changes state, so a GET only asks: an <img src="/logout"> on another
    # site cannot sign a CSM out.
    return render(page_context(request, None), "logout.html")


@router.post("/logout")
async def logout(request: Request, services: AppServices) -> RedirectResponse:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        # Ended on the server: a copy of the cookie is worthless from now on.
        await asyncio.to_thread(end_session, services.database, session_id)
    response = RedirectResponse("/login?signed_out=1", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# My customers


@dataclass(frozen=True)
class StageGroup:
    stage: Stage
    customers: list[ListedCustomer]
    # Every ongoing customer in this stage, not only this page's.
    total: int


@dataclass(frozen=True)
class Pager:
    """Where a paged list is and the links to its neighbours (None at either end)."""

    first: int
    last: int
    total: int
    previous: str | None
    next: str | None


def _page_number(request: Request, name: str) -> int:
    value = request.query_params.get(name, "1")
    return max(1, int(value)) if value.isdigit() else 1


def _pager(request: Request, name: str, number: int, page: customer_lists.Page) -> Pager | None:
    if page.total <= page.limit:
        return None

    def link(to: int) -> str:
        return str(request.url.include_query_params(**{name: to}))

    shown = len(page.rows)
    return Pager(
        first=page.offset + 1 if shown else 0,
        last=page.offset + shown,
        total=page.total,
        previous=link(number - 1) if number > 1 else None,
        next=link(number + 1) if page.offset + shown < page.total else None,
    )


@dataclass(frozen=True)
class MyCustomers:
    summary: customer_lists.Summary
    ongoing: customer_lists.Page
    ended: customer_lists.Page
    csms: list[str]


def _my_customers(
    database: Database, filters: customer_lists.Filters, page: int, ended_page: int, csms: bool
) -> MyCustomers:
    size = LIST_PAGE_SIZE
    return MyCustomers(
        summary=customer_lists.summary(database, filters),
        ongoing=customer_lists.list_page(
            database,
            replace(filters, ended=False),
            order=customer_lists.Order.ATTENTION,
            limit=size,
            offset=(page - 1) * size,
        ),
        ended=customer_lists.list_page(
            database,
            replace(filters, ended=True),
            order=customer_lists.Order.ENDED,
            limit=size,
            offset=(ended_page - 1) * size,
        ),
        csms=customer_lists.csms(database) if csms else [],
    )


@router.get("/")
async def my_customers(request: Request, who: Who, services: AppServices) -> Response:
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    csm_filter = request.query_params.get("csm") or None
    page, ended_page = _page_number(request, "page"), _page_number(request, "ended_page")
    show_csm = gate.role is not TokenRole.CSM
    found = await asyncio.to_thread(
        _my_customers,
        services.database,
        visible_filters(gate, csm_filter),
        page,
        ended_page,
        show_csm,
    )
    listed = [ListedCustomer(row) for row in found.ongoing.rows]
    groups = [
        StageGroup(
            stage,
            [c for c in listed if c.stage is stage],
            found.summary.by_stage.get(stage, 0),
        )
        for stage in _ACTIVE_STAGES
    ]
    return render(
        ctx,
        "customers.html",
        groups=[group for group in groups if group.customers],
        ended=[ListedCustomer(row) for row in found.ended.rows],
        ended_total=found.summary.ended,
        pager=_pager(request, "page", page, found.ongoing),
        ended_pager=_pager(request, "ended_page", ended_page, found.ended),
        # Paging through the ended customers keeps their list open.
        ended_open=ended_page > 1,
        ongoing=found.summary.ongoing,
        stuck=found.summary.stuck,
        stalled=found.summary.stalled,
        open_tasks=found.summary.open_tasks,
        csms=found.csms,
        csm_filter=csm_filter,
        show_csm=show_csm,
    )


# Cohort


@router.get("/cohort")
async def cohort_page(request: Request, who: Who, services: AppServices) -> Response:
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    csm_filter = request.query_params.get("csm") or None
    found = await asyncio.to_thread(read_cohort, services.database, gate, csm_filter, ctx.fmt.now)
    return render(
        ctx,
        "cohort.html",
        cohort=found.cohort,
        widest=max((row.reached for row in found.cohort.funnel), default=0),
        csms=found.csms,
        csm_filter=csm_filter,
        nps={by.value: groups for by, groups in found.nps.items()},
        nps_minimum=NPS_MIN_ANSWERS,
    )


@router.get("/cohort/analytics")
async def cohort_analytics_page(request: Request, who: Who, services: AppServices) -> Response:
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    try:
        by = GroupBy(request.query_params.get("by") or GroupBy.ALL)
        stage = TimedStage(request.query_params.get("stage") or TimedStage.KICKOFF)
    except ValueError:
        return _error(
            ctx,
            status.HTTP_400_BAD_REQUEST,
            ctx.t("analytics_title"),
            ctx.t(
                "analytics_bad_query",
                by=", ".join(g.value for g in GroupBy),
                stages=", ".join(s.value for s in TimedStage),
            ),
        )
    csm_filter = request.query_params.get("csm") or None
    found = await asyncio.to_thread(
        read_analytics, services.database, gate, csm_filter, by, stage, ctx.fmt.now
    )
    return render(
        ctx,
        "cohort_analytics.html",
        page=found,
        by=by,
        stage=stage,
        groupings=list(GroupBy),
        stages=list(TimedStage),
        csms=found.csms,
        csm_filter=csm_filter,
    )


@router.get("/cohort/analytics/emails")
async def cohort_emails_page(request: Request, who: Who, services: AppServices) -> Response:
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    csm_filter = request.query_params.get("csm") or None
    found = await asyncio.to_thread(read_emails, services.database, gate, csm_filter)
    return render(ctx, "cohort_emails.html", page=found, csms=found.csms, csm_filter=csm_filter)


@router.get("/cohort/outcomes")
async def outcomes_page(request: Request, who: Who, services: AppServices) -> Response:
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    if gate.role is TokenRole.CSM:
        title = ctx.t("error_role_title")
        return _error(ctx, status.HTTP_403_FORBIDDEN, title, ctx.t("outcomes_forbidden"))
    version = request.query_params.get("playbook_version") or None
    if version is not None and (len(version) > limits.VERSION_CHARS or not version.isprintable()):
        version = None  # not a version any customer can have
    found = await asyncio.to_thread(read_outcomes, services.database, version, ctx.fmt.today())
    return render(
        ctx,
        "outcomes.html",
        analysis=found.analysis,
        versions=found.versions,
        version=version,
        conclusion=outcome_words.conclusion(ctx.t, found.analysis),
        words=outcome_words,
        minimum=MIN_GROUP,
    )


@router.get("/cohort/review")
async def review_page(request: Request, who: Who, services: AppServices) -> Response:
    """The playbook review of one version (?version=): leads and ops."""
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    if gate.role is TokenRole.CSM:
        title = ctx.t("error_role_title")
        return _error(ctx, status.HTTP_403_FORBIDDEN, title, ctx.t("outcomes_forbidden"))
    version = request.query_params.get("version") or ""
    if not version or len(version) > limits.VERSION_CHARS or not version.isprintable():
        title = ctx.t("review_title", version="?")
        return _error(ctx, status.HTTP_404_NOT_FOUND, title, ctx.t("review_pick"))
    now = datetime.now(ZoneInfo("UTC"))
    report = await asyncio.to_thread(
        review_report, services.database, version, now, ctx.fmt.today()
    )
    return render(
        ctx,
        "review.html",
        report=report,
        version=version,
        conclusion=outcome_words.conclusion(ctx.t, report.outcomes),
        figures=suggestion_figures,
        words=outcome_words,
    )


# Playbook versions and migration: leads and ops


@dataclass(frozen=True)
class _MigrationAsk:
    """A migration as the page's form gives it: valid, or the problem to show."""

    source: str = ""
    target: str = ""
    reason: str = ""
    problem: str | None = None


def _migration_ask(ctx: PageContext, values: dict[str, str], known: set[str]) -> _MigrationAsk:
    source, target = values.get("from", ""), values.get("to", "")
    reason = values.get("reason", "").strip()[: limits.LINE_CHARS]
    ask = _MigrationAsk(source, target, reason)
    for version in (source, target):
        if version not in known:
            return replace(ask, problem=ctx.t("migrate_unknown", version=version[:64]))
    if source == target or not reason or not reason.isprintable():
        return replace(ask, problem=ctx.t("migrate_pick"))
    return ask


async def _playbooks_page(
    ctx: PageContext, services: Services, values: dict[str, str], *, apply: bool
) -> Response:
    versions = await asyncio.to_thread(list_versions, services.database)
    page: dict[str, Any] = {
        "versions": versions,
        "chosen_from": next((v.version for v in versions if v.ongoing), ""),
        "chosen_to": versions[-1].version if versions else "",
        "reason": "",
        "reason_max": limits.LINE_CHARS,
        "problem": None,
        "differences": None,
        "plans": None,
        "applied": apply,
        "moved": 0,
        "movable": 0,
    }
    if not values:
        return render(ctx, "playbooks.html", **page)
    ask = _migration_ask(ctx, values, {v.version for v in versions})
    page.update(chosen_from=ask.source, chosen_to=ask.target, reason=ask.reason)
    if ask.problem is not None:
        page["problem"] = ask.problem
        return render(ctx, "playbooks.html", status.HTTP_422_UNPROCESSABLE_CONTENT, **page)
    old = await asyncio.to_thread(find_version, services.database, ask.source)
    new = await asyncio.to_thread(find_version, services.database, ask.target)
    cohort = customer_lists.Filters(ended=False, playbook_version=ask.source)
    ids = await asyncio.to_thread(customer_lists.customer_ids, services.database, cohort)
    who = recorded_by(ctx.who) if ctx.who else "dashboard"
    request = MigrationRequest(playbook=new, reason=ask.reason, requested_by=who)
    try:
        plans = await services.onboarding.migrate_each(ids, request, dry_run=not apply)
    except RPCError as err:
        return _unavailable(ctx, err)
    movable = sum(plan.refused is None for plan in plans)
    page.update(differences=differences(old, new), plans=plans, moved=movable, movable=movable)
    return render(ctx, "playbooks.html", **page)


@router.get("/playbooks")
async def playbooks_page(request: Request, who: Who, services: AppServices) -> Response:
    """The versions, and with ?from=&to=&reason= the diff and a dry run of the move."""
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    if gate.role is TokenRole.CSM:
        title = ctx.t("error_role_title")
        return _error(ctx, status.HTTP_403_FORBIDDEN, title, ctx.t("outcomes_forbidden"))
    values = {
        k: request.query_params[k] for k in ("from", "to", "reason") if k in request.query_params
    }
    return await _playbooks_page(ctx, services, values, apply=False)


@router.post("/playbooks/migrate")
async def migrate_customers(request: Request, who: Who, services: AppServices) -> Response:
    """Moves every ongoing customer of one version to another; the page lists each
    customer's answer. Sent again, each customer answers that it already moved."""
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    if gate.role is TokenRole.CSM:
        title = ctx.t("error_role_title")
        return _error(ctx, status.HTTP_403_FORBIDDEN, title, ctx.t("outcomes_forbidden"))
    form = await request.form()
    values = {k: v for k, v in form.items() if k in ("from", "to", "reason") and isinstance(v, str)}
    return await _playbooks_page(ctx, services, values, apply=True)


# One customer


@dataclass
class Attempt:
    """A submitted form that was not recorded: shown again with what was typed."""

    kind: str
    values: dict[str, str]
    errors: list[FieldError] = field(default_factory=list)
    refusal: str | None = None


@dataclass(frozen=True)
class Input:
    name: str
    widget: str
    required: bool
    max_length: int | None
    options: list[tuple[str, str]]
    value: str
    error: str | None


@dataclass(frozen=True)
class ActionForm:
    kind: str
    anchor: str
    inputs: list[Input]
    event_id: str
    is_next: bool
    is_open: bool
    message: str | None
    done: str | None


def _purpose_titles(status_now: OnboardingStatus) -> dict[str, str]:
    """ "A: Digitise incoming documents" per purpose id, from the playbook version the
    customer is pinned to: the purposes its workflow accepts."""
    return {pid: f"{pid}: {title}" for pid, title in status_now.purpose_catalogue.items()}


@dataclass(frozen=True)
class EmailView:
    when: datetime
    template: str
    ledger_key: str
    recipient: str
    status: str
    fate: str


def _fate(email: reports.EmailRow) -> str:
    """What the provider reported, repeats counted: "delivered, open ×2, click"."""
    if email.status == "failed":
        return email.error or ""
    seen = email.fate(reason_chars=500)
    # The outbox and SMTP report nothing back; SendGrid's events may be on the way.
    summary = ", ".join(name if count == 1 else f"{name} ×{count}" for name, count in seen)
    return summary or "–"


def _email_views(emails: list[reports.EmailRow]) -> list[EmailView]:
    return [
        EmailView(
            when=email.sent_at or email.created_at,
            template=email.template,
            ledger_key=email.ledger_key,
            recipient=email.recipient,
            status=email.status,
            fate=_fate(email),
        )
        for email in reversed(emails)  # newest first, as the timeline
    ]


def _error_text(t: Translator, error: FieldError) -> str:
    return t(error.key, **error.values) if error.key else error.text


def _defaults(status_now: OnboardingStatus, today: date) -> dict[str, str]:
    values = {"held_on": today.isoformat()}
    # A meeting the workflow asked for is the one most likely held.
    requested = [t.ref for t in status_now.state.open_tasks if t.kind is TaskKind.MEETING]
    values["meeting"] = requested[0] if requested and requested[0] else "customer_request"
    return values


def _action_form(
    t: Translator,
    kind: str,
    *,
    status_now: OnboardingStatus,
    attempt: Attempt | None,
    done: str | None,
    purposes: list[tuple[str, str]],
    today: date,
    anchor: str,
    task_id: str | None = None,
) -> ActionForm:
    mine = (
        attempt is not None
        and attempt.kind == kind
        and (task_id is None or attempt.values.get("task_id") == task_id)
    )
    values = attempt.values if mine and attempt else _defaults(status_now, today)
    errors = {e.field: _error_text(t, e) for e in attempt.errors} if mine and attempt else {}
    inputs = []
    for spec in FORM_FIELDS[kind]:
        options = purposes if spec.name == "purpose" else [(v, t(k)) for v, k in spec.options]
        inputs.append(_input(spec, options, values, errors))
    message = None
    if mine and attempt:
        message = t("refused", reason=attempt.refusal) if attempt.refusal else t("invalid")
        # Errors about fields the form does not show (e.g. the whole form) go on top.
        shown = {spec.name for spec in FORM_FIELDS[kind]}
        stray = [text for name, text in errors.items() if name not in shown]
        if stray:
            message = " ".join([message, *stray])
    is_next = kind in NEXT_STEP.get(status_now.state.stage, ())
    return ActionForm(
        kind=kind,
        anchor=anchor,
        inputs=inputs,
        # A retried form keeps its id: a refused or invalid submit recorded nothing.
        event_id=(attempt.values.get("event_id") if mine and attempt else None) or new_event_id(),
        is_next=is_next,
        is_open=mine or is_next or done == kind,
        message=message,
        done=done if done == kind else None,
    )


def _input(
    spec: Field, options: list[tuple[str, str]], values: dict[str, str], errors: dict[str, str]
) -> Input:
    return Input(
        name=spec.name,
        widget=spec.widget,
        required=spec.required,
        max_length=spec.max_length,
        options=options,
        value=values.get(spec.name, ""),
        error=errors.get(spec.name),
    )


def _timeline(database: Database, status_now: OnboardingStatus) -> list[reports.TimelineRow]:
    """The stored entries, and those the workflow has queued but not stored yet (the
    status carries them): an action just recorded shows at once, without waiting."""
    try:
        stored = reports.customer_timeline(database, customer_id=status_now.customer_id)
    except reports.UnknownCustomer:
        stored = []  # the workflow has not stored the customer yet
    by_seq = {
        entry.seq: reports.TimelineRow.model_validate(entry.model_dump(mode="json"))
        for entry in status_now.unwritten_timeline
    }
    by_seq |= {row.seq: row for row in stored}
    return [by_seq[seq] for seq in sorted(by_seq)]


async def _customer_page(
    ctx: PageContext,
    services: Services,
    status_now: OnboardingStatus,
    *,
    attempt: Attempt | None = None,
    done: str | None = None,
    duplicate: bool = False,
    overrides_form: OverridesForm | None = None,
    adjusted: bool = False,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    customer_id = status_now.customer_id
    state = status_now.state
    timeline, emails, profile, answers = await asyncio.gather(
        asyncio.to_thread(_timeline, services.database, status_now),
        asyncio.to_thread(reports.customer_emails, services.database, customer_id=customer_id),
        asyncio.to_thread(reports.customer_profile, services.database, customer_id=customer_id),
        asyncio.to_thread(answers_of, services.database, customer_id),
    )
    # The page speaks the customer's clock: when their emails went out, when they met.
    ctx = replace(ctx, fmt=ctx.fmt.in_zone(ZoneInfo(status_now.time_zone)))
    # Forms offer the customer's date: a meeting is held on their calendar.
    today = ctx.fmt.today()
    titles = _purpose_titles(status_now)
    purposes = [(pid, title) for pid, title in titles.items() if pid not in state.purposes]
    offered_kinds = offered(state.stage, paused=state.pause is not None)
    # A form just submitted is always shown, so its reason or errors are seen.
    kinds = [
        kind
        for kind in PANEL_ACTIONS
        if (kind in offered_kinds and (kind != "purpose_added" or purposes))
        or (attempt is not None and attempt.kind == kind)
    ]
    forms = [
        _action_form(
            ctx.t,
            kind,
            status_now=status_now,
            attempt=attempt,
            done=done,
            purposes=purposes,
            today=today,
            anchor=f"action-{kind}",
        )
        for kind in kinds
    ]
    task_forms = {
        task.task_id: _action_form(
            ctx.t,
            "task_completed",
            status_now=status_now,
            attempt=attempt,
            done=None,
            purposes=[],
            today=today,
            anchor=f"task-{task.task_id}",
            task_id=task.task_id,
        )
        for task in state.open_tasks
    }
    return render(
        ctx,
        "customer.html",
        status_code,
        status=status_now,
        state=state,
        panels=chart.measurement_panels(state.recent_weeks, state.purposes),
        latest=state.recent_weeks[-1] if state.recent_weeks else None,
        timeline=list(reversed(timeline)),
        describe=lambda row: timeline_sentence(row, ctx.fmt),
        emails=_email_views(emails),
        survey_answers=answers,
        purpose_titles=titles,
        next_forms=[f for f in forms if f.is_next],
        other_forms=[f for f in forms if not f.is_next],
        task_forms=task_forms,
        task_done=done == "task_completed",
        # A recorded action whose form the new stage no longer offers: noted on the panel.
        done_elsewhere=done if done and done != "task_completed" and done not in kinds else None,
        duplicate=duplicate,
        time_zone=status_now.time_zone,
        profile=profile,
        # Meetings with what was typed about them, newest first.
        meetings=[m for m in reversed(state.meetings) if m.notes],
        overrides_form=overrides_form or OverridesForm(form_values(state.overrides)),
        overridden_in_words=lambda value: in_words(value, ctx.t),
        adjusted=adjusted,
    )


async def _visible_customer(
    request: Request, who: Principal | None, services: Services, customer_id: str
) -> tuple[PageContext, Principal, OnboardingStatus] | Response:
    """The page context, the signed-in person and the customer's status, or the page
    that says why not (sign in, 404, 403, Temporal unavailable)."""
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    found = await _visible_status(ctx, services, gate, customer_id)
    return found if isinstance(found, Response) else (ctx, gate, found)


def _not_found(ctx: PageContext, customer_id: str) -> HTMLResponse:
    """Also another CSM's customer: a CSM cannot tell which ids exist."""
    return _error(
        ctx,
        status.HTTP_404_NOT_FOUND,
        ctx.t("error_404_title"),
        ctx.t("error_404_body", customer_id=customer_id),
    )


async def _visible_status(
    ctx: PageContext, services: Services, who: Principal, customer_id: str
) -> OnboardingStatus | HTMLResponse:
    if not _CUSTOMER_ID.match(customer_id):
        return _not_found(ctx, customer_id)
    try:
        async with asyncio.timeout(STATUS_TIMEOUT_SECONDS):
            found = await services.onboarding.status(customer_id)
    except UnknownCustomerError:
        return _not_found(ctx, customer_id)
    except (RPCError, TimeoutError) as err:
        return _unavailable(ctx, err)
    if not who.sees(found.csm):
        return _not_found(ctx, customer_id)
    return found


@router.get("/customers/{customer_id}")
async def customer_page(
    request: Request, customer_id: str, who: Who, services: AppServices
) -> Response:
    opened = await _visible_customer(request, who, services, customer_id)
    if isinstance(opened, Response):
        if opened.status_code == status.HTTP_404_NOT_FOUND and who is not None:
            return await _record_page(page_context(request, who), services, customer_id) or opened
        return opened
    ctx, _, found = opened
    done = request.query_params.get("done")
    return await _customer_page(
        ctx,
        services,
        found,
        done=done if done in EVENT_TYPES else None,
        duplicate=request.query_params.get("duplicate") == "1",
        adjusted=request.query_params.get("adjusted") == "1",
    )


async def _record_page(
    ctx: PageContext, services: Services, customer_id: str
) -> HTMLResponse | None:
    """A customer Temporal no longer holds (its closed workflow is past the namespace's
    retention), read from Liftoff's own records: its row, timeline, emails, answers and
    people. None when the records do not have it either, or the CSM may not see it."""
    database = services.database
    record = await asyncio.to_thread(customer_lists.one, database, customer_id)
    if record is None or ctx.who is None or not ctx.who.sees(record.csm):
        return None
    timeline, emails, profile, answers = await asyncio.gather(
        asyncio.to_thread(reports.customer_timeline, database, customer_id=customer_id),
        asyncio.to_thread(reports.customer_emails, database, customer_id=customer_id),
        asyncio.to_thread(reports.customer_profile, database, customer_id=customer_id),
        asyncio.to_thread(answers_of, database, customer_id),
    )
    ctx = replace(ctx, fmt=ctx.fmt.in_zone(ZoneInfo(record.time_zone)))
    return render(
        ctx,
        "customer_record.html",
        record=record,
        stage=Stage(record.stage),
        timeline=list(reversed(timeline)),
        describe=lambda row: timeline_sentence(row, ctx.fmt),
        emails=_email_views(emails),
        survey_answers=answers,
        profile=profile,
        meetings=[],
    )


async def _may_record(
    ctx: PageContext, services: Services, who: Principal, customer_id: str
) -> Response | None:
    """The page that refuses a post (404, 403, Temporal unavailable), or None to go on.
    The customer's stored row names its CSM; only a customer without one (just
    started, or unknown) costs a status query."""
    csm = None
    if _CUSTOMER_ID.match(customer_id):
        csm = await asyncio.to_thread(customer_csm, services.database, customer_id)
    if csm is None:
        found = await _visible_status(ctx, services, who, customer_id)
        return found if isinstance(found, Response) else None
    if not who.sees(csm):
        return _not_found(ctx, customer_id)
    return None


@router.post("/customers/{customer_id}")
async def record_action(
    request: Request, customer_id: str, who: Who, services: AppServices
) -> Response:
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    refused = await _may_record(ctx, services, gate, customer_id)
    if refused is not None:
        return refused
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    kind = values.get("kind", "")
    if kind not in EVENT_TYPES:
        return _error(ctx, status.HTTP_400_BAD_REQUEST, ctx.t("error_bad_action", kind=kind), "")

    async def form_again(attempt: Attempt, code: int) -> Response:
        """The customer's page as it is now, with the form as it was typed."""
        found = await _visible_status(ctx, services, gate, customer_id)
        if isinstance(found, Response):
            return found
        return await _customer_page(ctx, services, found, attempt=attempt, status_code=code)

    built = build_event(kind, values, gate.csm or gate.name)
    if isinstance(built, list):
        attempt = Attempt(kind, values, errors=built)
        return await form_again(attempt, status.HTTP_422_UNPROCESSABLE_CONTENT)
    try:
        async with asyncio.timeout(RECORD_TIMEOUT_SECONDS):
            result = await services.onboarding.record(customer_id, built)
    except (CommandRejectedError, OnboardingClosedError) as err:
        attempt = Attempt(kind, values, refusal=str(err))
        return await form_again(attempt, status.HTTP_409_CONFLICT)
    except (RPCError, TimeoutError) as err:
        # Not known to be recorded: the form comes back as typed, to send again.
        attempt = Attempt(kind, values, refusal=str(err) or ctx.t("no_answer"))
        return await form_again(attempt, status.HTTP_503_SERVICE_UNAVAILABLE)
    # Back to the form, or to the actions panel when the new stage no longer offers it.
    anchor = f"action-{kind}" if kind in OFFERED.get(result.stage, ()) else "actions"
    if kind == "task_completed":
        anchor = "tasks"
    duplicate = "&duplicate=1" if result.duplicate else ""
    # POST/redirect/GET: a reload of the page the CSM lands on sends nothing again. That
    # page shows this event's timeline entries even before they are stored: the status
    # it reads carries those the workflow has not written yet.
    return RedirectResponse(
        f"/customers/{quote(customer_id)}?done={kind}{duplicate}#{anchor}",
        status.HTTP_303_SEE_OTHER,
    )


@router.post("/customers/{customer_id}/overrides")
async def adjust_customer(
    request: Request, customer_id: str, who: Who, services: AppServices
) -> Response:
    """The customer's overrides become what the form holds (its CSM, a lead or ops);
    a refusal shows the form again as typed, with the reason."""
    gate = _gate(request, who)
    if isinstance(gate, Response):
        return gate
    ctx = page_context(request, gate)
    refused = await _may_record(ctx, services, gate, customer_id)
    if refused is not None:
        return refused
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}

    async def form_again(attempt: OverridesForm, code: int) -> Response:
        found = await _visible_status(ctx, services, gate, customer_id)
        if isinstance(found, Response):
            return found
        return await _customer_page(ctx, services, found, overrides_form=attempt, status_code=code)

    built = build_request(values, recorded_by(gate))
    if isinstance(built, list):
        attempt = OverridesForm(values, errors=built)
        return await form_again(attempt, status.HTTP_422_UNPROCESSABLE_CONTENT)
    try:
        async with asyncio.timeout(RECORD_TIMEOUT_SECONDS):
            await services.onboarding.set_overrides(customer_id, built)
    except (CommandRejectedError, OnboardingClosedError) as err:
        return await form_again(OverridesForm(values, refusal=str(err)), status.HTTP_409_CONFLICT)
    except (RPCError, TimeoutError) as err:
        attempt = OverridesForm(values, refusal=str(err) or ctx.t("no_answer"))
        return await form_again(attempt, status.HTTP_503_SERVICE_UNAVAILABLE)
    return RedirectResponse(
        f"/customers/{quote(customer_id)}?adjusted=1#overrides", status.HTTP_303_SEE_OTHER
    )


# Static files


@router.get("/dashboard/static/{name}")
async def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response(status_code=status.HTTP_404_NOT_FOUND)
    return FileResponse(
        STATIC_DIR / name,
        media_type=media_type,
        # The URL carries the content hash (render.static_url): cache it for good.
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
