"""The `liftoff` commands and flags (argparse); each command names its handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from cli.commands import (
    Command,
    codec,
    demo,
    onboarding,
    outcomes,
    overrides,
    playbooks,
    records,
    serve,
    simulate,
    templates,
    tokens,
)
from cli.errors import EXIT_BAD_INPUT
from cli.handoff_csv import columns_help
from models.events import MeetingKind
from models.onboarding import TIMELINE_KINDS, Stage

# A simulation's bounds (simulation/cohort.py MAX_SYNTHETIC, simulation/runner.py
# MAX_WEEKS; not imported: `liftoff --help` stays free of the worker's imports).
MAX_SIMULATED_CUSTOMERS = 2_000
MAX_SIMULATED_WEEKS = 104
MAX_SEED = 2**32 - 1
# The relationships a demo cohort can be planted with (simulation.outcomes.Relationship;
# not imported, for the same reason; tests/test_demo_cohort.py checks they agree).
PLANTED_RELATIONSHIPS = ("key-actions", "none")
# What `add_subparsers` returns; argparse gives the class no public name.
Subcommands = argparse._SubParsersAction
# The most customers one page of `liftoff list` shows (records.customer_lists.MAX_PAGE,
# not imported: `liftoff --help` stays free of the database code).
MAX_LIST_PAGE = 1000


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, refused in one line."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, exit code 2, like every other refusal."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


class _Commands:
    """`liftoff`'s subcommands; each command takes the shared `--json` flag."""

    def __init__(self, parser: argparse.ArgumentParser, common: _Parser) -> None:
        self.subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
        self.common = common

    def add(self, name: str, handler: Command, help: str) -> argparse.ArgumentParser:
        sub = self.subparsers.add_parser(name, parents=[self.common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    def recording(self, name: str, help: str) -> argparse.ArgumentParser:
        """A command that records an event on one customer's onboarding."""
        sub = self.add(name, onboarding.cmd_record, help)
        sub.add_argument("customer", metavar="CUSTOMER", help="customer id")
        return sub


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = _Parser(
        prog="liftoff",
        description="Start customers' onboarding and record what happens with them.",
    )
    commands = _Commands(parser, common)

    start = commands.add(
        "start", onboarding.cmd_start, "start a customer's onboarding from the sales handoff"
    )
    start.epilog = columns_help()
    start.formatter_class = argparse.RawDescriptionHelpFormatter
    start.add_argument("--csv", type=Path, help="start one customer per row of this CSV file")
    start.add_argument(
        "--dry-run", action="store_true", help="with --csv: check every row, start nothing"
    )
    start.add_argument(
        "--skip-invalid",
        action="store_true",
        help="with --csv: start the good rows and list the refused ones (exit 2 if any); "
        "by default one refused row starts none",
    )
    start.add_argument("--customer-id")
    start.add_argument("--name", help="the customer's company name")
    start.add_argument("--csm", help="the CSM's email")
    start.add_argument("--leader", help="the CS leader's email")
    start.add_argument(
        "--contact",
        action="append",
        default=[],
        metavar="'ROLE:Name <email>'",
        help="repeatable; ROLE is decision_maker, administrator or end_user",
    )
    start.add_argument("--seats", type=int, help="seats contracted")
    start.add_argument("--quota", type=float, help="usage quota contracted")
    start.add_argument("--time-zone", default="UTC", help="e.g. Asia/Tokyo")
    start.add_argument("--locale", default="en", help="ja or en")
    start.add_argument(
        "--country",
        help="ISO 3166 code whose public holidays are not business days, e.g. JP "
        "(default: the playbook's calendar for the locale)",
    )
    start.add_argument("--purpose", action="append", default=[], help="purpose id (repeatable)")
    start.add_argument("--trial", action="store_true", help="the customer used a trial")
    start.add_argument(
        "--already-using", action="store_true", help="the customer already uses the product"
    )
    start.add_argument("--notes", default="", help="sales handoff notes")
    start.add_argument("--playbook", type=Path, help="playbook file (default: LIFTOFF_PLAYBOOK)")

    task_commands = add_recording_commands(commands)
    tasks = task_commands.add_parser(
        "list", parents=[common], help="list tasks for CSMs and leaders (open ones by default)"
    )
    tasks.set_defaults(handler=records.cmd_task_list)
    tasks.add_argument("--assignee", help="the CSM's or leader's email")
    tasks.add_argument("--customer", help="one customer's tasks")
    tasks.add_argument("--all", action="store_true", help="include done tasks")

    status = commands.add("status", onboarding.cmd_status, "show a customer's onboarding")
    status.add_argument("customer", metavar="CUSTOMER")

    timeline = commands.add(
        "timeline", records.cmd_timeline, "show everything recorded for a customer"
    )
    timeline.add_argument("customer", metavar="CUSTOMER")
    timeline.add_argument(
        "--kind",
        action="append",
        choices=[str(kind) for kind in TIMELINE_KINDS],
        metavar="KIND",
        help="only these entry kinds (transition, weekly_measurement...)",
    )

    listing = commands.add("list", onboarding.cmd_list, "list customers, by stage, CSM or trouble")
    # Plain strings, so a wrong stage is refused with the valid ones named.
    listing.add_argument("--stage", choices=[stage.value for stage in Stage], metavar="STAGE")
    listing.add_argument("--csm", help="the CSM's email")
    listing.add_argument("--stalled", action="store_true", help="only stalled customers")
    listing.add_argument("--stuck", action="store_true", help="only customers stuck in setup")
    listing.add_argument("--paused", action="store_true", help="only paused customers")
    ended = listing.add_mutually_exclusive_group()
    ended.add_argument("--ongoing", action="store_true", help="only onboardings not ended")
    ended.add_argument("--ended", action="store_true", help="only onboarded, failed, cancelled")
    listing.add_argument("--playbook-version", metavar="VERSION", help="only this version's")
    listing.add_argument(
        "--limit",
        type=bounded_int(1, MAX_LIST_PAGE),
        default=100,
        metavar="N",
        help=f"customers per page (1-{MAX_LIST_PAGE}, default 100)",
    )
    listing.add_argument(
        "--page", type=bounded_int(1, 1_000_000), default=1, metavar="K", help="which page"
    )
    listing.add_argument(
        "--workflows",
        action="store_true",
        help="ask Temporal's visibility instead (what Temporal holds now, each workflow's "
        "status) rather than the customer projection",
    )

    usage = commands.subparsers.add_parser("usage", help="record product usage")
    usage_commands = usage.add_subparsers(dest="usage_command", required=True, parser_class=_Parser)
    record = usage_commands.add_parser("record", parents=[common], help="record one usage event")
    record.set_defaults(handler=records.cmd_usage_record)
    record.add_argument("customer", metavar="CUSTOMER")
    record.add_argument("--user", required=True)
    record.add_argument("--event", required=True)
    record.add_argument("--at", metavar="ISO-8601", help="when it happened (default: now)")
    record.add_argument("--quantity", type=float, default=1.0)
    record.add_argument("--event-key", help="idempotency key: the same key is stored once")
    imported = usage_commands.add_parser(
        "import", parents=[common], help="import usage events from a CSV file"
    )
    imported.set_defaults(handler=records.cmd_usage_import)
    imported.add_argument("file", type=Path, metavar="FILE.csv")

    projections = commands.subparsers.add_parser(
        "projections", help="the read model the lists and the cohort use"
    )
    projection_commands = projections.add_subparsers(
        dest="projections_command", required=True, parser_class=_Parser
    )
    rebuild = projection_commands.add_parser(
        "rebuild",
        parents=[common],
        help="recompute the customer projection from the stored timeline (safe while workers run)",
    )
    rebuild.set_defaults(handler=records.cmd_projections_rebuild)
    rebuild.add_argument(
        "--customer", action="append", help="only this customer (repeatable; default: all)"
    )

    add_outcome_commands(commands)
    add_simulate_command(commands)
    add_demo_commands(commands)

    playbook = commands.subparsers.add_parser("playbook", help="work with playbook files")
    playbook_commands = playbook.add_subparsers(
        dest="playbook_command", required=True, parser_class=_Parser
    )
    # Both commands that render emails take the same templates folder.
    templates_dir = _Parser(add_help=False)
    templates_dir.add_argument(
        "--templates",
        type=Path,
        metavar="DIR",
        help="email templates (default: LIFTOFF_TEMPLATES_DIR)",
    )
    validate = playbook_commands.add_parser(
        "validate", parents=[common, templates_dir], help="check a playbook file"
    )
    validate.set_defaults(handler=templates.cmd_playbook_validate)
    validate.add_argument("file", type=Path, metavar="FILE")
    listed_versions = playbook_commands.add_parser(
        "list",
        parents=[common],
        help="list the playbook versions recorded, with their customers ongoing and ended",
    )
    listed_versions.set_defaults(handler=playbooks.cmd_playbook_list)
    diff = playbook_commands.add_parser(
        "diff",
        parents=[common],
        help="what changes from one playbook to another, in words "
        "(each a .toml file or a recorded version)",
    )
    diff.set_defaults(handler=playbooks.cmd_playbook_diff)
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")

    migrate = commands.add(
        "migrate",
        playbooks.cmd_migrate,
        "move running customers to another playbook version (try --dry-run first): "
        "timers re-based, steps re-planned, none sent twice",
    )
    migrate.add_argument(
        "--to", required=True, metavar="FILE|VERSION", help="a .toml file or a recorded version"
    )
    migrate.add_argument("--customer", action="append", default=[], metavar="ID", help="repeatable")
    migrate.add_argument(
        "--from-version", metavar="VERSION", help="every ongoing customer on this version"
    )
    migrate.add_argument("--all", action="store_true", help="every ongoing customer")
    migrate.add_argument(
        "--dry-run", action="store_true", help="show what would change for each; change nothing"
    )
    migrate.add_argument("--reason", required=True, help="why: recorded on each timeline")
    migrate.add_argument("--by", help="who asks (default: your login name)")

    adjust = commands.add(
        "adjust",
        overrides.cmd_adjust,
        "adjust the playbook for one customer (added to its earlier adjustments): "
        "thresholds, stage timers, measurement day and hour, deadline, steps to skip",
    )
    adjust.add_argument("customer", metavar="CUSTOMER", help="customer id")
    adjust.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a completion criterion's threshold, e.g. active_seat_ratio=0.4 (repeatable)",
    )
    adjust.add_argument(
        "--timer",
        action="append",
        default=[],
        metavar="STAGE=REMIND[/ESCALATE]",
        help="a stage's reminder (and escalation), e.g. kickoff=10d/20d (repeatable)",
    )
    adjust.add_argument("--measure-on", metavar="WEEKDAY", help="Monday to Sunday")
    adjust.add_argument(
        "--measure-at", type=bounded_int(0, 23), metavar="HOUR", help="local hour, 0 to 23"
    )
    adjust.add_argument(
        "--deadline",
        metavar="YYYY-MM-DD",
        help="fail the onboarding if not onboarded by the end of this local day",
    )
    adjust.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PURPOSE:STEP",
        help="a step email never to send this customer, e.g. A:nudge (repeatable)",
    )
    adjust.add_argument(
        "--clear",
        action="store_true",
        help="drop the earlier adjustments (alone: back to the playbook's values)",
    )
    adjust.add_argument("--reason", required=True, help="why: recorded on the timeline")
    adjust.add_argument("--by", help="who asks (default: your login name)")

    email = commands.subparsers.add_parser("email", help="work with email templates")
    email_commands = email.add_subparsers(dest="email_command", required=True, parser_class=_Parser)
    preview = email_commands.add_parser(
        "preview",
        parents=[common, templates_dir],
        help="render an email for a sample customer into .txt, .html and .eml files",
    )
    preview.set_defaults(handler=templates.cmd_email_preview)
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument("--purpose", help="a purpose id; with --step")
    which.add_argument(
        "--choose-purpose", action="store_true", help="the email asking to choose a purpose"
    )
    which.add_argument(
        "--template", help="an email the workflow sends outside the campaign, e.g. task_assigned"
    )
    which.add_argument(
        "--survey",
        metavar="TOUCHPOINT",
        help="the NPS survey sent at a touchpoint, e.g. after_kickoff",
    )
    preview.add_argument("--step", help="the step id within --purpose")
    preview.add_argument("--role", help="one recipient role (default: each the email goes to)")
    preview.add_argument("--locale", help="ja or en (default: both)")
    preview.add_argument("--out", type=Path, required=True, metavar="DIR")
    preview.add_argument("--playbook", type=Path, help="playbook file (default: LIFTOFF_PLAYBOOK)")
    token = commands.subparsers.add_parser("token", help="manage HTTP API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, parser_class=_Parser)
    created = token_commands.add_parser(
        "create", parents=[common], help="create an API token (printed once)"
    )
    created.set_defaults(handler=tokens.cmd_token_create)
    created.add_argument("--name", required=True, help="who or what uses it")
    created.add_argument("--role", required=True, choices=["csm", "lead", "ops", "ingest"])
    created.add_argument("--csm", help="for a csm token: the CSM's email, whose customers it sees")
    listed = token_commands.add_parser("list", parents=[common], help="list API tokens")
    listed.set_defaults(handler=tokens.cmd_token_list)
    revoked = token_commands.add_parser("revoke", parents=[common], help="revoke an API token")
    revoked.set_defaults(handler=tokens.cmd_token_revoke)
    revoked.add_argument("id", type=int, metavar="ID")

    server = commands.add(
        "serve", serve.cmd_serve, "serve the HTTP API, usage intake and dashboard"
    )
    server.add_argument("--host", help="default: LIFTOFF_API_HOST (127.0.0.1)")
    server.add_argument("--port", type=int, help="default: LIFTOFF_API_PORT (8000)")

    codec_server = commands.add(
        "codec-server",
        codec.cmd_codec_server,
        "serve the remote codec endpoint that decrypts payloads for the Temporal Web UI and CLI",
    )
    codec_server.add_argument("--host", help="default: LIFTOFF_CODEC_HOST (127.0.0.1)")
    codec_server.add_argument("--port", type=int, help="default: LIFTOFF_CODEC_PORT (8081)")
    codec_group = commands.subparsers.add_parser("codec", help="payload encryption keys")
    codec_commands = codec_group.add_subparsers(
        dest="codec_command", required=True, parser_class=_Parser
    )
    keygen = codec_commands.add_parser(
        "keygen", parents=[common], help="print a new LIFTOFF_ENCRYPTION_KEYS entry (ID:KEY)"
    )
    keygen.set_defaults(handler=codec.cmd_codec_keygen)
    keygen.add_argument("--id", help="the key's id (default: today's date, YYYYMMDD)")
    return parser


def add_recording_commands(commands: _Commands) -> Subcommands[_Parser]:
    """The commands that record an event: one per CSM event kind (or pair of kinds).

    Returns the `task` subcommands, which `task list` joins. Which kinds each command
    sends is `cli.inputs.COMMAND_KINDS`.
    """
    kickoff = commands.recording("kickoff", "record the kickoff meeting and the goals agreed")
    kickoff.add_argument("--held-on", required=True, metavar="YYYY-MM-DD")
    kickoff.add_argument("--attendee", action="append", default=[])
    kickoff.add_argument("--goal", action="append", default=[], help="short-term goal agreed")

    goal = commands.recording("goal", "record a short-term goal agreed after the kickoff")
    goal.add_argument("text", metavar="TEXT")

    training = commands.recording("training", "record the training held, or skipped with a reason")
    training.add_argument("--held-on", metavar="YYYY-MM-DD")
    training.add_argument("--attendee", action="append", default=[])
    training.add_argument("--skip", action="store_true")
    training.add_argument("--reason", help="why the training is skipped")

    meeting = commands.recording("meeting", "record an on-demand meeting requested or held")
    meeting.add_argument("--kind", required=True, choices=[k.value for k in MeetingKind])
    when = meeting.add_mutually_exclusive_group(required=True)
    when.add_argument("--request", action="store_true", help="the meeting is requested")
    when.add_argument("--held-on", metavar="YYYY-MM-DD", help="the meeting was held")
    meeting.add_argument("--notes", default="")

    purpose = commands.recording("purpose", "add a purpose the customer adopts the product for")
    purpose.add_argument("purpose_id", metavar="PURPOSE_ID")

    contact = commands.recording("contact", "add a contact")
    contact.add_argument("contact", metavar="'ROLE:Name <email>'")

    review = commands.recording("review", "record the completion review")
    review.add_argument("--held-on", required=True, metavar="YYYY-MM-DD")
    confirmed = review.add_mutually_exclusive_group(required=True)
    confirmed.add_argument("--confirmed", dest="confirmed", action="store_true", default=None)
    confirmed.add_argument("--not-confirmed", dest="confirmed", action="store_false")
    review.add_argument("--feedback", default="")
    review.add_argument("--feature-request", action="append", default=[])
    review.add_argument("--nps", action="append", default=[], metavar="EMAIL=SCORE")

    task = commands.subparsers.add_parser("task", help="act on a task")
    task_commands = task.add_subparsers(dest="task_command", required=True, parser_class=_Parser)
    done = task_commands.add_parser("done", parents=[commands.common], help="mark a task done")
    done.set_defaults(handler=onboarding.cmd_record)
    done.add_argument("customer", metavar="CUSTOMER")
    done.add_argument("task_id", metavar="TASK_ID")
    done.add_argument("--note", default="")

    # Pause and resume take one customer, or (a lead's command) every ongoing customer
    # of a playbook version, read from the customer projection.
    pause = commands.add(
        "pause",
        onboarding.cmd_pause_or_resume,
        "pause a customer's onboarding: no emails, reminders, escalations or verdicts "
        "until it is resumed; events and usage are still recorded",
    )
    resume = commands.add(
        "resume",
        onboarding.cmd_pause_or_resume,
        "resume a paused onboarding: its timers and deadline move by the time paused",
    )
    for sub in (pause, resume):
        sub.add_argument("customer", metavar="CUSTOMER", nargs="?", help="customer id")
        sub.add_argument(
            "--playbook-version",
            metavar="VERSION",
            help="instead of CUSTOMER: every ongoing customer on this playbook version",
        )
    pause.add_argument("--reason", required=True)
    pause.add_argument(
        "--until",
        metavar="YYYY-MM-DD",
        help="resume by itself as this day begins in the customer's time zone",
    )

    cancel = commands.recording("cancel", "cancel the onboarding (contract ended, churned)")
    cancel.add_argument("--reason", required=True)
    return task_commands


def add_outcome_commands(commands: _Commands) -> None:
    """`outcomes import` and `health import`: what happened to customers after onboarding,
    from another system's CSV export (the columns are in each command's --help)."""
    from cli.csv_file import columns_help
    from cli.outcomes_csv import HEALTH_COLUMNS, OUTCOME_COLUMNS

    for name, columns, handler, help in (
        (
            "outcomes",
            OUTCOME_COLUMNS,
            outcomes.cmd_outcomes_import,
            "import renewals, churn, expansions and contractions from a CSV file",
        ),
        (
            "health",
            HEALTH_COLUMNS,
            outcomes.cmd_health_import,
            "import health scores from a CSV file",
        ),
    ):
        group = commands.subparsers.add_parser(name, help=help.removeprefix("import "))
        sub = group.add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser)
        imported = sub.add_parser(
            "import",
            parents=[commands.common],
            help=help,
            description=help,
            epilog=columns_help(columns),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        imported.set_defaults(handler=handler)
        imported.add_argument("file", type=Path, metavar="FILE.csv")
        imported.add_argument(
            "--dry-run", action="store_true", help="check every row, store nothing"
        )
        imported.add_argument(
            "--skip-invalid",
            action="store_true",
            help="store the good rows and list the refused ones (exit 2 if any); "
            "by default one refused row stores none",
        )


def add_simulate_command(commands: _Commands) -> None:
    sim = commands.add(
        "simulate",
        simulate.cmd_simulate,
        "try a playbook change before it ships: the real workflow over a simulated cohort",
    )
    # Stopped by SIGTERM as by Ctrl-C: its test servers and shard processes with it.
    sim.set_defaults(cancelled_by_sigterm=True)
    sim.add_argument(
        "--playbook", type=Path, required=True, metavar="NEW.toml", help="playbook to try"
    )
    sim.add_argument(
        "--compare", type=Path, metavar="OLD.toml", help="the playbook it would replace"
    )
    cohort = sim.add_mutually_exclusive_group(required=True)
    cohort.add_argument(
        "--synthetic",
        type=bounded_int(1, MAX_SIMULATED_CUSTOMERS),
        metavar="N",
        help=f"N synthetic customers (1 to {MAX_SIMULATED_CUSTOMERS:,}) drawn from --profile",
    )
    cohort.add_argument(
        "--from-history",
        action="store_true",
        help="replay past customers' handoffs and recorded usage from the database",
    )
    sim.add_argument(
        "--customers",
        type=bounded_int(1, MAX_SIMULATED_CUSTOMERS),
        metavar="N",
        help="with --from-history: the N customers who started most recently (default 200)",
    )
    sim.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="usage profiles (default: simulation/profiles.toml, which documents the format)",
    )
    sim.add_argument(
        "--weeks",
        type=bounded_int(1, MAX_SIMULATED_WEEKS),
        default=26,
        help=f"weeks simulated (1 to {MAX_SIMULATED_WEEKS}, default 26)",
    )
    sim.add_argument(
        "--seed",
        type=bounded_int(0, MAX_SEED),
        default=1,
        help="the same seed gives the same cohort and the same figures (default 1)",
    )
    sim.add_argument(
        "--out", type=Path, metavar="DIR", help="also write DIR/summary.md and DIR/summary.csv"
    )


