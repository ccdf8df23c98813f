"""What the user typed, parsed and checked before anything is sent.

Handoffs given as options (a CSV file is `cli/handoff_csv.py`), playbook files
and the events a recording command sends. Every refusal is a `BadInput` whose message is one line.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cli.errors import BadInput
from client.handoffs import UnknownPurposeError
from client.handoffs import check_purposes as check_playbook_purposes
from models.errors import describe
from models.events import NpsAnswer, OnboardingEvent
from models.handoff import Contact, CustomerHandoff, Role
from models.playbook import Playbook, PlaybookError
from records.playbooks import load_playbook

_CONTACT = re.compile(
    r"^\s*(?P<role>[^:]+?)\s*:\s*"
    r"(?:(?P<name>[^<]*?)\s*<(?P<email>[^<>]*)>|(?P<address>[^\s<>]+@[^\s<>]+))\s*$"
)
_EVENT = TypeAdapter[OnboardingEvent](OnboardingEvent)


def parse_contact(spec: str) -> Contact:
    """`role:Name <email>`, e.g. `administrator:Hanako Sato <hanako@example.co.jp>`, or
    `role:email`, whose address then stands for the name."""
    match = _CONTACT.match(spec)
    if match is None:
        raise BadInput(f"bad contact {spec!r}: expected 'role:Name <email>' or 'role:email'")
    role = match["role"].strip().lower().replace("-", "_").replace(" ", "_")
    if role not in Role.__members__.values():
        roles = ", ".join(r.value for r in Role)
        raise BadInput(f"bad role {match['role']!r} in contact {spec!r}: expected one of {roles}")
    try:
        address = match["address"]
        if address is not None:
            return Contact(role=Role(role), name=address, email=address)
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
            "country": args.country,
            "purposes": args.purpose,
            "trial_used": args.trial,
            "already_using": args.already_using,
            "handoff_notes": args.notes,
        }
    )


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


def output_directory(path: Path) -> Path:
    """`--out`, checked before any work: a directory, or one that can be made there.
    A run of minutes must not end in a traceback that loses its report."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"--out {path}: {existing} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"--out {path}: {existing} is not writable")
    return path


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
    return build_event(event_fields(args))


# The event kinds each recording command sends, words a CSM types rather than the
# registry's kinds: a test holds them against models.events.EVENT_MODELS, so a new
# kind without a command fails it.
COMMAND_KINDS: dict[str, tuple[str, ...]] = {
    "kickoff": ("kickoff_held",),
    "goal": ("goal_agreed",),
    "training": ("training_held", "training_skipped"),
    "meeting": ("meeting_requested", "meeting_held"),
    "purpose": ("purpose_added",),
    "contact": ("contact_added",),
    "review": ("completion_review_held",),
    "task": ("task_completed",),
    "pause": ("paused",),
    "resume": ("resumed",),
    "cancel": ("cancelled",),
}


def event_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Each recording command's arguments as the fields of its event kind."""
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
    elif command == "pause":
        fields = {"kind": "paused", "reason": args.reason, "resume_on": args.until}
    elif command == "resume":
        fields = {"kind": "resumed"}
    elif command == "cancel":
        fields = {"kind": "cancelled", "reason": args.reason}
    else:  # pragma: no cover - argparse only dispatches known commands
        raise BadInput(f"unknown command {command!r}")
    return fields
