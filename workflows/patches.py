"""Changes made to the workflow after histories began, asked for with one marker.

`workflow.patched(change)` keeps a history begun before `change` on its old path. In a
new history, each first call records a marker, and sdk-core adds an upsert of the
`TemporalChangeVersion` search attribute listing every change so far: a `make bench`
journey recorded six of each, and a default-playbook customer meets more.

A history begun since BASELINE takes every change in IN_BASELINE on that one marker
and upsert. `taken` asks `workflow.patched(BASELINE)` first, once per run: at the first
change a run meets, so a history begun before this file replays with False there and
asks change by change as it did. A change made after the baseline is asked on its own
(leave IN_BASELINE as it is) until a later baseline takes it in.
"""

from __future__ import annotations

from temporalio import workflow

BASELINE = "baseline-2026-12-07"

# Every change the workflow asked `workflow.patched` about on 2026-12-07. Fixed: a
# history begun on this build took exactly these on the one marker.
IN_BASELINE = frozenset(
    {
        "business-day-timers",
        "campaign-step-order",
        "database-activities-local",
        "ended-clears-setup-stuck",
        "index-changes-only",
        "mail-one-at-a-time",
        "measurement-grace",
        "opt-out-on-timeline",
        "passing-stage-sets-no-task",
        "purpose-campaigns",
        "purpose-proposals",
        "signal-arguments-recorded",
        "step-roles-in-turn",
        "store-writes-batched",
        "survey-emails",
        "task-due-dates",
        "unconfirmed-review-readopts",
        "unreadable-signal-recorded",
    }
)


def taken(change: str) -> bool:
    """Whether this history takes `change`, made after some histories began."""
    if change in IN_BASELINE and workflow.patched(BASELINE):
        return True
    return workflow.patched(change)