def add_demo_commands(commands: _Commands) -> None:
    """`demo cohort`: a simulated cohort with planted outcomes for the leader's pages."""
    group = commands.subparsers.add_parser("demo", help="write demo data into a database")
    sub = group.add_subparsers(dest="demo_command", required=True, parser_class=_Parser)
    help = (
        "simulate a cohort through the real workflow, plant what happened after, and write "
        "it into a database for the cohort, outcomes and review pages"
    )
    cohort = sub.add_parser("cohort", parents=[commands.common], help=help, description=help)
    cohort.set_defaults(handler=demo.cmd_demo_cohort, cancelled_by_sigterm=True)
    cohort.add_argument(
        "--customers",
        type=bounded_int(demo.MIN_DEMO_CUSTOMERS, MAX_SIMULATED_CUSTOMERS),
        default=demo.DEFAULT_DEMO_CUSTOMERS,
        metavar="N",
        help=f"customers simulated ({demo.MIN_DEMO_CUSTOMERS} to {MAX_SIMULATED_CUSTOMERS:,}, "
        f"default {demo.DEFAULT_DEMO_CUSTOMERS}; fewer leave the analysis too few to conclude)",
    )
    cohort.add_argument(
        "--weeks",
        type=bounded_int(1, MAX_SIMULATED_WEEKS),
        metavar="W",
        help=f"weeks simulated (1 to {MAX_SIMULATED_WEEKS}; default: one past the playbook's "
        "deadline, so every onboarding has ended)",
    )
    cohort.add_argument(
        "--seed",
        type=bounded_int(0, MAX_SEED),
        default=1,
        help="the same seed gives the same cohort and the same outcomes (default 1)",
    )
    cohort.add_argument(
        "--planted",
        choices=PLANTED_RELATIONSHIPS,
        default="key-actions",
        help="what happens after the onboarding: customers with fewer key actions churn "
        "3x more and are less healthy (key-actions, the default), or no relationship (none)",
    )
    cohort.add_argument(
        "--playbook", type=Path, help="playbook file the cohort runs (default: LIFTOFF_PLAYBOOK)"
    )
    cohort.add_argument(
        "--database",
        metavar="URL",
        help="database to write into (default: DATABASE_URL, the one `liftoff serve` reads)",
    )
    cohort.add_argument(
        "--replace",
        action="store_true",
        help="remove the demo customers a previous run wrote (ids demo-...) and write them again",
    )
