"""What a simulation shows per playbook, the differences between two, and the
Markdown and CSV that carry them.

Every figure is read from the run's database the way the cohort analytics read a real
one: the customer projection (funnel, time to onboard through `analytics.survival`'s
Kaplan-Meier, censoring customers still in flight at the end of the simulation), the
timeline (stalls, stuck in setup), tasks (escalations) and the email ledger (emails
sent, one per recipient).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel
from sqlmodel import col, select

from analytics import survival
from models.onboarding import Stage, TaskKind
from models.tables import EmailLedgerEntry, Task, TimelineEntry
from records.cohort_analytics import journeys
from records.customer_lists import Filters
from simulation.runner import Arm, SimulationRun

DAY_SECONDS = 86_400.0
FUNNEL = (
    Stage.KICKOFF,
    Stage.TRAINING,
    Stage.ADOPTION,
    Stage.COMPLETION_REVIEW,
    Stage.ONBOARDED,
)
# The furthest-stage rank the projection keeps (handoff 0 ... onboarded 5).
_RANK = {stage: rank for rank, stage in enumerate(FUNNEL, start=1)}
ESCALATIONS = (
    TaskKind.OVERDUE_ESCALATION,
    TaskKind.STALL_ESCALATION,
    TaskKind.SETUP_STUCK_ESCALATION,
)
# Email categories, by the ledger key's first part (workflows/: campaign.py, surveys.py,
# onboarding.py), in the order the report shows them.
EMAIL_CATEGORIES = {
    "campaign": "step emails (purpose campaign)",
    "stall": "stall proposals",
    "survey": "NPS surveys",
    "task": "task notices to the CSM and leader",
    "failed": "onboarding failed notices",
}
OTHER_EMAILS = "other"


class PlaybookFigures(BaseModel):
    """One playbook over the cohort."""

    label: str
    playbook: str
    customers: int
    # Customers who reached each stage (by its value), and how many ended failed.
    funnel: dict[str, int]
    failed: int
    in_flight: int
    median_days_to_onboard: float | None
    median_ci_low_days: float | None
    median_ci_high_days: float | None
    stalled_customers: int
    stall_episodes: int
    setup_stuck_customers: int
    escalations: int
    escalated_customers: int
    emails_per_customer: dict[str, float]
    refused_events: int
    # Per usage profile: customers and how many onboarded.
    profiles: dict[str, tuple[int, int]]

    @property
    def onboarded(self) -> int:
        return self.funnel[Stage.ONBOARDED.value]


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / DAY_SECONDS, 1)


def _of_arm(rows: Iterable[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    return [row for row in rows if row[0].startswith(prefix)]


def playbook_figures(run: SimulationRun, arm: Arm) -> PlaybookFigures:
    prefix = f"{arm.label}-"
    database = run.database
    profile_of = {arm.customer_id(c): c.profile for c in run.cohort}
    mine = [j for j in journeys(database, Filters()) if j.customer_id.startswith(prefix)]
    spans = survival.time_to_onboard(mine, run.ended_at)
    estimate = survival.estimate("all", spans)
    with database.session() as session:
        marks = session.exec(
            select(TimelineEntry.customer_id, TimelineEntry.kind).where(
                col(TimelineEntry.kind).in_(("stall_started", "setup_stuck"))
            )
        ).all()
        tasks = session.exec(
            select(Task.customer_id, Task.kind).where(
                col(Task.kind).in_([kind.value for kind in ESCALATIONS])
            )
        ).all()
        sent = session.exec(
            select(EmailLedgerEntry.customer_id, EmailLedgerEntry.ledger_key).where(
                col(EmailLedgerEntry.status) == "sent"
            )
        ).all()
    marks = _of_arm(marks, prefix)
    tasks = _of_arm(tasks, prefix)
    sent = _of_arm(sent, prefix)
    customers = len(run.cohort)
    emails: Counter[str] = Counter()
    for _, key in sent:
        first = key.split(":", 1)[0]
        emails[first if first in EMAIL_CATEGORIES else OTHER_EMAILS] += 1
    onboarded_by_profile: Counter[str] = Counter(
        profile_of[j.customer_id] for j in mine if j.outcome == Stage.ONBOARDED.value
    )
    cohort_profiles = Counter(c.profile for c in run.cohort)
    return PlaybookFigures(
        label=arm.label,
        playbook=f"{arm.playbook.name} {arm.playbook.version}",
        customers=customers,
        funnel={stage.value: sum(j.furthest >= _RANK[stage] for j in mine) for stage in FUNNEL},
        failed=sum(j.outcome == Stage.FAILED.value for j in mine),
        in_flight=sum(j.outcome is None for j in mine),
        median_days_to_onboard=_days(estimate.median_seconds),
        median_ci_low_days=_days(estimate.median_ci_low_seconds),
        median_ci_high_days=_days(estimate.median_ci_high_seconds),
        stalled_customers=len({c for c, kind in marks if kind == "stall_started"}),
        stall_episodes=sum(kind == "stall_started" for _, kind in marks),
        setup_stuck_customers=len({c for c, kind in marks if kind == "setup_stuck"}),
        escalations=len(tasks),
        escalated_customers=len({c for c, _ in tasks}),
        emails_per_customer={
            category: round(emails[category] / customers, 2)
            for category in [*EMAIL_CATEGORIES, OTHER_EMAILS]
        }
        | {"all": round(sum(emails.values()) / customers, 2)},
        refused_events=sum(run.refused.get(arm.label, Counter()).values()),
        profiles={
            name: (count, onboarded_by_profile[name])
            for name, count in sorted(cohort_profiles.items())
        },
    )


class Row(BaseModel):
    """One line of the report: a measure and its value under each playbook."""

    section: str
    measure: str
    values: list[float | None]

    @property
    def difference(self) -> float | None:
        """Under the first playbook minus under the second (NEW - OLD)."""
        if len(self.values) != 2:
            return None
        new, old = self.values
        if new is None or old is None:
            return None
        return round(new - old, 2)


def rows(figures: Sequence[PlaybookFigures]) -> list[Row]:
    """The report's lines, in the order shown."""

    def line(section: str, measure: str, attribute: str) -> Row:
        return Row(
            section=section, measure=measure, values=[getattr(f, attribute) for f in figures]
        )

    found = [
        Row(section="funnel", measure="customers", values=[f.customers for f in figures]),
        *(
            Row(
                section="funnel",
                measure=f"reached {stage.value.replace('_', ' ')}",
                values=[f.funnel[stage.value] for f in figures],
            )
            for stage in FUNNEL
        ),
        line("funnel", "failed (deadline passed)", "failed"),
        line("funnel", "still onboarding at the end", "in_flight"),
        line("time to onboard", "median days (Kaplan-Meier)", "median_days_to_onboard"),
        line("time to onboard", "95% interval, low", "median_ci_low_days"),
        line("time to onboard", "95% interval, high", "median_ci_high_days"),
        line("stalls", "customers who stalled", "stalled_customers"),
        line("stalls", "stall episodes", "stall_episodes"),
        line("stalls", "customers stuck in setup", "setup_stuck_customers"),
        line("escalations", "escalations to the leader", "escalations"),
        line("escalations", "customers escalated", "escalated_customers"),
    ]
    for category, title in [*EMAIL_CATEGORIES.items(), (OTHER_EMAILS, OTHER_EMAILS)]:
        found.append(
            Row(
                section="emails per customer",
                measure=title,
                values=[f.emails_per_customer[category] for f in figures],
            )
        )
    found.append(
        Row(
            section="emails per customer",
            measure="all",
            values=[f.emails_per_customer["all"] for f in figures],
        )
    )
    profiles = sorted({name for f in figures for name in f.profiles})
    for name in profiles:
        found.append(
            Row(
                section="onboarded by profile",
                measure=f"{name} ({figures[0].profiles.get(name, (0, 0))[0]} customers)",
                values=[f.profiles.get(name, (0, 0))[1] for f in figures],
            )
        )
    found.append(line("simulation", "CSM events refused or too late", "refused_events"))
    return found


