"""How much text and how many items people may put in an event, a handoff or a playbook.

Every bound fits the database column the value ends in (models/tables.py: the same
VARCHAR lengths on SQLite and PostgreSQL, where PostgreSQL refuses what does not fit),
and keeps Temporal's payloads small: an event is copied into history several times
(the update, the timeline activity, the task and its email, the state carried across
continue-as-new), and Temporal refuses a payload over 2 MB and a history over 50 MB.
Generous for a CS team, far from those limits.
"""

from __future__ import annotations

# A name or a label: a person, an attendee, a customer, a playbook, a purpose's title
# (customers.name, contacts.name: VARCHAR(200)).
NAME_CHARS = 200
# An email address (RFC 5321's limit; customers.csm, contacts.email: VARCHAR(320)).
EMAIL_CHARS = 320
# One line a CSM writes: a goal, a reason, a feature request.
LINE_CHARS = 500
# Notes a CSM types into a form: a meeting's notes, review feedback, a task's note.
NOTE_CHARS = 4_000
# What sales writes in the handoff, carried in the workflow's input for good.
HANDOFF_NOTES_CHARS = 10_000
# A usage event's name (usage_events.event: VARCHAR(200)).
EVENT_NAME_CHARS = 200
# An IANA time zone (customers.time_zone: VARCHAR(64)) and a playbook version
# (customers.playbook_version: VARCHAR(64)).
ZONE_CHARS = 64
VERSION_CHARS = 64
# A task id (tasks.task_id: VARCHAR(100)); a purpose id (the playbook's pattern).
TASK_ID_CHARS = 100
PURPOSE_ID_CHARS = 32
# A customer id (customers.customer_id: VARCHAR(64)).
CUSTOMER_ID_CHARS = 64
# Customers one migration request names by id; a larger cohort goes by its version.
MIGRATION_CUSTOMERS = 1_000

# Items of one list in one event or handoff: attendees, goals, feature requests, NPS
# answers, contacts, purposes.
LIST_ITEMS = 50
# A customer's people, in the handoff and added later together.
CONTACTS = 100
# What a customer accumulates over its journey (state carried across continue-as-new):
# agreed goals; meetings are kept as the most recent ones.
GOALS = 50
MEETINGS_KEPT = 50

# How far ahead a pause may be scheduled to end: a pause is a hold, not a way to
# park a customer for good (cancel it instead).
PAUSE_DAYS = 366

# One customer's overrides of its playbook (models/overrides.py): a stage timer at
# most a year, a deadline at most three years after the start, a threshold at most
# a billion (far beyond any seat ratio or weekly count, and exact in every float).
OVERRIDE_TIMER_DAYS = 366
OVERRIDE_DEADLINE_DAYS = 1_096
OVERRIDE_THRESHOLD_MAX = 1e9

# A playbook's lists: purposes, steps per purpose, criteria, stall rules, ladder steps,
# locales of a step's note.
PLAYBOOK_ITEMS = 50

# A playbook duration counted in business days ("5 business days"), at most: about
# half a year of weekdays, so the customer's holiday table of this year and next covers it.
BUSINESS_DAYS_MAX = 120

# How long a survey email's score links stay valid, at most (a playbook's
# `surveys.valid_for`): a link forwarded or found months later must not still count.
SURVEY_LINK_DAYS_MAX = 90

# Outcomes from outside (renewals, churn, health scores): the system a row came from
# (outcome_events.source, health_scores.source: VARCHAR(64)) and the rows one REST
# request may carry; larger back-fills go through the CSV import.
OUTCOME_SOURCE_CHARS = 64
OUTCOME_ROWS_PER_REQUEST = 1_000

# A request to the codec server (`liftoff codec-server`): Temporal caps one payload at
# 2 MB, which base64 makes about 2.7 MB: a request of a few such payloads fits.
CODEC_BODY_BYTES = 8 * 1024 * 1024
# Payloads in one codec request: the Web UI and the CLI send one event's at a time.
CODEC_PAYLOADS = 1_000
# Codec requests served at once, each until its answer is read: with the inflation
# bound (client/codec.py), what they can hold in memory is bounded too.
CODEC_CONCURRENT_REQUESTS = 4

# The playbook review threshold: finished customers of one version (default, most).
REVIEW_AFTER_DEFAULT = 50
REVIEW_AFTER_MAX = 100_000

# How long an unsubscribe link stays valid: people unsubscribe from old messages, and a
# link that still works is what RFC 8058 and the mailbox providers ask for; past a year
# the page asks the contact to use a newer email's link.
OPT_OUT_LINK_DAYS = 365
