"""The Liftoff command line: what a CSM uses to start customers and record what happened.

The `liftoff` console script and `python starter.py` both land here; the
commands live in the `cli/` package (cli/main.py dispatches them).

    liftoff start --customer-id acme --name "Acme" --csm csm@example.com ...
    liftoff kickoff acme --held-on 2026-01-15 --goal "Digitise 80% of invoices"
    liftoff status acme
"""

from __future__ import annotations

from cli.main import main
from client.connection import exit_without_finalizing


def cli() -> None:
    """Console entry point: run a command, then leave without interpreter teardown
    (client.connection.exit_without_finalizing says why)."""
    exit_without_finalizing(main())


if __name__ == "__main__":
    cli()
