"""Timeouts and retry policies of the activities the workflow calls, in one place."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# Database writes are idempotent, so they retry until the database is back; a value
# the database refuses (too long, a broken constraint) is refused on every retry, so
# it fails at once and the workflow records it and goes on (workflows/effects.py).
STORE_TIMEOUT = timedelta(seconds=30)
STORE_FAILS_FOR_GOOD = ["DataError", "IntegrityError"]  # sqlalchemy.exc
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=STORE_FAILS_FOR_GOOD,
)

# Measuring scans a week of usage events: allow more time per attempt. It only reads
# and writes numbers, and the week's verdict needs it: it retries until it succeeds.
MEASURE_TIMEOUT = timedelta(minutes=2)
MEASURE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)

# A send that keeps failing becomes a visible failure instead of retrying forever.
# With scheduled sends a retry must cancel a crashed attempt's batch within the
# 5 minutes SendGrid's shortest allowed delay (15) leaves: one timeout plus the
# longest interval is 3 minutes. Ten attempts span the 10.5 minutes eight did.
MAIL_TIMEOUT = timedelta(seconds=60)
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=10,
)

# Looking up a holiday table is local and quick.
CALENDAR_TIMEOUT = timedelta(seconds=30)

# Bounded lists carried across continue-as-new, so history stays small.
RECENT_WEEKS_KEPT = 12
RECENT_TRANSITIONS_KEPT = 30
SEEN_EVENT_IDS_KEPT = 500
REJECTIONS_KEPT = 20
FAILURES_KEPT = 50
# A database error's first line is its reason; the rest (SQL, parameters) stays in the
# worker's log.
FAILURE_REASON_CHARS = 200
