"""What a command's failure means: its exit code, and input refused before anything is sent."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # Temporal or the database could not be reached
EXIT_BAD_INPUT = 2
EXIT_TERMINATED = 128 + 15  # stopped by SIGTERM, as a shell reports it


class BadInput(Exception):
    """Input the CLI refuses before anything is sent; the message is the whole story."""
