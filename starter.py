"""The Liftoff command line: what a CSM uses to start customers and record what happened.

Every command checks its input before it talks to Temporal, so bad input
changes nothing: it gets one line on stderr and exit code 2. `--json` prints
machine-readable output for scripts.

    liftoff start --customer-id acme --name "Acme" --csm csm@example.com ...
    liftoff kickoff acme --held-on 2026-01-15 --goal "Digitise 80% of invoices"
    liftoff status acme
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio.service import RPCError

from client.connection import connect_client
from client.errors import LiftoffClientError
from client.handoffs import UnknownPurposeError
from client.handoffs import check_purposes as check_playbook_purposes
from client.onboarding import CustomerSummary, OnboardingClient, StartResult
from models.events import MeetingKind, NpsAnswer, OnboardingEvent
from models.handoff import Contact, CustomerHandoff, Role
from models.onboarding import EventResult, OnboardingStatus, Stage, WeekVerdict
from models.playbook import Playbook, PlaybookError
from records.playbooks import load_playbook
from settings import Settings

if TYPE_CHECKING:
    import jinja2

    from emails.catalogue import EmailSample
    from records.database import Database
    from records.reports import EmailRow

EXIT_OK = 0
EXIT_FAILED = 1  # Temporal or the database could not be reached
EXIT_BAD_INPUT = 2

CSV_COLUMNS = (
    "customer_id",
    "name",
    "csm",
    "cs_leader",
    "contacts",
    "seats",
    "quota",
    "time_zone",
    "locale",
    "purposes",
    "trial_used",
    "already_using",
    "notes",
)
_REQUIRED_CSV_COLUMNS = ("customer_id", "name", "csm", "cs_leader", "seats")
_CONTACT = re.compile(r"^\s*(?P<role>[^:]+?)\s*:\s*(?P<name>[^<]*?)\s*<(?P<email>[^<>]*)>\s*$")
_EVENT = TypeAdapter[OnboardingEvent](OnboardingEvent)


class BadInput(Exception):
    """Input the CLI refuses before anything is sent; the message is the whole story."""


# Parsing and validation, all before any connection


def describe(err: ValidationError, *, tagged: bool = False) -> str:
    """A pydantic error as one readable line: `field: problem; field: problem`.

    `tagged`: the error comes from a discriminated union, whose first location
    part is the event kind, which the user did not type.
    """
    problems = []
    for error in err.errors():
        loc = error["loc"][1:] if tagged else error["loc"]
        where = ".".join(str(part) for part in loc if not isinstance(part, int))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "literal_error" or error["type"] == "enum":
            message = f"{message}, got {error['input']!r}"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def parse_contact(spec: str) -> Contact:
    """`role:Name <email>`, e.g. `administrator:Hanako Sato <hanako@example.co.jp>`."""
    match = _CONTACT.match(spec)
    if match is None:
        raise BadInput(f"bad contact {spec!r}: expected 'role:Name <email>'")
    role = match["role"].strip().lower().replace("-", "_").replace(" ", "_")
    if role not in Role.__members__.values():
        roles = ", ".join(r.value for r in Role)
        raise BadInput(f"bad role {match['role']!r} in contact {spec!r}: expected one of {roles}")
    try:
        return Contact(role=Role(role), name=match["name"], email=match["email"])
    except ValidationError as err:
        raise BadInput(f"bad contact {spec!r}: {describe(err)}") from None


def parse_bool(value: str, column: str) -> bool:
    text = value.strip().lower()
    if text in ("", "0", "false", "no", "n"):
        return False
    if text in ("1", "true", "yes", "y"):
        return True
    raise BadInput(f"{column}: expected true or false, got {value!r}")


def parse_instant(value: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(
            f"bad time {value!r}: expected ISO 8601, e.g. 2026-01-15T09:30:00+09:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def build_handoff(fields: dict[str, Any]) -> CustomerHandoff:
    try:
        return CustomerHandoff.model_validate(fields)
    except ValidationError as err:
        raise BadInput(describe(err)) from None


def build_event(fields: dict[str, Any]) -> OnboardingEvent:
    try:
        return _EVENT.validate_python(fields)
    except ValidationError as err:
        raise BadInput(describe(err, tagged=True)) from None


def handoff_from_args(args: argparse.Namespace) -> CustomerHandoff:
    missing = [
        option
        for option, value in (
            ("--customer-id", args.customer_id),
            ("--name", args.name),
            ("--csm", args.csm),
            ("--leader", args.leader),
            ("--seats", args.seats),
        )
        if value is None
    ]
    if missing:
        raise BadInput(f"start needs {', '.join(missing)} (or --csv FILE)")
    return build_handoff(
        {
            "customer_id": args.customer_id,
            "name": args.name,
            "csm": args.csm,
            "cs_leader": args.leader,
            "contacts": [parse_contact(spec) for spec in args.contact],
            "seats_contracted": args.seats,
            "quota_contracted": args.quota,
            "time_zone": args.time_zone,
            "locale": args.locale,
            "purposes": args.purpose,
            "trial_used": args.trial,
            "already_using": args.already_using,
            "handoff_notes": args.notes,
        }
    )


def _handoff_from_row(row: dict[str, str]) -> CustomerHandoff:
    def cell(column: str) -> str:
        return (row.get(column) or "").strip()

    contacts = [parse_contact(spec) for spec in cell("contacts").split(";") if spec.strip()]
    fields: dict[str, Any] = {
        "customer_id": cell("customer_id"),
        "name": cell("name"),
        "csm": cell("csm"),
        "cs_leader": cell("cs_leader"),
        "contacts": contacts,
        "seats_contracted": cell("seats"),
        "purposes": [p.strip() for p in cell("purposes").split(";") if p.strip()],
        "trial_used": parse_bool(cell("trial_used"), "trial_used"),
        "already_using": parse_bool(cell("already_using"), "already_using"),
        "handoff_notes": cell("notes"),
    }
    for column, field in (("quota", "quota_contracted"), ("time_zone", "time_zone")):
        if cell(column):
            fields[field] = cell(column)
    if cell("locale"):
        fields["locale"] = cell("locale").lower()
    return build_handoff(fields)


def read_handoff_csv(path: Path, playbook: Playbook) -> list[CustomerHandoff]:
    """Every row checked first; one bad row and nothing is started (all problems reported)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise BadInput(f"{path}: {err.strerror or err}") from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in _REQUIRED_CSV_COLUMNS if column not in header]
    if missing:
        raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    known_purposes = {purpose.id for purpose in playbook.purposes}
    handoffs: list[CustomerHandoff] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            handoff = _handoff_from_row(row)
        except BadInput as err:
            problems.append(f"line {line}: {err}")
            continue
        unknown = [p for p in handoff.purposes if p not in known_purposes]
        if unknown:
            problems.append(f"line {line}: unknown purpose(s) {', '.join(unknown)}")
        elif handoff.customer_id in first_line:
            problems.append(
                f"line {line}: customer {handoff.customer_id!r} "
                f"repeats line {first_line[handoff.customer_id]}"
            )
        else:
            first_line[handoff.customer_id] = line
            handoffs.append(handoff)
    if problems:
        raise BadInput(f"{path}: nothing started; " + "; ".join(problems))
    if not handoffs:
        raise BadInput(f"{path}: no customers in the file")
    return handoffs


