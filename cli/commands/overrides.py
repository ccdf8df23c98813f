"""`liftoff adjust`: one customer's overrides of its playbook (models/overrides.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cli import connections
from cli.errors import EXIT_OK, BadInput
from cli.output import to_json
from settings import Settings

if TYPE_CHECKING:
    from models.migration import OverridesResult
    from models.overrides import CustomerOverrides

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


async def cmd_adjust(args: argparse.Namespace, settings: Settings) -> int:
    """Merge the flags onto the customer's overrides (or onto none, with --clear) and
    send the whole set; the workflow checks it against the customer's playbook."""
    from pydantic import ValidationError

    from cli.commands.playbooks import operator_name
    from models.errors import describe
    from models.overrides import CustomerOverrides, OverridesRequest

    changes = _changes(args)
    if not changes and not args.clear:
        raise BadInput(
            "adjust needs at least one of --threshold, --timer, --measure-on, --measure-at, "
            "--deadline, --skip, or --clear"
        )
    # Checked before connecting: a typo is refused without a round trip.
    try:
        CustomerOverrides.model_validate(changes)
        OverridesRequest(
            overrides=CustomerOverrides(),
            reason=args.reason,
            requested_by=args.by or operator_name(),
        )
    except ValidationError as err:
        raise BadInput(f"adjust: {describe(err)}") from None
    client = await connections.onboarding_client(settings)
    current = None if args.clear else (await client.status(args.customer)).state.overrides
    merged = _merged(current, changes)
    try:
        request = OverridesRequest(
            overrides=CustomerOverrides.model_validate(merged),
            reason=args.reason,
            requested_by=args.by or operator_name(),
        )
    except ValidationError as err:
        raise BadInput(f"adjust: {describe(err)}") from None
    result = await client.set_overrides(args.customer, request)
    print(to_json(result) if args.json else result_text(args.customer, result))
    return EXIT_OK


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.threshold:
        changes["thresholds"] = dict(
            _pair(spec, "--threshold NAME=VALUE") for spec in args.threshold
        )
        for name, value in changes["thresholds"].items():
            try:
                changes["thresholds"][name] = float(value)
            except ValueError:
                raise BadInput(f"--threshold {name}: not a number: {value!r}") from None
    if args.timer:
        changes["timers"] = dict(_timer(spec) for spec in args.timer)
    if args.measure_on is not None:
        changes["measurement_weekday"] = _weekday(args.measure_on)
    if args.measure_at is not None:
        changes["measurement_hour"] = args.measure_at
    if args.deadline is not None:
        changes["deadline"] = args.deadline
    if args.skip:
        changes["skip_steps"] = args.skip
    return changes


def _merged(current: CustomerOverrides | None, changes: dict[str, Any]) -> dict[str, Any]:
    """The customer's overrides with the changes on top: thresholds and timers by name,
    skipped steps added to those already skipped."""
    merged = current.model_dump(exclude_defaults=True) if current is not None else {}
    for field, value in changes.items():
        if field in ("thresholds", "timers"):
            merged[field] = {**merged.get(field, {}), **value}
        elif field == "skip_steps":
            merged[field] = list(dict.fromkeys([*merged.get(field, []), *value]))
        else:
            merged[field] = value
    return merged


def _pair(spec: str, form: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise BadInput(f"expected {form}, got {spec!r}")
    return name.strip(), value.strip()


def _timer(spec: str) -> tuple[str, dict[str, str]]:
    """`kickoff=5d` (the reminder) or `kickoff=5d/10d` (reminder and escalation)."""
    stage, value = _pair(spec, "--timer STAGE=REMIND[/ESCALATE]")
    remind, _, escalate = value.partition("/")
    timer = {"remind_csm_after": remind.strip()} if remind.strip() else {}
    if escalate.strip():
        timer["escalate_to_leader_after"] = escalate.strip()
    return stage, timer


def _weekday(value: str) -> int:
    """`monday`, `mon` or 0 to 6 (0 = Monday)."""
    text = value.strip().lower()
    if text.isdigit() and int(text) <= 6:
        return int(text)
    for number, name in enumerate(_WEEKDAYS):
        if text in (name, name[:3]):
            return number
    raise BadInput(f"--measure-on: not a weekday: {value!r} (Monday to Sunday, or 0 to 6)")


def result_text(customer_id: str, result: OverridesResult) -> str:
    if not result.overridden:
        lines = [f"{customer_id}: no overrides; the playbook's values apply"]
    else:
        width = max(len(value.name) for value in result.overridden)
        lines = [f"{customer_id}: adjusted ({len(result.overridden)} value(s))"]
        lines += [
            f"  {value.name.ljust(width)}  playbook {value.playbook}  →  {value.customer}"
            for value in result.overridden
        ]
    lines.append(f"  {result.plan.summary()}")
    return "\n".join(lines)
