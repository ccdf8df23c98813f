"""The customers a simulation runs: synthetic ones drawn from usage profiles and a seed,
each with the CSM's meeting days and its usage as events relative to its handoff.

Everything here is drawn from `random.Random(seed)` in a fixed order, so one seed
always gives the same cohort. Usage is spread over the days of each week: active user
`i` uses the product on day `i % 7` of every week it is active, so any 7-day
measurement window, wherever it starts, sees each week's active users exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from records.history import PastCustomer
from simulation.profiles import ProfileSet, UsageProfile

# Bounds on a cohort: a few hundred customers is what a minute on two cores runs.
MAX_SYNTHETIC = 2_000
# A past customer who never reached its completion review is reviewed this long after
# meeting the criteria, unless the cohort's own reviews say otherwise (their median).
DEFAULT_REVIEW_AFTER_DAYS = 7
# Usage events happen from midday, a second apart per event of the day.
_USAGE_HOUR = timedelta(hours=12)


class UsageKind(StrEnum):
    """What a usage row is, resolved against each playbook the simulation runs."""

    # The playbook's key action of the row's purpose.
    KEY_ACTION = "key_action"
    # The playbook's quota event, with the row's quantity.
    QUOTA = "quota"
    # An event recorded by name (past customers' usage): kept as it was.
    NAMED = "named"


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One usage event, `offset` after the customer's handoff."""

    offset: timedelta
    user_id: str
    kind: UsageKind
    # The purpose of a key action, or the event's name for NAMED.
    name: str = ""
    quantity: float = 1.0


@dataclass(frozen=True)
class SimulatedCustomer:
    """One customer: its contract, when its CSM holds each meeting, and its usage."""

    key: str
    profile: str
    seats: int
    quota: float | None
    purposes: tuple[str, ...]
    # Days after the handoff; None: never held.
    kickoff_day: int | None
    training_day: int | None
    goals: int
    # Days after the completion criteria are met; None: never held.
    review_after_days: int | None
    usage: tuple[UsageRow, ...] = field(repr=False)
    time_zone: str = "UTC"
    locale: str = "en"
    trial_used: bool = False
    already_using: bool = False
    # The CSM skips the training on `training_day` instead of holding it.
    training_skipped: bool = False


def synthetic_cohort(
    profiles: ProfileSet,
    customers: int,
    *,
    seed: int,
    weeks: int,
    purposes: Sequence[str],
) -> list[SimulatedCustomer]:
    """`customers` customers in the profiles' shares, each with one purpose drawn from
    `purposes` and `weeks` weeks of usage."""
    if not 1 <= customers <= MAX_SYNTHETIC:
        raise ValueError(f"a synthetic cohort has 1 to {MAX_SYNTHETIC} customers")
    if not purposes:
        raise ValueError("the playbooks share no purpose for the customers to hold")
    rng = random.Random(seed)
    names = _assigned(profiles.profiles, customers)
    rng.shuffle(names)
    by_name = {profile.name: profile for profile in profiles.profiles}
    return [
        _customer(by_name[name], f"{index:04d}", rng, weeks, purposes)
        for index, name in enumerate(names, start=1)
    ]


def _assigned(profiles: Sequence[UsageProfile], customers: int) -> list[str]:
    """Profile names in their shares (largest remainder: the counts add up exactly)."""
    total = sum(profile.share for profile in profiles)
    exact = [profile.share / total * customers for profile in profiles]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(profiles)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: customers - sum(counts)]:
        counts[i] += 1
    return [p.name for p, count in zip(profiles, counts, strict=True) for _ in range(count)]


def _jittered(day: int | None, jitter: int, rng: random.Random) -> int | None:
    shift = rng.randint(-jitter, jitter) if jitter else 0
    return None if day is None else max(0, day + shift)