def check_purposes(handoff: CustomerHandoff, playbook: Playbook) -> None:
    try:
        check_playbook_purposes(handoff, playbook)
    except UnknownPurposeError as err:
        raise BadInput(str(err)) from None


def read_playbook(path: Path) -> Playbook:
    try:
        return load_playbook(path)
    except PlaybookError as err:
        raise BadInput(str(err)) from None


def parse_nps(spec: str) -> NpsAnswer:
    email, sep, score = spec.rpartition("=")
    if not sep:
        raise BadInput(f"bad --nps {spec!r}: expected email=score, e.g. taro@example.com=8")
    try:
        return NpsAnswer(email=email, score=int(score))
    except (ValueError, ValidationError) as err:
        reason = describe(err) if isinstance(err, ValidationError) else "score must be 0 to 10"
        raise BadInput(f"bad --nps {spec!r}: {reason}") from None


def event_from_args(args: argparse.Namespace) -> OnboardingEvent:
    """The event a recording command sends; validated here, judged by the workflow."""
    command = args.command
    fields: dict[str, Any]
    if command == "kickoff":
        fields = {
            "kind": "kickoff_held",
            "held_on": args.held_on,
            "attendees": args.attendee,
            "goals": args.goal,
        }
    elif command == "goal":
        fields = {"kind": "goal_agreed", "goal": args.text}
    elif command == "training":
        if args.skip:
            if not args.reason:
                raise BadInput("training --skip needs --reason")
            fields = {"kind": "training_skipped", "reason": args.reason}
        else:
            if args.held_on is None:
                raise BadInput("training needs --held-on DATE or --skip --reason TEXT")
            fields = {"kind": "training_held", "held_on": args.held_on, "attendees": args.attendee}
    elif command == "meeting":
        if args.request:
            fields = {"kind": "meeting_requested", "meeting": args.kind, "notes": args.notes}
        else:
            fields = {
                "kind": "meeting_held",
                "meeting": args.kind,
                "held_on": args.held_on,
                "notes": args.notes,
            }
    elif command == "purpose":
        fields = {"kind": "purpose_added", "purpose": args.purpose_id}
    elif command == "contact":
        fields = {"kind": "contact_added", "contact": parse_contact(args.contact)}
    elif command == "review":
        fields = {
            "kind": "completion_review_held",
            "held_on": args.held_on,
            "success_confirmed": args.confirmed,
            "feedback": args.feedback,
            "feature_requests": args.feature_request,
            "nps": [parse_nps(spec) for spec in args.nps],
        }
    elif command == "task":
        fields = {"kind": "task_completed", "task_id": args.task_id, "note": args.note}
    elif command == "cancel":
        fields = {"kind": "cancelled", "reason": args.reason}
    else:  # pragma: no cover - argparse only dispatches known commands
        raise BadInput(f"unknown command {command!r}")
    return build_event(fields)


