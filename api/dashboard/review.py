"""The playbook review report of one version: the page (/cohort/review), its Markdown
and its CSV (also GET /api/playbook-versions/{version}/review?format=md|csv).

It composes figures computed elsewhere, it recomputes none: the cohort's funnel
(records/customer_lists.py), time to onboard (analytics/survival.py), the stalls and
email steps (records/cohort_analytics.py), NPS by role (analytics/nps.py), the outcome
analysis (analytics/outcomes.py, worded by api/dashboard/outcomes.py), and for each
completion criterion the suggestion of analytics/review.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select

from analytics import survival
from analytics.email_steps import StepEmails
from analytics.nps import NpsGroup, nps_by
from analytics.outcomes import HEADLINE_MONTHS, OutcomeAnalysis, analyse
from analytics.review import Suggestion, suggest
from analytics.stalls import StallAnalysis
from analytics.survival import GroupBy, GroupEstimate
from api.dashboard.i18n import Translator
from api.dashboard.outcomes import conclusion, percent, points, times
from models.tables import Task
from records import cohort_analytics, customer_lists
from records.customer_lists import Cohort, Filters
from records.database import Database
from records.outcomes import outcome_facts
from records.review import review_task_id
from records.surveys import NpsBy, nps_facts


@dataclass(frozen=True)
class ReviewTask:
    assignee: str
    state: str
    opened_at: datetime
    title: str


@dataclass(frozen=True)
class ReviewReport:
    version: str
    cohort: Cohort
    time_to_onboard: GroupEstimate | None
    stalls: StallAnalysis
    email_steps: list[StepEmails]
    nps: list[NpsGroup]
    outcomes: OutcomeAnalysis
    suggestions: list[Suggestion]
    # The leader's task, once the threshold opened it.
    task: ReviewTask | None

    @property
    def finished(self) -> int:
        return self.cohort.onboarded + self.cohort.failed + self.cohort.cancelled


def _task(database: Database, version: str) -> ReviewTask | None:
    with database.session() as session:
        row = session.exec(select(Task).where(col(Task.task_id) == review_task_id(version))).first()
        if row is None:
            return None
        return ReviewTask(row.assignee, row.state, row.opened_at, row.title)


def review_report(database: Database, version: str, now: datetime, today: date) -> ReviewReport:
    filters = Filters(playbook_version=version)
    onboard = survival.time_to_onboard_figure(
        cohort_analytics.journeys(database, filters), GroupBy.ALL, now
    )
    stalls = cohort_analytics.stalls(database, filters)
    outcomes = analyse(
        outcome_facts(database, playbook_version=version), as_of=today, playbook_version=version
    )
    missing = {(line.metric, line.purpose): line for line in stalls.criteria}
    suggestions = [
        suggest(
            figures,
            missing.get((figures.criterion.metric, figures.criterion.purpose)),
            months=HEADLINE_MONTHS,
        )
        for figures in outcomes.horizon(HEADLINE_MONTHS).criteria
    ]
    return ReviewReport(
        version=version,
        cohort=customer_lists.cohort(database, filters, now),
        time_to_onboard=onboard.groups[0] if onboard.groups else None,
        stalls=stalls,
        email_steps=cohort_analytics.email_steps(database, filters),
        nps=nps_by(nps_facts(database, filters, NpsBy.ROLE)),
        outcomes=outcomes,
        suggestions=suggestions,
        task=_task(database, version),
    )


def days(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 86400:.1f}"


def suggestion_figures(s: Suggestion) -> str:
    """The figures a suggestion rests on, in one line."""
    parts = [
        f"met {s.met}, not met {s.not_met}",
        f"churn at {s.months} months: met {percent(s.churn_met)}, not met "
        f"{percent(s.churn_not_met)}",
        f"churn difference {points(s.churn_difference)} [{s.churn_difference.verdict.value}]",
        f"high-health lift {times(s.health_lift)} [{s.health_lift.verdict.value}]",
    ]
    if s.troubled_missing is not None:
        parts.append(
            f"unmet by {s.troubled_missing} failed/stalled ({percent(s.troubled_share)}), "
            f"median {s.median_weeks_missing or 0:g} weeks"
        )
    return "; ".join(parts)


# Markdown


def _cell(value: object) -> str:
    """A Markdown table cell: pipes and line breaks would break the table."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def markdown(report: ReviewReport, t: Translator) -> str:
    c = report.cohort
    out = [f"# {_cell(t('review_title', version=report.version))}", ""]
    out.append(
        f"{report.finished} finished (onboarded {c.onboarded}, failed {c.failed}, "
        f"cancelled {c.cancelled}), {c.active} in flight."
    )
    if report.task is not None:
        out.append(
            f"Review task for {_cell(report.task.assignee)}, opened "
            f"{report.task.opened_at:%Y-%m-%d} ({report.task.state})."
        )
    out += ["", f"## {t('review_suggestions')}", ""]
    out += _table(
        [t("col_criterion"), t("col_suggestion"), t("col_reason"), t("col_figures")],
        [
            [
                s.criterion,
                t(f"suggest_{s.action.value}"),
                t(f"reason_{s.reason.value}"),
                suggestion_figures(s),
            ]
            for s in report.suggestions
        ],
    )
    out += ["", f"## {t('review_outcomes')}", "", conclusion(t, report.outcomes), ""]
    out += [f"## {t('review_funnel')}", ""]
    out += _table(
        ["stage", "reached", "now"], [[f.stage.value, f.reached, f.now] for f in c.funnel]
    )
    out += ["", f"## {t('review_time')}", ""]
    g = report.time_to_onboard
    out += _table(
        ["customers", "onboarded", "censored", "median days", "95% interval (days)"],
        [
            [
                g.customers,
                g.events,
                g.censored,
                days(g.median_seconds),
                f"{days(g.median_ci_low_seconds)}…{days(g.median_ci_high_seconds)}",
            ]
        ]
        if g is not None
        else [],
    )
    out += ["", f"## {t('review_stalls')}", ""]
    out += _table(
        ["criterion", "customers", "failed", "stalled", "share", "median weeks unmet"],
        [
            [
                m.criterion,
                m.customers,
                m.failed,
                m.stalled,
                percent(m.share),
                m.median_weeks_missing,
            ]
            for m in report.stalls.criteria
        ],
    )
    out += ["", f"## {t('review_emails')}", ""]
    out += _table(
        ["step", "role", "locale", "sent", "delivered", "opened", "clicked", "opted out"],
        [
            [e.step, e.role, e.locale, e.sent, e.delivered, e.opened, e.clicked, e.opted_out]
            for e in report.email_steps
        ],
    )
    out += ["", f"## {t('review_nps')}", ""]
    out += _table(
        ["role", "answers", "NPS"],
        [[n.group, n.answers, "–" if n.nps is None else f"{n.nps:.1f}"] for n in report.nps],
    )
    return "\n".join(out) + "\n"