def _customer(
    profile: UsageProfile,
    key: str,
    rng: random.Random,
    weeks: int,
    purposes: Sequence[str],
) -> SimulatedCustomer:
    purpose = rng.choice(list(purposes))
    kickoff = _jittered(profile.kickoff_day, profile.jitter_days, rng)
    training = _jittered(profile.training_day, profile.jitter_days, rng)
    if training is not None and kickoff is not None:
        training = max(training, kickoff)
    usage: list[UsageRow] = []
    for week in range(weeks):
        ratio, key_actions, quota_share = profile.week(week)
        factor = 1 + rng.uniform(-profile.noise, profile.noise) if profile.noise else 1.0
        active = min(profile.seats, round(ratio * profile.seats * factor))
        actions = round(key_actions * factor)
        quota_units = quota_share * (profile.quota or 0) * factor
        usage += _week_usage(week, active, actions, quota_units, purpose)
    return SimulatedCustomer(
        key=key,
        profile=profile.name,
        seats=profile.seats,
        quota=profile.quota,
        purposes=(purpose,),
        kickoff_day=kickoff,
        training_day=training,
        goals=profile.goals,
        review_after_days=profile.review_after_days,
        usage=tuple(usage),
    )


def _week_usage(
    week: int, active: int, actions: int, quota_units: float, purpose: str
) -> list[UsageRow]:
    """One week's events: the key actions shared out over the days and the active users
    of each day, then a login for each active user who did none."""
    rows: list[UsageRow] = []
    users = max(active, 1)
    acted: set[int] = set()
    for day in range(7):
        start = timedelta(days=7 * week + day) + _USAGE_HOUR
        todays_users = list(range(day, active, 7)) or [day % users]
        todays_actions = actions // 7 + (1 if day < actions % 7 else 0)
        for n in range(todays_actions):
            user = todays_users[n % len(todays_users)]
            acted.add(user)
            rows.append(
                UsageRow(
                    start + timedelta(seconds=n), f"user-{user}", UsageKind.KEY_ACTION, purpose
                )
            )
        for n, user in enumerate(u for u in range(day, active, 7) if u not in acted):
            rows.append(
                UsageRow(
                    start + timedelta(seconds=todays_actions + n),
                    f"user-{user}",
                    UsageKind.NAMED,
                    "login",
                )
            )
    if quota_units > 0:
        rows.append(
            UsageRow(
                timedelta(days=7 * week) + _USAGE_HOUR,
                "user-0",
                UsageKind.QUOTA,
                quantity=round(quota_units, 3),
            )
        )
    return rows


def _day(offset: timedelta | None) -> int | None:
    return None if offset is None else max(0, offset // timedelta(days=1))


def history_cohort(past: Sequence[PastCustomer]) -> list[SimulatedCustomer]:
    """Past customers as they were handed over, their CSM's meetings on the same days
    after their start and their recorded usage at the same offsets. Each is grouped by
    how its onboarding went then ("was-onboarded", "was-failed", "was-in-flight"...)."""
    delays = sorted(d for p in past if (d := _day(p.review_delay)) is not None)
    usual = delays[len(delays) // 2] if delays else DEFAULT_REVIEW_AFTER_DAYS
    cohort = []
    for index, customer in enumerate(past, start=1):
        review = _day(customer.review_delay)
        cohort.append(
            SimulatedCustomer(
                key=f"{index:04d}",
                profile=f"was-{(customer.outcome or 'in-flight').replace('_', '-')}",
                seats=customer.seats,
                quota=customer.quota,
                purposes=tuple(customer.purposes),
                kickoff_day=_day(customer.kickoff),
                training_day=_day(customer.training),
                goals=customer.goals,
                review_after_days=usual if review is None else review,
                usage=tuple(
                    UsageRow(row.offset, row.user_id, UsageKind.NAMED, row.event, row.quantity)
                    for row in customer.usage
                ),
                time_zone=customer.time_zone,
                locale=customer.locale,
                trial_used=customer.trial_used,
                already_using=customer.already_using,
                training_skipped=customer.training_skipped,
            )
        )
    return cohort
