"""What kind of email a message is, so a contact can leave one kind and keep the others.

Each email's category is set where the workflow builds it (workflows/step_emails.py,
workflows/surveys.py, workflows/onboarding.py), never guessed from its template or text.
Pure: workflows import it.
"""

from __future__ import annotations

from enum import StrEnum


class EmailCategory(StrEnum):
    # A purpose's campaign step emails, and the choose-purpose email.
    STEP = "step"
    # The stall ladder's proposals for stuck purposes.
    PROPOSAL = "proposal"
    # NPS survey emails.
    SURVEY = "survey"
    # Mail the onboarding cannot run without (tasks to staff, a failed onboarding's
    # notice): no unsubscribe link, never skipped.
    OPERATIONAL = "operational"

    @property
    def can_opt_out(self) -> bool:
        return self is not EmailCategory.OPERATIONAL


# The categories a contact can leave, in the order the preference page lists them.
OPT_OUT_CATEGORIES: tuple[EmailCategory, ...] = tuple(c for c in EmailCategory if c.can_opt_out)