# Output


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, ensure_ascii=False, indent=2)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    seconds = int((now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60}min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def start_line(result: StartResult) -> str:
    if result.already_running:
        return (
            f"{result.customer_id}: already running as {result.workflow_id} "
            f"(run {result.run_id}); nothing started"
        )
    return f"{result.customer_id}: started {result.workflow_id} (run {result.run_id})"


def event_line(customer_id: str, result: EventResult) -> str:
    if result.duplicate:
        return f"{customer_id}: {result.kind} was already recorded; nothing changed"
    line = f"{customer_id}: {result.kind} recorded; stage {result.stage.value}"
    return f"{line} ({result.detail})" if result.detail else line


def _verdict_lines(verdict: WeekVerdict) -> list[str]:
    m = verdict.measurement
    quota = "-" if m.quota_consumption is None else f"{m.quota_consumption:.0%}"
    keys = ", ".join(f"{k} {v}" for k, v in sorted(m.key_actions.items())) or "none"
    lines = [
        f"last measurement: week {m.week_index} ({_when(m.window_start)} to {_when(m.window_end)})",
        f"  active users {m.active_users}, active seat ratio {m.active_seat_ratio:.0%}, "
        f"events {m.events}, key actions: {keys}, quota used {quota}"
        + ("" if m.data_ever_arrived else ", no usage data yet"),
        f"  criteria {'MET' if verdict.criteria_met else 'not met'}:",
    ]
    for c in verdict.criteria:
        target = c.metric.value + (f"[{c.purpose}]" if c.purpose else "")
        lines.append(
            f"    [{'x' if c.met else ' '}] {target} >= {c.threshold:g}: observed {c.observed:g}"
            f" ({c.weeks_running}/{c.weeks_required} week(s) running)"
        )
    for c in verdict.stall_checks:
        target = c.metric.value + (f"[{c.purpose}]" if c.purpose else "")
        lines.append(
            f"    [{'!' if c.met else ' '}] stall if {target} < {c.threshold:g}: "
            f"observed {c.observed:g} ({c.weeks_running}/{c.weeks_required} week(s) running)"
        )
    return lines


def status_text(status: OnboardingStatus, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    s = status.state
    lines = [
        f"{status.customer_name} ({status.customer_id}): {s.stage.value.upper()} since "
        f"{_when(s.stage_since)} ({_ago(s.stage_since, now)})",
        f"  CSM {status.csm}, leader {status.cs_leader}, "
        f"playbook {status.playbook_name} {status.playbook_version}",
        "  goals: " + ("; ".join(goal.text for goal in s.goals) or "none agreed yet"),
        "  purposes: " + (", ".join(s.purposes) or "none chosen yet"),
    ]
    if s.recent_weeks:
        lines += ["  " + line for line in _verdict_lines(s.recent_weeks[-1])]
    else:
        lines.append("  last measurement: none yet")
    if s.stall.stalled:
        steps = ", ".join(str(step) for step in s.stall.steps_done) or "none"
        lines.append(
            f"  stall: STALLED since {_when(s.stall.since)} ({s.stall.weeks} week(s), "
            f"episode {s.stall.episode}, ladder steps done: {steps})"
        )
    else:
        lines.append("  stall: not stalled")
    if s.setup.stuck:
        escalated = ", escalated to the leader" if s.setup.escalated else ""
        lines.append(f"  setup: STUCK since {_when(s.setup.stuck_since)}{escalated}")
    else:
        arrived = "usage data arriving" if s.setup.data_arrived else "waiting for usage data"
        lines.append(f"  setup: {arrived}")
    lines.append(f"  open tasks: {len(s.open_tasks) or 'none'}")
    for task in s.open_tasks:
        due = f", due {_when(task.due_at)}" if task.due_at else ""
        lines.append(f"    {task.task_id} [{task.kind.value}] {task.assignee}: {task.title}{due}")
    if status.next_due is not None:
        lines.append(f"  next timer: {status.next_due.kind.value} at {_when(status.next_due.at)}")
    if s.rejected:
        last = s.rejected[-1]
        lines.append(f"  last rejected event: {last.kind} at {_when(last.at)}: {last.reason}")
    lines.append("  recent transitions:")
    for t in s.transitions[-5:]:
        origin = t.stage_from.value if t.stage_from else "-"
        lines.append(f"    {_when(t.at)} {origin} -> {t.stage_to.value}: {t.cause}")
    return "\n".join(lines)


def _table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _fate(email: EmailRow) -> str:
    """What the provider reported, in order, repeats counted: `delivered, open x2, click`."""
    if email.status == "failed":
        # Failed for good: refused by the provider, or a template that cannot render.
        return (email.error or "no reason recorded")[:120]
    seen = email.fate()
    if not seen:
        return "-"  # the outbox and SMTP report no events; SendGrid's may be on the way
    return ", ".join(name if count == 1 else f"{name} x{count}" for name, count in seen)


def emails_text(emails: Sequence[EmailRow]) -> str:
    """The send ledger for a customer's people, with what became of each email."""
    if not emails:
        return "  emails: none sent yet"
    failed = sum(email.status == "failed" for email in emails)
    rows = [("WHEN", "EMAIL", "TEMPLATE", "TO", "STATUS", "WHAT HAPPENED")]
    for email in emails:
        rows.append(
            (
                _when(email.sent_at or email.created_at),
                email.ledger_key,
                email.template,
                email.recipient,
                email.status,
                _fate(email),
            )
        )
    head = f"  emails: {len(emails)}" + (f" ({failed} failed)" if failed else "")
    return "\n".join([head, *_table(rows, indent="    ")])


def list_text(summaries: Sequence[CustomerSummary]) -> str:
    if not summaries:
        return "no customers match"
    rows = [("CUSTOMER", "STAGE", "CSM", "FLAGS", "WORKFLOW")]
    for s in summaries:
        flags = ",".join(f for f, on in (("stalled", s.stalled), ("stuck", s.setup_stuck)) if on)
        stage = s.stage.value if s.stage else "?"
        rows.append((s.customer_id, stage, s.csm or "-", flags or "-", s.workflow_status))
    return "\n".join(_table(rows))


# Commands: each checks its input, then connects


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


async def _client(settings: Settings) -> OnboardingClient:
    return OnboardingClient(await connect_client(settings), settings.task_queue)


async def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    playbook = read_playbook(args.playbook or settings.playbook)
    if args.csv is not None:
        if args.customer_id is not None:
            raise BadInput("start takes either --csv FILE or one customer's options, not both")
        handoffs = read_handoff_csv(args.csv, playbook)
    else:
        handoffs = [handoff_from_args(args)]
        check_purposes(handoffs[0], playbook)
    client = await _client(settings)
    results = []
    for handoff in handoffs:
        result = await client.start(handoff, playbook)
        results.append(result)
        if not args.json:
            print(start_line(result))
    if args.json:
        print(_json(results if args.csv is not None else results[0]))
    elif len(results) > 1:
        started = sum(not r.already_running for r in results)
        print(f"{started} started, {len(results) - started} already running")
    return EXIT_OK


async def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    event = event_from_args(args)
    client = await _client(settings)
    result = await client.record(args.customer, event)
    print(_json(result) if args.json else event_line(args.customer, result))
    return EXIT_OK


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from records.reports import customer_emails

    client = await _client(settings)
    status = await client.status(args.customer)
    emails: list[EmailRow] | None = None
    unavailable = ""
    try:
        with _database(settings) as database:
            emails = customer_emails(database, customer_id=args.customer)
    except SQLAlchemyError as err:
        # The state comes from Temporal; a database out of reach only costs the emails.
        unavailable = str(err).splitlines()[0][:200]
    if args.json:
        report = status.model_dump(mode="json")
        report["emails"] = None if emails is None else [e.model_dump(mode="json") for e in emails]
        if emails is None:
            report["emails_unavailable"] = unavailable
        print(_json(report))
    else:
        print(status_text(status))
        print(
            emails_text(emails)
            if emails is not None
            else f"  emails: cannot read the database: {unavailable}"
        )
    return EXIT_OK


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    summaries = await client.list(
        stage=args.stage,
        csm=args.csm,
        stalled=True if args.stalled else None,
        setup_stuck=True if args.stuck else None,
    )
    print(_json(summaries) if args.json else list_text(summaries))
    return EXIT_OK


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    """The application database, for commands that read or write records, not state."""
    # Imported here so the commands that only talk to Temporal stay quick to start.
    from records.database import Database

    database = Database(settings.database_url)
    try:
        database.migrate()
        yield database
    finally:
        database.dispose()


async def cmd_usage_record(args: argparse.Namespace, settings: Settings) -> int:
    if args.quantity <= 0:
        raise BadInput(f"--quantity must be positive, got {args.quantity:g}")
    occurred_at = parse_instant(args.at) if args.at else datetime.now(UTC)
    from records.usage.events import record_usage_event

    with _database(settings) as database:
        stored = record_usage_event(
            database,
            customer_id=args.customer,
            user_id=args.user,
            event=args.event,
            occurred_at=occurred_at,
            quantity=args.quantity,
            event_key=args.event_key,
        )
    outcome = {"customer_id": args.customer, "event": args.event, "stored": stored}
    if args.json:
        print(_json(outcome))
    else:
        verdict = "stored" if stored else "already stored (same event key); nothing changed"
        print(f"{args.customer}: usage {args.event} by {args.user}: {verdict}")
    return EXIT_OK


async def cmd_usage_import(args: argparse.Namespace, settings: Settings) -> int:
    if not args.file.is_file():
        raise BadInput(f"{args.file}: no such file")
    from records.usage.csv_import import import_usage_csv

    with _database(settings) as database:
        report = import_usage_csv(database, args.file)
    if args.json:
        print(_json(report))
    else:
        print(
            f"{args.file}: {report.stored} stored, {report.duplicates} already stored, "
            f"{len(report.rejected)} rejected"
        )
    for line, reason in report.rejected:
        print(f"{args.file}: line {line}: {reason}", file=sys.stderr)
    return EXIT_BAD_INPUT if report.rejected else EXIT_OK


async def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from records.reports import UnknownCustomer, customer_timeline

    with _database(settings) as database:
        try:
            rows = customer_timeline(database, customer_id=args.customer, kinds=args.kind)
        except UnknownCustomer:
            raise BadInput(f"unknown customer {args.customer!r}") from None
    if args.json:
        print(_json(rows))
        return EXIT_OK
    for row in rows:
        print(f"{_when(row.at)}  {row.stage:<17} {row.kind:<20} {row.summary}")
    if not rows:
        print(f"{args.customer}: nothing recorded yet")
    return EXIT_OK


async def cmd_task_list(args: argparse.Namespace, settings: Settings) -> int:
    from records.reports import list_tasks

    with _database(settings) as database:
        rows = list_tasks(
            database, assignee=args.assignee, customer_id=args.customer, include_done=args.all
        )
    if args.json:
        print(_json(rows))
        return EXIT_OK
    for row in rows:
        due = f", due {_when(row.due_at)}" if row.due_at else ""
        state = "" if row.state == "open" else f" [{row.state}: {row.resolution}]"
        print(f"{row.task_id:<20} {row.assignee:<28} {row.title}{due}{state}")
    if not rows:
        print("no tasks match")
    return EXIT_OK


def _templates(directory: Path | None, settings: Settings) -> jinja2.Environment:
    from emails.render import build_template_environment

    directory = directory or settings.templates_dir
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such templates directory")
    return build_template_environment(directory)


async def cmd_playbook_validate(args: argparse.Namespace, settings: Settings) -> int:
    """The file, then every email it makes the workflow send, rendered in every locale."""
    from emails.catalogue import check_templates, email_catalogue

    playbook = read_playbook(args.file)
    problems = check_templates(_templates(args.templates, settings), playbook)
    emails = len(email_catalogue(playbook))
    if args.json:
        print(
            _json(
                {
                    "ok": not problems,
                    "name": playbook.name,
                    "version": playbook.version,
                    "emails_checked": emails,
                    "problems": [problem.model_dump() for problem in problems],
                }
            )
        )
    elif not problems:
        print(
            f"ok: {playbook.name} {playbook.version}, {len(playbook.purposes)} purposes, "
            f"{len(playbook.completion_criteria)} completion criteria, "
            f"{emails} emails rendered"
        )
    for problem in problems:
        print(f"{args.file}: {problem.line()}", file=sys.stderr)
    return EXIT_BAD_INPUT if problems else EXIT_OK


def _preview_samples(args: argparse.Namespace, playbook: Playbook) -> list[EmailSample]:
    """The emails `email preview` asked for; every refusal names what there is instead."""
    from emails.catalogue import (
        LOCALES,
        WORKFLOW_EMAILS,
        choose_purpose_sample,
        step_sample,
        workflow_sample,
    )

    if args.locale is not None and args.locale not in LOCALES:
        raise BadInput(f"unknown locale {args.locale!r}: expected one of {', '.join(LOCALES)}")
    locales = [args.locale] if args.locale else list(LOCALES)
    role: Role | None = None
    if args.role is not None:
        if args.role not in Role.__members__.values():
            roles = ", ".join(r.value for r in Role)
            raise BadInput(f"unknown role {args.role!r}: expected one of {roles}")
        role = Role(args.role)
    if args.step is not None and args.purpose is None:
        raise BadInput("--step goes with --purpose")

    def roles_of(offered: Sequence[Role], what: str) -> list[Role]:
        if role is None:
            return list(offered)
        if role not in offered:
            names = ", ".join(r.value for r in offered)
            raise BadInput(f"{what} goes to {names}, not {role.value}")
        return [role]

    if args.template is not None:
        if args.template not in WORKFLOW_EMAILS:
            raise BadInput(
                f"unknown template {args.template!r}: expected one of "
                f"{', '.join(WORKFLOW_EMAILS)} (campaign steps: --purpose and --step)"
            )
        to = WORKFLOW_EMAILS[args.template]
        if role is not None and role != to:
            who = to.value if to else "the CSM or the leader"
            raise BadInput(f"{args.template} goes to {who}, not {role.value}")
        return [workflow_sample(playbook, args.template, locale) for locale in locales]
    if args.choose_purpose:
        choose = playbook.campaign.choose_purpose if playbook.campaign else None
        if choose is None:
            raise BadInput(f"{playbook.name} does not ask customers to choose a purpose")
        return [
            choose_purpose_sample(playbook, choose, r, locale)
            for r in roles_of(choose.roles, "campaign.choose_purpose")
            for locale in locales
        ]
    purpose = playbook.purpose(args.purpose)
    if purpose is None:
        offered = ", ".join(p.id for p in playbook.purposes)
        raise BadInput(f"unknown purpose {args.purpose!r}: the playbook offers {offered}")
    steps = ", ".join(s.id for s in purpose.steps) or "none"
    if args.step is None:
        raise BadInput(f"--purpose needs --step: purpose {purpose.id} has steps {steps}")
    step = next((s for s in purpose.steps if s.id == args.step), None)
    if step is None:
        raise BadInput(f"unknown step {args.step!r}: purpose {purpose.id} has steps {steps}")
    return [
        step_sample(purpose, step, r, locale)
        for r in roles_of(step.roles, f"step {step.id} of purpose {purpose.id}")
        for locale in locales
    ]


async def cmd_email_preview(args: argparse.Namespace, settings: Settings) -> int:
    """Renders as the worker would (English standing in for a missing translation)."""
    from temporalio.exceptions import ApplicationError

    from emails.catalogue import SAMPLE_RECIPIENT
    from emails.render import compose_message

    playbook = read_playbook(args.playbook or settings.playbook)
    samples = _preview_samples(args, playbook)
    templates = _templates(args.templates, settings)
    if args.out.exists() and not args.out.is_dir():
        raise BadInput(f"--out {args.out}: not a directory")
    rendered = []
    for sample in samples:
        try:
            rendered.append((sample, sample.render(templates)))
        except ApplicationError as err:
            raise BadInput(f"{sample.where}: {err.message}") from None
    # Everything rendered before the first file is written: a refusal leaves no files.
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for sample, email in rendered:
        stem = args.out / sample.file_stem
        message = compose_message(email, sender=settings.mail_from, recipient=SAMPLE_RECIPIENT)
        paths = {
            "txt": stem.with_name(f"{stem.name}.txt"),
            "html": stem.with_name(f"{stem.name}.html"),
            "eml": stem.with_name(f"{stem.name}.eml"),
        }
        paths["txt"].write_text(f"Subject: {email.subject}\n\n{email.text}", encoding="utf-8")
        paths["html"].write_text(email.html, encoding="utf-8")
        paths["eml"].write_bytes(message.as_bytes())
        written.append({"email": sample.where, "subject": email.subject, **paths})
        if not args.json:
            print("\n".join(str(path) for path in paths.values()))
    if args.json:
        print(_json([{k: str(v) for k, v in entry.items()} for entry in written]))
    return EXIT_OK


# Argument parsing


async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    from records.tokens import TokenError, TokenRole, create_token

    with _database(settings) as database:
        try:
            token, info = create_token(
                database, name=args.name, role=TokenRole(args.role), csm=args.csm
            )
        except TokenError as err:
            raise BadInput(str(err)) from None
    if args.json:
        print(_json({"token": token, **info.model_dump(mode="json")}))
    else:
        print(f"created token {info.id} ({info.role.value}) for {info.name}; shown once, keep it:")
        print(token)
    return EXIT_OK


async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    from records.tokens import list_tokens

    with _database(settings) as database:
        tokens = list_tokens(database)
    if args.json:
        print(_json([info.model_dump(mode="json") for info in tokens]))
        return EXIT_OK
    rows = [("ID", "NAME", "ROLE", "CSM", "PREFIX", "CREATED", "STATE")]
    for info in tokens:
        state = f"revoked {_when(info.revoked_at)}" if info.revoked_at else "active"
        rows.append(
            (
                str(info.id),
                info.name,
                info.role.value,
                info.csm or "",
                info.prefix + "…",
                _when(info.created_at),
                state,
            )
        )
    print("\n".join(_table(rows)) if tokens else "no tokens yet: liftoff token create --help")
    return EXIT_OK


async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from records.tokens import TokenError, revoke_token

    with _database(settings) as database:
        try:
            info = revoke_token(database, args.id)
        except TokenError as err:
            raise BadInput(str(err)) from None
    print(
        _json(info.model_dump(mode="json"))
        if args.json
        else f"revoked token {info.id} ({info.name})"
    )
    return EXIT_OK


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from api.server import base_url, serve_api

    if args.host:
        settings = settings.model_copy(update={"api_host": args.host})
    if args.port:
        settings = settings.model_copy(update={"api_port": args.port})
    # The playbook is read before anything is served: a broken one stops here, said plainly.
    read_playbook(settings.playbook)
    print(f"Liftoff API and dashboard on {base_url(settings)} (OpenAPI at /docs); Ctrl-C stops")
    await serve_api(settings)
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, exit code 2, like every other refusal."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = _Parser(
        prog="liftoff",
        description="Start customers' onboarding and record what happens with them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, handler: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    def recording(name: str, help: str) -> argparse.ArgumentParser:
        sub = command(name, cmd_record, help)
        sub.add_argument("customer", metavar="CUSTOMER", help="customer id")
        return sub

    start = command("start", cmd_start, "start a customer's onboarding from the sales handoff")
    start.add_argument("--csv", type=Path, help="start one customer per row of this CSV file")
    start.add_argument("--customer-id")
    start.add_argument("--name", help="the customer's company name")
    start.add_argument("--csm", help="the CSM's email")
    start.add_argument("--leader", help="the CS leader's email")
    start.add_argument(
        "--contact",
        action="append",
        default=[],
        metavar="'ROLE:Name <email>'",
        help="repeatable; ROLE is decision_maker, administrator or end_user",
    )
    start.add_argument("--seats", type=int, help="seats contracted")
    start.add_argument("--quota", type=float, help="usage quota contracted")
    start.add_argument("--time-zone", default="UTC", help="e.g. Asia/Tokyo")
    start.add_argument("--locale", default="en", help="ja or en")
    start.add_argument("--purpose", action="append", default=[], help="purpose id (repeatable)")
    start.add_argument("--trial", action="store_true", help="the customer used a trial")
    start.add_argument(
        "--already-using", action="store_true", help="the customer already uses the product"
    )
    start.add_argument("--notes", default="", help="sales handoff notes")
    start.add_argument("--playbook", type=Path, help="playbook file (default: LIFTOFF_PLAYBOOK)")

    kickoff = recording("kickoff", "record the kickoff meeting and the goals agreed")
    kickoff.add_argument("--held-on", required=True, metavar="YYYY-MM-DD")
    kickoff.add_argument("--attendee", action="append", default=[])
    kickoff.add_argument("--goal", action="append", default=[], help="short-term goal agreed")

    goal = recording("goal", "record a short-term goal agreed after the kickoff")
    goal.add_argument("text", metavar="TEXT")

    training = recording("training", "record the training held, or skipped with a reason")
    training.add_argument("--held-on", metavar="YYYY-MM-DD")
    training.add_argument("--attendee", action="append", default=[])
    training.add_argument("--skip", action="store_true")
    training.add_argument("--reason", help="why the training is skipped")

    meeting = recording("meeting", "record an on-demand meeting requested or held")
    meeting.add_argument("--kind", required=True, choices=[k.value for k in MeetingKind])
    when = meeting.add_mutually_exclusive_group(required=True)
    when.add_argument("--request", action="store_true", help="the meeting is requested")
    when.add_argument("--held-on", metavar="YYYY-MM-DD", help="the meeting was held")
    meeting.add_argument("--notes", default="")

    purpose = recording("purpose", "add a purpose the customer adopts the product for")
    purpose.add_argument("purpose_id", metavar="PURPOSE_ID")

    contact = recording("contact", "add a contact")
    contact.add_argument("contact", metavar="'ROLE:Name <email>'")

    review = recording("review", "record the completion review")
    review.add_argument("--held-on", required=True, metavar="YYYY-MM-DD")
    confirmed = review.add_mutually_exclusive_group(required=True)
    confirmed.add_argument("--confirmed", dest="confirmed", action="store_true", default=None)
    confirmed.add_argument("--not-confirmed", dest="confirmed", action="store_false")
    review.add_argument("--feedback", default="")
    review.add_argument("--feature-request", action="append", default=[])
    review.add_argument("--nps", action="append", default=[], metavar="EMAIL=SCORE")

    task = commands.add_parser("task", help="act on a task")
    task_commands = task.add_subparsers(dest="task_command", required=True, parser_class=_Parser)
    done = task_commands.add_parser("done", parents=[common], help="mark a task done")
    done.set_defaults(handler=cmd_record)
    done.add_argument("customer", metavar="CUSTOMER")
    done.add_argument("task_id", metavar="TASK_ID")
    done.add_argument("--note", default="")
    tasks = task_commands.add_parser(
        "list", parents=[common], help="list tasks for CSMs and leaders (open ones by default)"
    )
    tasks.set_defaults(handler=cmd_task_list)
    tasks.add_argument("--assignee", help="the CSM's or leader's email")
    tasks.add_argument("--customer", help="one customer's tasks")
    tasks.add_argument("--all", action="store_true", help="include done tasks")

    cancel = recording("cancel", "cancel the onboarding (contract ended, churned)")
    cancel.add_argument("--reason", required=True)

    status = command("status", cmd_status, "show a customer's onboarding")
    status.add_argument("customer", metavar="CUSTOMER")

    timeline = command("timeline", cmd_timeline, "show everything recorded for a customer")
    timeline.add_argument("customer", metavar="CUSTOMER")
    timeline.add_argument(
        "--kind", action="append", help="only these entry kinds (transition, weekly_measurement...)"
    )

    listing = command("list", cmd_list, "list customers, by stage, CSM or trouble")
    listing.add_argument("--stage", type=Stage, choices=list(Stage), metavar="STAGE")
    listing.add_argument("--csm", help="the CSM's email")
    listing.add_argument("--stalled", action="store_true", help="only stalled customers")
    listing.add_argument("--stuck", action="store_true", help="only customers stuck in setup")

    usage = commands.add_parser("usage", help="record product usage")
    usage_commands = usage.add_subparsers(dest="usage_command", required=True, parser_class=_Parser)
    record = usage_commands.add_parser("record", parents=[common], help="record one usage event")
    record.set_defaults(handler=cmd_usage_record)
    record.add_argument("customer", metavar="CUSTOMER")
    record.add_argument("--user", required=True)
    record.add_argument("--event", required=True)
    record.add_argument("--at", metavar="ISO-8601", help="when it happened (default: now)")
    record.add_argument("--quantity", type=float, default=1.0)
    record.add_argument("--event-key", help="idempotency key: the same key is stored once")
    imported = usage_commands.add_parser(
        "import", parents=[common], help="import usage events from a CSV file"
    )
    imported.set_defaults(handler=cmd_usage_import)
    imported.add_argument("file", type=Path, metavar="FILE.csv")

    playbook = commands.add_parser("playbook", help="work with playbook files")
    playbook_commands = playbook.add_subparsers(
        dest="playbook_command", required=True, parser_class=_Parser
    )
    # Both commands that render emails take the same templates folder.
    templates = _Parser(add_help=False)
    templates.add_argument(
        "--templates",
        type=Path,
        metavar="DIR",
        help="email templates (default: LIFTOFF_TEMPLATES_DIR)",
    )
    validate = playbook_commands.add_parser(
        "validate", parents=[common, templates], help="check a playbook file"
    )
    validate.set_defaults(handler=cmd_playbook_validate)
    validate.add_argument("file", type=Path, metavar="FILE")

    email = commands.add_parser("email", help="work with email templates")
    email_commands = email.add_subparsers(dest="email_command", required=True, parser_class=_Parser)
    preview = email_commands.add_parser(
        "preview",
        parents=[common, templates],
        help="render an email for a sample customer into .txt, .html and .eml files",
    )
    preview.set_defaults(handler=cmd_email_preview)
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument("--purpose", help="a purpose id; with --step")
    which.add_argument(
        "--choose-purpose", action="store_true", help="the email asking to choose a purpose"
    )
    which.add_argument(
        "--template", help="an email the workflow sends outside the campaign, e.g. task_assigned"
    )
    preview.add_argument("--step", help="the step id within --purpose")
    preview.add_argument("--role", help="one recipient role (default: each of the step's)")
    preview.add_argument("--locale", help="ja or en (default: both)")
    preview.add_argument("--out", type=Path, required=True, metavar="DIR")
    preview.add_argument("--playbook", type=Path, help="playbook file (default: LIFTOFF_PLAYBOOK)")
    token = commands.add_parser("token", help="manage HTTP API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, parser_class=_Parser)
    created = token_commands.add_parser(
        "create", parents=[common], help="create an API token (printed once)"
    )
    created.set_defaults(handler=cmd_token_create)
    created.add_argument("--name", required=True, help="who or what uses it")
    created.add_argument("--role", required=True, choices=["csm", "lead", "ops", "ingest"])
    created.add_argument("--csm", help="for a csm token: the CSM's email, whose customers it sees")
    listed = token_commands.add_parser("list", parents=[common], help="list API tokens")
    listed.set_defaults(handler=cmd_token_list)
    revoked = token_commands.add_parser("revoke", parents=[common], help="revoke an API token")
    revoked.set_defaults(handler=cmd_token_revoke)
    revoked.add_argument("id", type=int, metavar="ID")

    serve = command("serve", cmd_serve, "serve the HTTP API, usage intake and dashboard")
    serve.add_argument("--host", help="default: LIFTOFF_API_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: LIFTOFF_API_PORT (8000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as err:
        print(f"liftoff: error: bad configuration: {describe(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    handler: Command = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except (BadInput, LiftoffClientError) as err:
        print(f"liftoff: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RPCError as err:
        print(
            f"liftoff: error: Temporal at {settings.temporal_address} answered: {err.message}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except RuntimeError as err:
        # temporalio reports an unreachable server as a RuntimeError.
        if "connect" not in str(err).lower():
            raise
        print(
            f"liftoff: error: cannot reach Temporal at {settings.temporal_address} "
            f"(is it running? `make run` starts a local one): {str(err)[:200]}",
            file=sys.stderr,
        )
        return EXIT_FAILED


def cli() -> None:
    """Console entry point: run a command, then leave without interpreter teardown.

    The Temporal client's native threads can outlive the event loop and abort a
    short-lived process during finalization (temporalio/sdk-python#300), so the
    CLI flushes its output and exits directly once the command is done.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
