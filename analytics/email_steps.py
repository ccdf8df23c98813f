"""Step emails: what became of each step, per role and locale, and which steps were sent
while a customer was stalled and preceded its recovery.

A step email's ledger key names it (workflows/campaign.py, workflows/step_emails.py):
"campaign:<purpose>:<step>:<role>", "campaign:shared:<step>:<role>",
"campaign:choose_purpose:<role>", and the stall ladder's fallback proposal
"stall:<episode>:proposal". Task and failure emails are not steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from models.handoff import Role

CAMPAIGN_PREFIX = "campaign:"
STALL_PREFIX = "stall:"
STALL_PROPOSAL = "stall_proposal"
_ROLES = {role.value for role in Role}


def step_of(ledger_key: str) -> str | None:
    """The step an email belongs to ("A:welcome", "shared:tips", "choose_purpose",
    "stall_proposal"), or None for an email that is not a step."""
    parts = ledger_key.split(":")
    if parts[0] == "campaign":
        rest = parts[1:-1] if len(parts) > 2 and parts[-1] in _ROLES else parts[1:]
        return ":".join(rest) or None
    if parts[0] == "stall" and len(parts) == 3 and parts[2] == "proposal":
        return STALL_PROPOSAL
    return None


@dataclass(frozen=True)
class MessageCounts:
    """What SQL counted for one ledger key, recipient role and customer locale."""

    ledger_key: str
    role: str
    locale: str
    sent: int
    delivered: int
    opened: int
    clicked: int
    opted_out: int


class StepEmails(BaseModel):
    step: str
    role: str
    locale: str
    sent: int = Field(description="messages the provider accepted")
    delivered: int = Field(description="of those, with a delivered event")
    opened: int = Field(description="opened by a person (privacy-proxy opens not counted)")
    clicked: int
    opted_out: int = Field(description="unsubscribed or reported spam after this message")


def step_emails(counts: Iterable[MessageCounts]) -> list[StepEmails]:
    """Per step, role and locale, in that order."""
    totals: defaultdict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 5)
    for row in counts:
        step = step_of(row.ledger_key)
        if step is None:
            continue
        total = totals[step, row.role, row.locale]
        for index, value in enumerate(
            (row.sent, row.delivered, row.opened, row.clicked, row.opted_out)
        ):
            total[index] += value
    return [
        StepEmails(
            step=step,
            role=role,
            locale=locale,
            sent=values[0],
            delivered=values[1],
            opened=values[2],
            clicked=values[3],
            opted_out=values[4],
        )
        for (step, role, locale), values in sorted(totals.items())
    ]


@dataclass(frozen=True)
class StallEpisode:
    customer_id: str
    episode: int
    started_at: datetime
    # When the stall was cleared; None while it lasts or when the onboarding ended in it.
    cleared_at: datetime | None


@dataclass(frozen=True)
class StepSend:
    customer_id: str
    ledger_key: str
    sent_at: datetime


class StepRecovery(BaseModel):
    step: str
    sent_in_stall: int = Field(description="stall episodes during which the step was sent")
    recovered: int = Field(description="of those, episodes that ended with the stall cleared")


def recovery_by_step(
    episodes: Iterable[StallEpisode], sends: Iterable[StepSend]
) -> list[StepRecovery]:
    """Each step sent during a stall episode, counted once per episode (however many
    recipients), and how many of those episodes ended with the stall cleared."""
    by_customer: defaultdict[str, list[StallEpisode]] = defaultdict(list)
    for episode in episodes:
        by_customer[episode.customer_id].append(episode)
    during: defaultdict[str, set[tuple[str, int]]] = defaultdict(set)
    recovered: defaultdict[str, set[tuple[str, int]]] = defaultdict(set)
    for send in sends:
        step = step_of(send.ledger_key)
        if step is None:
            continue
        for episode in by_customer.get(send.customer_id, ()):
            if send.sent_at < episode.started_at:
                continue
            if episode.cleared_at is not None and send.sent_at > episode.cleared_at:
                continue
            key = (episode.customer_id, episode.episode)
            during[step].add(key)
            if episode.cleared_at is not None:
                recovered[step].add(key)
    rows = [
        StepRecovery(step=step, sent_in_stall=len(keys), recovered=len(recovered[step]))
        for step, keys in during.items()
    ]
    rows.sort(key=lambda row: (-row.recovered, -row.sent_in_stall, row.step))
    return rows
