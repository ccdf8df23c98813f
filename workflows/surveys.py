"""The workflow's part of NPS surveys: which emails a touchpoint sends.

Pure (the workflow imports it): the score links are signed per recipient by the mail
activity, which alone knows who the role's contacts are (emails/survey_links.py).
"""

from __future__ import annotations

import emails.contexts as contexts
from models.activity_io import SendEmailInput
from models.email_categories import EmailCategory
from models.handoff import CustomerHandoff
from models.playbook import Playbook, Touchpoint

# The CSM event after which each touchpoint's survey goes out. A training skipped is
# not a touchpoint: nobody met anyone.
TOUCHPOINT_AFTER: dict[str, Touchpoint] = {
    "kickoff_held": Touchpoint.AFTER_KICKOFF,
    "training_held": Touchpoint.AFTER_TRAINING,
    "completion_review_held": Touchpoint.AT_COMPLETION_REVIEW,
}


def ledger_key(touchpoint: Touchpoint, role: str) -> str:
    """Once per touchpoint and role, whatever repeats (a second completion review)."""
    return f"survey:{touchpoint.value}:{role}"


def survey_emails(
    event_kind: str, handoff: CustomerHandoff, playbook: Playbook
) -> list[SendEmailInput]:
    """One email per role the playbook asks at the touchpoint this event passes; none
    for a playbook without surveys or an event that is no touchpoint."""
    policy = playbook.surveys
    touchpoint = TOUCHPOINT_AFTER.get(event_kind)
    if policy is None or touchpoint is None:
        return []
    context = contexts.survey_context(
        customer_name=handoff.name,
        customer_id=handoff.customer_id,
        touchpoint=touchpoint.value,
        valid_for=policy.valid_for,
    )
    return [
        SendEmailInput(
            ledger_key=ledger_key(touchpoint, role.value),
            customer_id=handoff.customer_id,
            template=policy.template,
            locale=handoff.locale,
            to_role=role,
            context=context,
            category=EmailCategory.SURVEY,
        )
        for role in policy.touchpoints.get(touchpoint, [])
    ]