# CSV: one long table, a row per figure, so every section fits one file.

CSV_HEADER = ["section", "item", "measure", "value"]


def csv_rows(report: ReviewReport) -> list[list[object]]:
    rows: list[list[object]] = []
    c = report.cohort
    for name in ("onboarded", "failed", "cancelled", "active"):
        rows.append(["cohort", "", name, getattr(c, name)])
    for f in c.funnel:
        rows += [
            ["funnel", f.stage.value, "reached", f.reached],
            ["funnel", f.stage.value, "now", f.now],
        ]
    g = report.time_to_onboard
    if g is not None:
        for measure in (
            "customers",
            "events",
            "censored",
            "median_seconds",
            "median_ci_low_seconds",
            "median_ci_high_seconds",
        ):
            rows.append(["time_to_onboard", "all", measure, getattr(g, measure)])
    for m in report.stalls.criteria:
        for measure in ("customers", "failed", "stalled", "share", "median_weeks_missing"):
            rows.append(["stalls", m.criterion, measure, getattr(m, measure)])
    for e in report.email_steps:
        item = f"{e.step}/{e.role}/{e.locale}"
        for measure in ("sent", "delivered", "opened", "clicked", "opted_out"):
            rows.append(["email_steps", item, measure, getattr(e, measure)])
    for n in report.nps:
        rows += [
            ["nps_by_role", n.group, "answers", n.answers],
            ["nps_by_role", n.group, "nps", n.nps],
        ]
    for h in report.outcomes.horizons:
        for grp in h.groups:
            item = f"{grp.outcome.value}@{h.months}m"
            rows += [
                ["outcomes", item, "ended", grp.ended],
                ["outcomes", item, "churn_rate", grp.churn.rate],
            ]
    for s in report.suggestions:
        rows += [
            ["suggestion", s.criterion, "action", s.action.value],
            ["suggestion", s.criterion, "reason", s.reason.value],
            ["suggestion", s.criterion, "met", s.met],
            ["suggestion", s.criterion, "not_met", s.not_met],
            ["suggestion", s.criterion, "churn_met", s.churn_met],
            ["suggestion", s.criterion, "churn_not_met", s.churn_not_met],
            ["suggestion", s.criterion, "churn_difference", s.churn_difference.value],
            ["suggestion", s.criterion, "churn_difference_low", s.churn_difference.low],
            ["suggestion", s.criterion, "churn_difference_high", s.churn_difference.high],
            ["suggestion", s.criterion, "health_lift", s.health_lift.value],
            ["suggestion", s.criterion, "health_lift_low", s.health_lift.low],
            ["suggestion", s.criterion, "health_lift_high", s.health_lift.high],
            ["suggestion", s.criterion, "troubled_share", s.troubled_share],
        ]
    return rows
