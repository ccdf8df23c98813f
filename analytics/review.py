"""The playbook review's suggestion for each completion criterion (pure).

It reads figures already computed elsewhere, it computes none of its own: the outcome
analysis's per-criterion comparison at one horizon (`analytics.outcomes`: churn and
high health of customers who met the criterion at completion against those who did
not, with intervals and verdicts) and, when there is one, the stall analysis's line
for the criterion (`analytics.stalls`: how many failed and stalled customers had it
unmet, and for how long).

The rule, in order:
- the comparison is conclusive and meeting the criterion went with less churn or more
  high health: KEEP (it separates customers as "onboarded" should);
- conclusive the other way (meeting it went with more churn or less high health): DROP;
- too few in a group to conclude: RAISE when nearly everyone met it (at least
  NEARLY_ALL of REVIEW_MIN customers: the bar does not tell customers apart), LOWER
  when nearly no one did, else NOT ENOUGH DATA;
- enough customers but no difference shown: RAISE when most met it (MOSTLY), LOWER
  when few did, KEEP when most failed and stalled customers had it unmet (it is what
  troubled customers miss), else DROP (it costs effort and shows no link to outcomes).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from analytics.outcomes import MIN_GROUP, CriterionAtHorizon, Estimate, Verdict
from analytics.stalls import MissingCriterion

# Customers with the criterion judged, at least, before "nearly everyone met it" counts.
REVIEW_MIN = 2 * MIN_GROUP
NEARLY_ALL = 0.9
# With enough customers on both sides: "most" met it, or "few" did.
MOSTLY = 0.8
FEW = 0.2
# At least this share of failed and stalled customers had it unmet: what they miss.
TROUBLED_MISS = 0.5


class Action(StrEnum):
    KEEP = "keep"
    RAISE = "raise"
    LOWER = "lower"
    DROP = "drop"
    NOT_ENOUGH_DATA = "not_enough_data"


class Reason(StrEnum):
    """Why, as a key the page words in English and Japanese (api/dashboard/i18n.py)."""

    SEPARATES = "separates"
    WRONG_WAY = "wrong_way"
    NEARLY_ALL_MET = "nearly_all_met"
    NEARLY_NONE_MET = "nearly_none_met"
    TOO_FEW = "too_few"
    MOST_MET = "most_met"
    FEW_MET = "few_met"
    TROUBLED_MISS_IT = "troubled_miss_it"
    NO_DIFFERENCE = "no_difference"


@dataclass(frozen=True)
class Suggestion:
    criterion: str
    action: Action
    reason: Reason
    months: int
    met: int
    not_met: int
    # Churn of those who met it and of those who did not (rates, None without customers).
    churn_met: float | None
    churn_not_met: float | None
    # Not met minus met, and high health met over not met, with intervals and verdicts.
    churn_difference: Estimate
    health_lift: Estimate
    # Failed and stalled customers whose latest verdict had it unmet, of how many.
    troubled_missing: int | None
    troubled_share: float | None
    median_weeks_missing: float | None

    @property
    def met_share(self) -> float | None:
        judged = self.met + self.not_met
        return self.met / judged if judged else None


def _direction(estimate: Estimate, null: float) -> int:
    """+1 or -1 when conclusive above or below `null`, 0 otherwise."""
    if estimate.verdict is not Verdict.CONCLUSIVE or estimate.value is None:
        return 0
    return 1 if estimate.value > null else -1


def _decide(figures: CriterionAtHorizon, troubled_share: float | None) -> tuple[Action, Reason]:
    churn = _direction(figures.churn_difference, 0.0)  # + : missing it, more churn
    health = _direction(figures.health_lift, 1.0)  # + : meeting it, more high health
    if churn > 0 or health > 0:
        if churn < 0 or health < 0:
            return Action.NOT_ENOUGH_DATA, Reason.TOO_FEW  # the two disagree
        return Action.KEEP, Reason.SEPARATES
    if churn < 0 or health < 0:
        return Action.DROP, Reason.WRONG_WAY
    met, not_met = figures.churn_met.n, figures.churn_not_met.n
    judged = met + not_met
    share = met / judged if judged else 0.0
    too_few = (
        figures.churn_difference.verdict is Verdict.TOO_FEW
        and figures.health_lift.verdict is Verdict.TOO_FEW
    )
    if too_few:
        if judged >= REVIEW_MIN and share >= NEARLY_ALL:
            return Action.RAISE, Reason.NEARLY_ALL_MET
        if judged >= REVIEW_MIN and share <= 1 - NEARLY_ALL:
            return Action.LOWER, Reason.NEARLY_NONE_MET
        return Action.NOT_ENOUGH_DATA, Reason.TOO_FEW
    if share >= MOSTLY:
        return Action.RAISE, Reason.MOST_MET
    if share <= FEW:
        return Action.LOWER, Reason.FEW_MET
    if troubled_share is not None and troubled_share >= TROUBLED_MISS:
        return Action.KEEP, Reason.TROUBLED_MISS_IT
    return Action.DROP, Reason.NO_DIFFERENCE


def suggest(
    figures: CriterionAtHorizon, missing: MissingCriterion | None, *, months: int
) -> Suggestion:
    """The suggestion for one criterion, with the figures it rests on."""
    share = missing.share if missing is not None else None
    action, reason = _decide(figures, share)
    return Suggestion(
        criterion=figures.criterion.label,
        action=action,
        reason=reason,
        months=months,
        met=figures.churn_met.n,
        not_met=figures.churn_not_met.n,
        churn_met=figures.churn_met.rate,
        churn_not_met=figures.churn_not_met.rate,
        churn_difference=figures.churn_difference,
        health_lift=figures.health_lift,
        troubled_missing=missing.customers if missing is not None else None,
        troubled_share=share,
        median_weeks_missing=missing.median_weeks_missing if missing is not None else None,
    )
