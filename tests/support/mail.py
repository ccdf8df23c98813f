"""What the workflow tells each email template, and reading a sent message's parts."""

from __future__ import annotations

from email.message import Message

# A purpose as choose_purpose lists it: {"id": ..., "title": ...}.
ContextValue = str | int | float | bool | None | list[dict[str, str]]

PURPOSE_CONTEXT: dict[str, ContextValue] = {
    "customer_name": "Acme Logistics",
    "purpose_id": "A",
    "purpose_title": "Digitise incoming documents",
    "purpose_outcome": "Share of incoming documents digitised",
    "key_action": "document_scanned",
    "recipient": "someone@acme.example",
}

# The contexts the workflow sends with each template; a role-specific template
# is keyed "<template>.<role>", like its file name.
WORKFLOW_CONTEXTS: dict[str, dict[str, ContextValue]] = {
    "task_assigned": {
        "customer_name": "Acme Logistics",
        "customer_id": "acme",
        "title": "Schedule the kickoff meeting",
        "detail": "Task acme-1 (schedule_kickoff)",
        "due_at": "2025-03-17T09:00:00+00:00",
        "assignee": "csm@liftoff.example",
    },
    "stall_proposal": {
        "customer_name": "Acme Logistics",
        "purposes": "Expense reports, Invoices",
        "detail": "",
    },
    "onboarding_failed": {
        "customer_name": "Acme Logistics",
        "customer_id": "acme",
        "detail": "Deadline of 120 days passed in stage adoption.",
    },
    "choose_purpose": {
        "customer_name": "Acme Logistics",
        "purposes_offered": [
            {"id": "A", "title": "Digitise incoming documents"},
            {"id": "B", "title": "Approve expenses online"},
        ],
        "recipient": "someone@acme.example",
    },
    "purpose_welcome.administrator": PURPOSE_CONTEXT,
    "purpose_welcome.end_user": PURPOSE_CONTEXT,
    "purpose_nudge": {**PURPOSE_CONTEXT, "key_actions_last_week": 3},
}


def part(message: Message, content_type: str) -> str:
    for piece in message.walk():
        if piece.get_content_type() == content_type:
            return str(piece.get_content())  # type: ignore[attr-defined]
    raise AssertionError(f"no {content_type} part")
