"""The database's activities (store writes, the weekly measurement, the holiday table)
run as local activities: in the worker that runs the workflow task, inside that task.

Each is short and idempotent (a timeline entry by its sequence number, a measurement by
its week), so running it again after a crash is harmless. Run locally, it needs no
activity task, no round trip to the server and no workflow task of its own to hand its
result back: the simulator's journeys took about half as many workflow tasks. Its input
is not kept in the history either, only its result (a marker).

A local activity that still fails after a few quick attempts (a database restarting, a
lock held) is run again as an ordinary activity with the full retry policy: a local
one that keeps retrying holds its workflow task open and heartbeats it, three history
events every eight seconds (measured with temporalio 1.35), and it does not honour
`schedule_to_close_timeout` between attempts; an ordinary activity retries on the
server and writes nothing to the history until it ends.

Emails stay ordinary activities: a send must not be repeated, and its ledger and the
provider's latency need the activity's own timeout and retries on the server.

Histories from before ran these as ordinary activities; `workflow.patched` keeps them
replaying the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

import workflows.patches as patches

PATCH = "database-activities-local"
# Quick attempts inside the workflow task (1 s and 2 s apart) before the ordinary activity.
LOCAL_ATTEMPTS = 3
# How an activity that failed for good reaches the workflow: an ordinary activity's
# error is wrapped in ActivityError; a local one's comes as the ApplicationError itself
# (temporalio 1.35).
FAILED = (ActivityError, ApplicationError)


async def execute(
    activity: Callable[..., Any],
    arg: Any,
    *,
    start_to_close_timeout: timedelta,
    retry_policy: RetryPolicy | None = None,
) -> Any:
    """Run a database activity locally; past a few failed attempts, or in histories from
    before the change, as an ordinary activity."""
    if patches.taken(PATCH):
        policy = retry_policy or RetryPolicy()
        try:
            return await workflow.execute_local_activity_method(
                activity,
                arg,
                start_to_close_timeout=start_to_close_timeout,
                retry_policy=dataclasses.replace(policy, maximum_attempts=LOCAL_ATTEMPTS),
            )
        except FailureError as err:
            if isinstance(err, CancelledError) or _fails_for_good(err, policy):
                raise
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
    )


def _fails_for_good(err: FailureError, policy: RetryPolicy) -> bool:
    """Whether no retry could mend `err`, so the ordinary activity would fail the same."""
    return isinstance(err, ApplicationError) and (
        err.non_retryable or err.type in (policy.non_retryable_error_types or ())
    )
