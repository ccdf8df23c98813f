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
from client.connection import exit_without_finalizing

# What a shell reports for a program its reader left early (128 + SIGPIPE).
READER_LEFT_EXIT = 141


def cli() -> None:
    """Console entry point: run a command, then leave without interpreter teardown
    (client.connection.exit_without_finalizing says why).

    A reader that leaves early (`liftoff list | head`) got what it asked for: the
    command stops quietly instead of printing a traceback."""
    try:
        try:
            code = main()
        except SystemExit as stop:  # argparse's --help and usage errors
            code = _exit_code(stop.code)
        sys.stdout.flush()
    except BrokenPipeError:
        # Whatever is still buffered goes nowhere, instead of failing again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = READER_LEFT_EXIT
    exit_without_finalizing(code)


def _exit_code(code: str | int | None) -> int:
    if isinstance(code, str):  # sys.exit("message"), as the interpreter would report it
        sys.stderr.write(f"{code}\n")
        return 1
    return code or 0


if __name__ == "__main__":
    cli()
