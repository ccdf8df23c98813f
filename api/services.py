"""What the HTTP app needs, built once by its entry point and handed to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.common import MetricMeter

from client.onboarding import OnboardingClient
from emails.opt_out_links import OptOutLinks
from emails.survey_links import SurveyLinks
from models.playbook import Playbook
from records.database import Database


@dataclass(frozen=True)
class Services:
    onboarding: OnboardingClient
    database: Database
    # The playbook a customer started over HTTP runs on (LIFTOFF_PLAYBOOK), read once
    # when the server starts, like a worker pinned to its deployment.
    playbook: Playbook
    # Where that playbook came from, as `liftoff playbook list` shows it.
    playbook_source: str = "api"
    # Segment events name their customer by group id, or by this trait of the user.
    customer_trait: str = "company_id"
    # SendGrid's event webhook verification key; None takes events unverified.
    webhook_public_key: str | None = None
    # Liftoff's own counters (observability/metrics.py): the Temporal runtime's meter,
    # served with the SDK's metrics at LIFTOFF_METRICS_ADDRESS; a no-op one without it.
    metrics: MetricMeter = field(default=MetricMeter.noop)
    # Verifies survey score links (LIFTOFF_SURVEY_SECRET); None: the answer pages say
    # surveys are not set up.
    survey_links: SurveyLinks | None = None
    # Verifies unsubscribe links (the same secret, another salt); None: the preference
    # page says unsubscribing by link is not set up.
    opt_out_links: OptOutLinks | None = None
