"""`liftoff serve`: the HTTP API, usage intake and dashboard."""

from __future__ import annotations

import argparse

from cli.errors import EXIT_OK
from cli.inputs import read_playbook
from settings import Settings


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from api.server import base_url, serve_api

    settings = serve_settings(args, settings)
    # The playbook is read before anything is served: a broken one stops here, said plainly.
    read_playbook(settings.playbook)
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
