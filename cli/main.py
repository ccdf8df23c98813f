"""The CLI's entry: parse, read settings, run the command, and turn failures into exit codes.

Every command checks its input before it talks to Temporal, so bad input
changes nothing: it gets one line on stderr and exit code 2. Temporal or the
database out of reach is exit code 1; a simulation stopped by SIGTERM, 143.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from temporalio.service import RPCError

from cli.commands import Command
from cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_TERMINATED, BadInput
from cli.parser import build_parser
from client.codec import PayloadCodecError
from client.errors import LiftoffClientError
from models.errors import describe
from settings import Settings


async def _until_terminated(handler: Command, args: argparse.Namespace, settings: Settings) -> int:
    """Run the command; SIGTERM stops it as Ctrl-C does, by cancelling it, so what it
    started is stopped and removed (a simulation's test servers, shard processes and
    files) instead of left behind."""
    command = asyncio.current_task()
    assert command is not None
    loop = asyncio.get_running_loop()
    terminated = asyncio.Event()

    def terminate() -> None:
        terminated.set()
        command.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await handler(args, settings)
    except asyncio.CancelledError:
        if not terminated.is_set():
            raise
        print("liftoff: stopped (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as err:
        print(f"liftoff: error: bad configuration: {describe(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    handler: Command = args.handler
    try:
        if getattr(args, "cancelled_by_sigterm", False):
            return asyncio.run(_until_terminated(handler, args, settings))
        return asyncio.run(handler(args, settings))
    except (BadInput, LiftoffClientError) as err:
        print(f"liftoff: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PayloadCodecError as err:
        print(f"liftoff: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except RPCError as err:
        print(
            f"liftoff: error: Temporal at {settings.temporal_address} answered: {err.message}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except OperationalError as err:
        # psycopg's and SQLite's own words name the host, port, user or file, never a
        # password; the first line is the cause.
        cause = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        print(f"liftoff: error: the database (DATABASE_URL): {cause[:300]}", file=sys.stderr)
        return EXIT_FAILED
    except RuntimeError as err:
        # temporalio reports an unreachable server as a RuntimeError.
        if "connect" not in str(err).lower():
            raise
        print(
            f"liftoff: error: cannot reach Temporal at {settings.temporal_address} "
            "(is it running, and is TEMPORAL_ADDRESS right? For a local one, `make run` "
            f"starts it): {str(err)[:200]}",
            file=sys.stderr,
        )
        return EXIT_FAILED
