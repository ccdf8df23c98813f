"""The client side of Liftoff: how the CLI and the HTTP app reach customers."""

from client.connection import connect_client
from client.errors import (
    CommandRejectedError,
    LiftoffClientError,
    OnboardingClosedError,
    UnknownCustomerError,
)
from client.onboarding import CustomerSummary, OnboardingClient, StartResult

__all__ = [
    "CommandRejectedError",
    "CustomerSummary",
    "LiftoffClientError",
    "OnboardingClient",
    "OnboardingClosedError",
    "StartResult",
    "UnknownCustomerError",
    "connect_client",
]
