"""The database's activities (store writes, the weekly measurement, the holiday table)
run as local activities: in the worker that runs the workflow task, inside that task.

Each is short and idempotent (a timeline entry by its sequence number, a measurement by
its week), so running it again after a crash is harmless. Run locally, it needs no
activity task, no round trip to the server and no workflow task of its own to hand its
result back: the simulator's journeys took about half as many workflow tasks. Its input
is not kept in the history either, only its result (a marker).

Emails stay ordinary activities: a send must not be repeated, and its ledger and the
provider's latency need the activity's own timeout and retries on the server.

Histories from before ran these as ordinary activities; `workflow.patched` keeps them
replaying the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

PATCH = "database-activities-local"
# How an activity that failed for good reaches the workflow: an ordinary activity's
# error is wrapped in ActivityError; a local one's non-retryable error comes as the
# ApplicationError itself (temporalio 1.35).
FAILED = (ActivityError, ApplicationError)


async def execute(
    activity: Callable[..., Any],
    arg: Any,
    *,
    start_to_close_timeout: timedelta,
    retry_policy: RetryPolicy | None = None,
) -> Any:
    """Run a database activity: locally, or as an ordinary activity in histories from
    before the change."""
    if workflow.patched(PATCH):
        return await workflow.execute_local_activity_method(
            activity,
            arg,
            start_to_close_timeout=start_to_close_timeout,
            retry_policy=retry_policy,
        )
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
    )
