"""`liftoff serve`: the HTTP API, usage intake and dashboard, with the process's logging."""

from __future__ import annotations

import argparse
import socket

from cli.errors import EXIT_OK, BadInput
from cli.inputs import read_playbook
from logs import configure_logging
from settings import Settings


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from api.server import base_url, serve_api

    settings = serve_settings(args, settings)
    # This command is the process's entry point, so it sets up logging: uvicorn's and
    # the API's INFO lines (startup, "serving the API and dashboard") reach stderr.
    configure_logging(settings)
    # The playbook is read before anything is served: a broken one stops here, said plainly.
    read_playbook(settings.playbook)
    _check_port_free(settings.api_host, settings.api_port)
    print(f"Liftoff API and dashboard on {base_url(settings)} (OpenAPI at /docs); Ctrl-C stops")
    await serve_api(settings)
    return EXIT_OK


def serve_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The configured settings with --host and --port, when given, in their place."""
    if args.host:
        settings = settings.model_copy(update={"api_host": args.host})
    if args.port:
        settings = settings.model_copy(update={"api_port": args.port})
    return settings


def _check_port_free(host: str, port: int) -> None:
    """A taken port is one sentence before the migrations run and uvicorn logs its start."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn binds: a port a stopped server left in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise BadInput(
                f"cannot serve on {host}:{port}: {err.strerror} (choose another with --port)"
            ) from None
