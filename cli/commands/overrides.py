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


async def cmd_adjust(args: argparse.Namespace, settings: Settings) -> int:
    """Merge the flags onto the customer's overrides (or onto none, with --clear) and
    send the whole set; the workflow checks it against the customer's playbook."""
    from pydantic import ValidationError

    from cli.commands.playbooks import operator_name
    from models.errors import describe
    from models.overrides import CustomerOverrides, OverridesRequest, merged

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
    try:
        request = OverridesRequest(
            overrides=CustomerOverrides.model_validate(merged(current, changes)),
            reason=args.reason,
            requested_by=args.by or operator_name(),
        )
    except ValidationError as err:
        raise BadInput(f"adjust: {describe(err)}") from None
    result = await client.set_overrides(args.customer, request)
    print(to_json(result) if args.json else result_text(args.customer, result))
    return EXIT_OK


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    from models.overrides import parse_threshold, parse_timer, parse_weekday

    changes: dict[str, Any] = {}
    try:
        if args.threshold:
            changes["thresholds"] = dict(parse_threshold(spec) for spec in args.threshold)
        if args.timer:
            changes["timers"] = dict(parse_timer(spec) for spec in args.timer)
        if args.measure_on is not None:
            changes["measurement_weekday"] = parse_weekday(args.measure_on)
    except ValueError as err:
        raise BadInput(f"adjust: {err}") from None
    if args.measure_at is not None:
        changes["measurement_hour"] = args.measure_at
    if args.deadline is not None:
        changes["deadline"] = args.deadline
    if args.skip:
        changes["skip_steps"] = args.skip
    return changes


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