def _number(value: float | None) -> str:
    if value is None:
        return "not reached"
    return f"{value:g}"


def _signed(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:+g}" if value else "0"


def headers(figures: Sequence[PlaybookFigures]) -> list[str]:
    return [f"{f.label.upper()}: {f.playbook}" for f in figures]


def markdown(figures: Sequence[PlaybookFigures], *, title: str) -> str:
    columns = headers(figures)
    compare = len(figures) == 2
    head = ["measure", *columns, *(["difference (NEW - OLD)"] if compare else [])]
    lines = [f"# {title}", ""]
    section = ""
    for row in rows(figures):
        if row.section != section:
            section = row.section
            lines += ["", f"## {section.capitalize()}", ""]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        cells = [row.measure, *(_number(v) for v in row.values)]
        if compare:
            cells.append(_signed(row.difference))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def csv_text(figures: Sequence[PlaybookFigures]) -> str:
    """One line per measure: section, measure, each playbook's value, the difference."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    compare = len(figures) == 2
    writer.writerow(["section", "measure", *headers(figures), *(["difference"] if compare else [])])
    for row in rows(figures):
        values = ["" if v is None else f"{v:g}" for v in row.values]
        difference = (
            [] if not compare else ["" if row.difference is None else f"{row.difference:g}"]
        )
        writer.writerow([row.section, row.measure, *values, *difference])
    return out.getvalue()
