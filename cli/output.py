"""What commands print: one-line results, reports and tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from client.onboarding import CustomerSummary, StartResult
from models.onboarding import EventResult, OnboardingStatus, WeekVerdict

if TYPE_CHECKING:
    from records.reports import EmailRow


def to_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, ensure_ascii=False, indent=2)


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    seconds = int((now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60}min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def start_line(result: StartResult) -> str:
    if result.already_running:
        return (
            f"{result.customer_id}: already running as {result.workflow_id} "
            f"(run {result.run_id}); nothing started"
        )
    return f"{result.customer_id}: started {result.workflow_id} (run {result.run_id})"


def event_line(customer_id: str, result: EventResult) -> str:
    if result.duplicate:
        return f"{customer_id}: {result.kind} was already recorded; nothing changed"
    line = f"{customer_id}: {result.kind} recorded; stage {result.stage.value}"
    return f"{line} ({result.detail})" if result.detail else line


def verdict_lines(verdict: WeekVerdict) -> list[str]:
    m = verdict.measurement
    quota = "-" if m.quota_consumption is None else f"{m.quota_consumption:.0%}"
    keys = ", ".join(f"{k} {v}" for k, v in sorted(m.key_actions.items())) or "none"
    lines = [
        f"last measurement: week {m.week_index} ({when(m.window_start)} to {when(m.window_end)})",
        f"  active users {m.active_users}, active seat ratio {m.active_seat_ratio:.0%}, "
        f"events {m.events}, key actions: {keys}, quota used {quota}"
        + ("" if m.data_ever_arrived else ", no usage data yet"),
        f"  criteria {'MET' if verdict.criteria_met else 'not met'}:",
    ]
    for c in verdict.criteria:
        target = c.metric.value + (f"[{c.purpose}]" if c.purpose else "")
        lines.append(
            f"    [{'x' if c.met else ' '}] {target} >= {c.threshold:g}: observed {c.observed:g}"
            f" ({_weeks(c.weeks_running, c.weeks_required)} week(s) running)"
        )
    for c in verdict.stall_checks:
        target = c.metric.value + (f"[{c.purpose}]" if c.purpose else "")
        lines.append(
            f"    [{'!' if c.met else ' '}] stall if {target} < {c.threshold:g}: "
            f"observed {c.observed:g} ({_weeks(c.weeks_running, c.weeks_required)} week(s) running)"
        )
    return lines


def _weeks(running: int, required: int) -> str:
    # Progress toward what the rule needs: 13 weeks running of 1 needed reads "1/1".
    return f"{min(running, required)}/{required}"


def status_text(status: OnboardingStatus, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    s = status.state
    lines = [
        f"{status.customer_name} ({status.customer_id}): {s.stage.value.upper()} since "
        f"{when(s.stage_since)} ({_ago(s.stage_since, now)})",
        f"  CSM {status.csm}, leader {status.cs_leader}, "
        f"playbook {status.playbook_name} {status.playbook_version}",
        "  goals: " + ("; ".join(goal.text for goal in s.goals) or "none agreed yet"),
        "  purposes: " + (", ".join(s.purposes) or "none chosen yet"),
    ]
    if s.pause is not None:
        until = f", resumes {when(s.pause.resume_at)}" if s.pause.resume_at else ""
        lines.append(
            f"  PAUSED since {when(s.pause.since)} ({s.pause.reason}){until}: "
            f"{len(s.pause.held)} timer(s) and step(s) held"
        )
    for value in status.overridden:
        lines.append(f"  adjusted: {value.name} {value.customer} (playbook {value.playbook})")
    if s.recent_weeks:
        lines += ["  " + line for line in verdict_lines(s.recent_weeks[-1])]
    else:
        lines.append("  last measurement: none yet")
    if s.stall.stalled:
        steps = ", ".join(str(step) for step in s.stall.steps_done) or "none"
        lines.append(
            f"  stall: STALLED since {when(s.stall.since)} ({s.stall.weeks} week(s), "
            f"episode {s.stall.episode}, ladder steps done: {steps})"
        )
    else:
        lines.append("  stall: not stalled")
    if s.setup.stuck:
        escalated = ", escalated to the leader" if s.setup.escalated else ""
        lines.append(f"  setup: STUCK since {when(s.setup.stuck_since)}{escalated}")
    else:
        arrived = "usage data arriving" if s.setup.data_arrived else "waiting for usage data"
        lines.append(f"  setup: {arrived}")
    lines.append(f"  open tasks: {len(s.open_tasks) or 'none'}")
    for task in s.open_tasks:
        due = f", due {when(task.due_at)}" if task.due_at else ""
        lines.append(f"    {task.task_id} [{task.kind.value}] {task.assignee}: {task.title}{due}")
    if status.next_due is not None:
        lines.append(f"  next timer: {status.next_due.kind.value} at {when(status.next_due.at)}")
    if s.rejected:
        last = s.rejected[-1]
        lines.append(f"  last rejected event: {last.kind} at {when(last.at)}: {last.reason}")
    lines.append("  recent transitions:")
    for t in s.transitions[-5:]:
        origin = t.stage_from.value if t.stage_from else "-"
        lines.append(f"    {when(t.at)} {origin} -> {t.stage_to.value}: {t.cause}")
    return "\n".join(lines)


def table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _fate(email: EmailRow) -> str:
    """What the provider reported, in order, repeats counted: `delivered, open x2, click`."""
    if email.status == "failed":
        # Failed for good: refused by the provider, or a template that cannot render.
        return (email.error or "no reason recorded")[:120]
    seen = email.fate()
    if not seen:
        return "-"  # the outbox and SMTP report no events; SendGrid's may be on the way
    return ", ".join(name if count == 1 else f"{name} x{count}" for name, count in seen)


def emails_text(emails: Sequence[EmailRow]) -> str:
    """The send ledger for a customer's people, with what became of each email."""
    if not emails:
        return "  emails: none sent yet"
    failed = sum(email.status == "failed" for email in emails)
    rows = [("WHEN", "EMAIL", "TEMPLATE", "TO", "STATUS", "WHAT HAPPENED")]
    for email in emails:
        rows.append(
            (
                when(email.sent_at or email.created_at),
                email.ledger_key,
                email.template,
                email.recipient,
                email.status,
                _fate(email),
            )
        )
    head = f"  emails: {len(emails)}" + (f" ({failed} failed)" if failed else "")
    return "\n".join([head, *table(rows, indent="    ")])


def list_text(summaries: Sequence[CustomerSummary]) -> str:
    if not summaries:
        return "no customers match"
    rows = [("CUSTOMER", "STAGE", "CSM", "FLAGS", "PLAYBOOK", "WORKFLOW")]
    for s in summaries:
        flags = ",".join(
            f
            for f, on in (("stalled", s.stalled), ("stuck", s.setup_stuck), ("paused", s.paused))
            if on
        )
        stage = s.stage.value if s.stage else "?"
        rows.append(
            (
                s.customer_id,
                stage,
                s.csm or "-",
                flags or "-",
                s.playbook_version or "-",
                s.workflow_status,
            )
        )
    return "\n".join(table(rows))


def page_line(total: int, offset: int, shown: int, page: int) -> str:
    """Where a page of a list sits in the whole, and how to get the next."""
    if shown == 0:
        return f"{total:,} match; page {page} is past the end" if total else ""
    line = f"{offset + 1:,}-{offset + shown:,} of {total:,}"
    return line + (f" (next: --page {page + 1})" if offset + shown < total else "")
