"""What the HTTP app needs, built once by its entry point and handed to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from client.onboarding import OnboardingClient
from models.playbook import Playbook
from records.database import Database


@dataclass(frozen=True)
class Services:
    onboarding: OnboardingClient
    database: Database
    # The playbook a customer started over HTTP runs on (LIFTOFF_PLAYBOOK), read once
    # when the server starts, like a worker pinned to its deployment.
    playbook: Playbook
    # Segment events name their customer by group id, or by this trait of the user.
    customer_trait: str = "company_id"
    # SendGrid's event webhook verification key; None takes events unverified.
    webhook_public_key: str | None = None
