"""The Liftoff command line: what a CSM uses to start customers and record what happened.

The `liftoff` console script and `python starter.py` both land here; the
commands live in the `cli/` package (cli/main.py dispatches them).

    liftoff start --customer-id acme --name "Acme" --csm csm@example.com ...
    liftoff kickoff acme --held-on 2026-01-15 --goal "Digitise 80% of invoices"
    liftoff status acme
"""

from __future__ import annotations

import os
import sys

from cli.main import main


def cli() -> None:
    """Console entry point: run a command, then leave without interpreter teardown.

    The Temporal client's native threads can outlive the event loop and abort a
    short-lived process during finalization (temporalio/sdk-python#300), so the
    CLI flushes its output and exits directly once the command is done.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
