"""The outcome analysis as people read it: the conclusion in a sentence (en, ja), and
the figures formatted for the page (/cohort/outcomes) and the REST answer.

The figures come from `analytics.outcomes` over the facts `records.outcomes` reads;
the words from `api/dashboard/i18n.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from analytics.outcomes import (
    HEADLINE_MONTHS,
    MIN_GROUP,
    Estimate,
    OutcomeAnalysis,
    Verdict,
    analyse,
)
from api.dashboard.i18n import LOCALES, Locale, Translator
from models.onboarding import Stage
from records.database import Database
from records.outcomes import ended_playbook_versions, outcome_facts

MINUS = "\u2212"


def signed(value: float, digits: int = 1) -> str:
    """A number with a true minus sign, as the intervals are printed."""
    text = f"{value:.{digits}f}"
    return text.replace("-", MINUS)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{signed(100 * value)}%"


def points(estimate: Estimate) -> str:
    """A difference of rates in percentage points, with its interval: +8.1 pp (−1.4…18.1)."""
    if estimate.value is None or estimate.low is None or estimate.high is None:
        return "–"
    sign = "+" if estimate.value > 0 else ""
    return (
        f"{sign}{signed(100 * estimate.value)} pp ({signed(100 * estimate.low)}…"
        f"{signed(100 * estimate.high)})"
    )


def times(estimate: Estimate) -> str:
    """A ratio with its interval: 1.9× (1.4…2.6)."""
    if estimate.low is None or estimate.high is None:
        return "–"
    value = "∞" if estimate.value is None else f"{estimate.value:.2f}"
    return f"{value}× ({estimate.low:.2f}…{estimate.high:.2f})"


def score(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "–"
    if low is None or high is None:
        return f"{value:.1f}"
    return f"{value:.1f} ({low:.1f}…{high:.1f})"


def conclusion(t: Translator, analysis: OutcomeAnalysis) -> str:
    """What the analysis says about onboarded against failed customers a year on, in one
    sentence: churn, then health, each with its interval and whether it is conclusive."""
    months = HEADLINE_MONTHS
    horizon = analysis.horizon(months)
    groups = {group.outcome: group for group in horizon.groups}
    onboarded, failed = groups[Stage.ONBOARDED], groups[Stage.FAILED]
    version = (
        t("oc_version", version=analysis.playbook_version)
        if analysis.playbook_version is not None
        else t("oc_any_version")
    )
    compared = horizon.comparison(Stage.FAILED)
    parts = []
    churn = compared.churn_difference if compared else None
    if churn is None or churn.verdict is Verdict.TOO_FEW or churn.value is None:
        parts.append(
            t(
                "oc_churn_too_few",
                months=months,
                version=version,
                onboarded=onboarded.churn.n,
                failed=failed.churn.n,
                minimum=MIN_GROUP,
            )
        )
    else:
        # Failed minus onboarded: positive means the onboarded churned less.
        parts.append(
            t(
                "oc_churn",
                version=version,
                amount=f"{abs(100 * churn.value):.1f}",
                direction=t("oc_less" if churn.value >= 0 else "oc_more"),
                months=months,
                low=signed(100 * (churn.low or 0)),
                high=signed(100 * (churn.high or 0)),
                n=compared.churn_n if compared else 0,
                verdict=t(f"verdict_{churn.verdict.value}"),
            )
        )
    health = compared.health_ratio if compared else None
    if health is None or health.verdict is Verdict.TOO_FEW or health.value is None:
        parts.append(
            t(
                "oc_health_too_few",
                months=months,
                onboarded=onboarded.health.n,
                failed=failed.health.n,
                minimum=MIN_GROUP,
            )
        )
    else:
        parts.append(
            t(
                "oc_health",
                months=months,
                ratio=f"{health.value:.2f}",
                low=f"{health.low or 0:.2f}",
                high=f"{health.high or 0:.2f}",
                n=compared.health_n if compared else 0,
                verdict=t(f"verdict_{health.verdict.value}"),
            )
        )
    return t("oc_join").join(parts)


def conclusions(analysis: OutcomeAnalysis) -> dict[Locale, str]:
    return {locale: conclusion(Translator(locale), analysis) for locale in LOCALES}


@dataclass(frozen=True)
class OutcomesRead:
    analysis: OutcomeAnalysis
    # Versions of customers whose onboarding ended, for the selector.
    versions: list[str]


def read_outcomes(database: Database, playbook_version: str | None, today: date) -> OutcomesRead:
    facts = outcome_facts(database, playbook_version=playbook_version)
    return OutcomesRead(
        analysis=analyse(facts, as_of=today, playbook_version=playbook_version),
        versions=ended_playbook_versions(database),
    )
