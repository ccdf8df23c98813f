"""The cohort a CS leader looks at: the funnel by stage and the time spent in each.

Computed from the stage transitions each workflow keeps in its status, so the
figures are the workflow's own record, not a second bookkeeping.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from api.dashboard.data import CustomerView
from models.onboarding import STAGE_PATH, Stage, TaskKind, Transition

# Stages whose duration means something (handoff passes in an instant, onboarded ends).
TIMED = [Stage.KICKOFF, Stage.TRAINING, Stage.ADOPTION, Stage.COMPLETION_REVIEW]
ESCALATIONS = (
    TaskKind.OVERDUE_ESCALATION,
    TaskKind.STALL_ESCALATION,
    TaskKind.SETUP_STUCK_ESCALATION,
    TaskKind.DEADLINE_MISSED,
)


@dataclass(frozen=True)
class FunnelRow:
    stage: Stage
    reached: int
    now: int


@dataclass(frozen=True)
class StageTime:
    stage: Stage
    # Seconds; None when no customer has such a stay yet.
    median_done: float | None
    done: int
    median_now: float | None
    now: int


@dataclass(frozen=True)
class Cohort:
    total: int
    active: int
    onboarded: int
    failed: int
    cancelled: int
    stalled: int
    stuck: int
    escalations: int
    median_time_to_onboard: float | None
    funnel: list[FunnelRow]
    times: list[StageTime]


def stays(transitions: Sequence[Transition], now: datetime) -> list[tuple[Stage, float, bool]]:
    """(stage, seconds, finished) for each stay in a customer's transitions; the last stay
    is unfinished unless its stage is terminal."""
    result = []
    for current, following in zip(transitions, [*transitions[1:], None], strict=True):
        if following is not None:
            seconds = (following.at - current.at).total_seconds()
            result.append((current.stage_to, seconds, True))
        elif not current.stage_to.terminal:
            result.append((current.stage_to, (now - current.at).total_seconds(), False))
    return result


def reached(view: CustomerView) -> set[Stage]:
    """Stages on the path the customer has been in."""
    stages: set[Stage] = set()
    if view.status is not None:
        stages = {t.stage_to for t in view.status.state.transitions}
    elif view.stage is not None:
        stages = {view.stage}
    # Transitions are kept for the recent past only: earlier path stages were passed too.
    furthest = max((STAGE_PATH.index(s) for s in stages if s in STAGE_PATH), default=-1)
    return stages | set(STAGE_PATH[: furthest + 1])


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def cohort(views: Sequence[CustomerView], now: datetime) -> Cohort:
    done: dict[Stage, list[float]] = {stage: [] for stage in TIMED}
    ongoing: dict[Stage, list[float]] = {stage: [] for stage in TIMED}
    to_onboard: list[float] = []
    escalations = 0
    for view in views:
        if view.status is None:
            continue
        state = view.status.state
        for stage, seconds, finished in stays(state.transitions, now):
            if stage in done:
                (done if finished else ongoing)[stage].append(seconds)
        onboarded_at = next(
            (t.at for t in state.transitions if t.stage_to is Stage.ONBOARDED), None
        )
        if onboarded_at is not None and state.started_at is not None:
            to_onboard.append((onboarded_at - state.started_at).total_seconds())
        escalations += sum(task.kind in ESCALATIONS for task in state.open_tasks)
    stages = [view.stage for view in views]
    return Cohort(
        total=len(views),
        active=sum(stage is not None and not stage.terminal for stage in stages),
        onboarded=stages.count(Stage.ONBOARDED),
        failed=stages.count(Stage.FAILED),
        cancelled=stages.count(Stage.CANCELLED),
        stalled=sum(view.stalled for view in views),
        stuck=sum(view.stuck for view in views),
        escalations=escalations,
        median_time_to_onboard=_median(to_onboard),
        funnel=[
            FunnelRow(
                stage=stage,
                reached=sum(stage in reached(view) for view in views),
                now=stages.count(stage),
            )
            for stage in STAGE_PATH
        ],
        times=[
            StageTime(
                stage=stage,
                median_done=_median(done[stage]),
                done=len(done[stage]),
                median_now=_median(ongoing[stage]),
                now=len(ongoing[stage]),
            )
            for stage in TIMED
        ],
    )
