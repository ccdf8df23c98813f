"""Moving a running customer to another playbook version: the request, and the plan a
dry run shows and an applied migration follows (workflows/migration.py). Adjusting a
customer's playbook values (models/overrides.py) moves it the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.onboarding import DueKind, Stage
from models.overrides import OverriddenValue
from models.playbook import Playbook
from models.text import ReasonedRequest


class MigrationRequest(ReasonedRequest):
    """The update that swaps a customer's pinned playbook."""

    playbook: Playbook


class MigrationPreviewRequest(BaseModel):
    """The dry run's query: what migrating to `playbook` at `now` would change."""

    model_config = ConfigDict(extra="forbid")

    playbook: Playbook
    # The caller's clock: a sleeping workflow's own clock is its last task's.
    now: datetime


class TimerChange(BaseModel):
    kind: DueKind
    stage: Stage | None = None
    before: datetime
    after: datetime
    # Due at or before the migration: it fires as soon as the migration applies.
    overdue: bool


class StepChange(BaseModel):
    ref: str
    change: Literal["added", "dropped", "rescheduled", "already_sent"]
    # When it goes out under the new version (added, rescheduled).
    at: datetime | None = None


class CriterionChange(BaseModel):
    """A completion criterion whose verdict on the last measured week differs."""

    criterion: str
    before: bool | None
    after: bool | None


class MigrationPlan(BaseModel):
    customer_id: str
    from_version: str
    to_version: str
    # Why this customer cannot move to the version; nothing else is set then.
    refused: str | None = None
    timers: list[TimerChange] = Field(default_factory=list)
    steps: list[StepChange] = Field(default_factory=list)
    criteria: list[CriterionChange] = Field(default_factory=list)
    # Whether last week, judged again under the new criteria, meets them all.
    criteria_met_before: bool | None = None
    criteria_met_after: bool | None = None

    def summary(self) -> str:
        """One line for a table: what would change, or why not."""
        if self.refused is not None:
            return f"refused: {self.refused}"
        parts = []
        if self.timers:
            overdue = sum(timer.overdue for timer in self.timers)
            parts.append(
                f"{len(self.timers)} timer(s) re-based"
                + (f", {overdue} overdue" if overdue else "")
            )
        for change in ("added", "dropped", "rescheduled", "already_sent"):
            count = sum(step.change == change for step in self.steps)
            if count:
                parts.append(f"{count} step(s) {change.replace('_', ' ')}")
        if self.criteria:
            parts.append(f"{len(self.criteria)} criterion verdict(s) change")
        return "; ".join(parts) or "no change to timers, steps or verdicts"


class OverridesResult(BaseModel):
    """What setting a customer's overrides changed: each value beside the playbook's, and
    the timers, steps and verdicts moved as a migration would move them."""

    overridden: list[OverriddenValue]
    plan: MigrationPlan
