"""Timeouts and retry policies of the activities the workflow calls, in one place."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# Database writes are idempotent, so they retry until the database is back.
STORE_TIMEOUT = timedelta(seconds=30)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)

# Measuring scans a week of usage events: allow more time per attempt.
MEASURE_TIMEOUT = timedelta(minutes=2)

# A send that keeps failing becomes a visible failure instead of retrying forever.
MAIL_TIMEOUT = timedelta(seconds=60)
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=8,
)

# Looking up a holiday table is local and quick.
CALENDAR_TIMEOUT = timedelta(seconds=30)

# Bounded lists carried across continue-as-new, so history stays small.
RECENT_WEEKS_KEPT = 12
RECENT_TRANSITIONS_KEPT = 30
SEEN_EVENT_IDS_KEPT = 500
REJECTIONS_KEPT = 20
