"""What can go wrong when a client talks to a customer's onboarding.

Each message is one line a CSM can act on; the CLI prints it as is.
"""

from __future__ import annotations


class LiftoffClientError(Exception):
    """Base of every refusal the client layer reports."""


class UnknownCustomerError(LiftoffClientError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"unknown customer {customer_id!r}: no onboarding was started for it")
        self.customer_id = customer_id


class OnboardingClosedError(LiftoffClientError):
    """The customer's onboarding has ended; it takes no more commands or starts."""

    def __init__(self, customer_id: str, status: str) -> None:
        super().__init__(f"the onboarding of {customer_id!r} has already ended ({status})")
        self.customer_id = customer_id
        self.status = status


class CommandRejectedError(LiftoffClientError):
    """The workflow refused a command (out of order or invalid); nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
