"""History events of full default-playbook journeys, per customer and per customer-year.

Run it with `make bench` (or `.venv/bin/python bench/journey_events_bench.py`). Two kinds
of customer go through the shipped default playbook on the time-skipping server, with
the real activities (the simulator's runner): one that onboards late (kickoff, training,
a slow climb to the criteria, the completion review) and one that never meets them and
fails at the 180-day deadline after a weekly measurement every week, every campaign
step and the stall ladder. Each customer's events are summed over all its runs
(continue-as-new). A journey ends within its first year (the deadline is 180 days), so
its events are its customer-year's; the pace column says what a year at the journey's
own rate would hold, a bound for a playbook with a longer deadline.

The issue's goal: at most 1,500 events per customer-year, each run far below Temporal's
continue-as-new suggestion. Printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from temporalio.client import Client  # noqa: E402

from models import visibility  # noqa: E402
from records.playbooks import load_playbook  # noqa: E402
from simulation.cohort import synthetic_cohort  # noqa: E402
from simulation.profiles import ProfileSet, UsageProfile  # noqa: E402
from simulation.runner import Arm, simulate, working_directory  # noqa: E402
from testkit.factories import TEMPLATES  # noqa: E402

WEEKS = 30
YEAR = timedelta(days=365)
PROFILES = ProfileSet(
    profiles=[
        UsageProfile(
            name="onboards-late",
            share=0.5,
            seats=30,
            quota=2000,
            quota_share=[0.0, 0.0, 0.02, 0.03, 0.04, 0.05, 0.06],
            kickoff_day=5,
            training_day=19,
            goals=1,
            review_after_days=7,
            # Weeks of slow growth, then the criteria in about the fourth month.
            active_seat_ratio=[0.0, 0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55]
            + [0.55, 0.58, 0.58, 0.65, 0.7, 0.75],
            key_actions=[0, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 25, 30, 35, 40],
        ),
        UsageProfile(
            name="never-onboards",
            share=0.5,
            seats=30,
            kickoff_day=5,
            training_day=19,
            goals=1,
            active_seat_ratio=[0.0, 0.1, 0.2, 0.3],
            key_actions=[0, 2, 4, 6],
        ),
    ]
)


@dataclass
class Journey:
    profile: str
    runs: int
    events: int
    largest_run: int
    days: float
    per_year_at_this_pace: float


async def _journeys(client: Client, customers: dict[str, str]) -> list[Journey]:
    journeys = []
    for customer_id, profile in customers.items():
        handle = client.get_workflow_handle(visibility.workflow_id_for(customer_id))
        run_id: str | None = (await handle.describe()).run_id
        sizes, first, last = [], None, None
        while run_id:
            history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
            sizes.append(len(history.events))
            started = history.events[0]
            first = started.event_time.ToDatetime()
            last = last or history.events[-1].event_time.ToDatetime()
            attributes = started.workflow_execution_started_event_attributes
            run_id = attributes.continued_execution_run_id or None
        days = (last - first).total_seconds() / 86400 if first and last else 0.0
        events = sum(sizes)
        journeys.append(
            Journey(
                profile=profile,
                runs=len(sizes),
                events=events,
                largest_run=max(sizes),
                days=round(days, 1),
                per_year_at_this_pace=round(events * YEAR.days / days) if days else 0,
            )
        )
    return journeys


async def measure(customers: int) -> list[Journey]:
    playbook = load_playbook(REPO / "playbooks" / "default.toml")
    arm = Arm("year", playbook)
    purposes = [purpose.id for purpose in playbook.purposes]
    cohort = synthetic_cohort(PROFILES, customers, seed=1, weeks=WEEKS, purposes=purposes)
    ids = {arm.customer_id(customer): customer.profile for customer in cohort}
    found: list[Journey] = []

    async def read(client: Client) -> None:
        found.extend(await _journeys(client, ids))

    with working_directory() as workdir:
        await simulate(
            [arm], cohort, weeks=WEEKS, workdir=workdir, templates_dir=TEMPLATES, before_close=read
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4, help="2 to 40 (default 4)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 2 <= args.customers <= 40:
        parser.error("--customers must be from 2 to 40")
    journeys = asyncio.run(measure(args.customers))
    if args.json:
        print(json.dumps([asdict(j) for j in journeys], indent=2))
        return
    print("full default-playbook journeys (time-skipping server, real activities)")
    print(
        f"{'profile':<16}{'days':>7}{'runs':>6}{'events':>8}{'largest run':>13}"
        f"{'a year at this pace':>21}"
    )
    for j in sorted(journeys, key=lambda j: j.profile):
        print(
            f"{j.profile:<16}{j.days:>7}{j.runs:>6}{j.events:>8}{j.largest_run:>13}"
            f"{j.per_year_at_this_pace:>21}"
        )
    most = max(j.events for j in journeys)
    pace = max(j.per_year_at_this_pace for j in journeys)
    print(
        f"most events in a customer-year: {most:,} (goal: at most 1,500); "
        f"fastest pace: {pace:,} a year; largest run: {max(j.largest_run for j in journeys):,} "
        "events (Temporal warns every 10,000 events and stops a history at 50,000)"
    )


if __name__ == "__main__":
    from client.connection import exit_without_finalizing

    main()
    exit_without_finalizing(0)
