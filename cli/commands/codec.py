"""Payload encryption: `liftoff codec keygen` and `liftoff codec-server`."""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
from datetime import UTC, datetime

from cli.errors import EXIT_OK, BadInput
from cli.output import to_json
from logs import configure_logging
from settings import ENCRYPTION_KEY_BYTES, Settings, parse_encryption_keys


async def cmd_codec_keygen(args: argparse.Namespace, settings: Settings) -> int:
    key_id = args.id or datetime.now(UTC).strftime("%Y%m%d")
    entry = f"{key_id}:{base64.b64encode(secrets.token_bytes(ENCRYPTION_KEY_BYTES)).decode()}"
    try:
        parse_encryption_keys(entry)
    except ValueError as err:
        raise BadInput(str(err)) from None
    if args.json:
        print(to_json({"key_id": key_id, "entry": entry}))
        return EXIT_OK
    print(entry)
    print(
        "put it first in LIFTOFF_ENCRYPTION_KEYS (new payloads use the first key) and keep "
        "the older keys after it, so what they sealed stays readable",
        file=sys.stderr,
    )
    return EXIT_OK


async def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    from api.codec_server import CodecServerConfigError, codec_app_from_settings, serve_codec

    if args.host:
        settings = settings.model_copy(update={"codec_host": args.host})
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise BadInput(f"--port must be between 1 and 65535, not {args.port}")
        settings = settings.model_copy(update={"codec_port": args.port})
    try:
        # Built once here so a missing key or token is refused before anything listens.
        codec_app_from_settings(settings)
    except CodecServerConfigError as err:
        raise BadInput(str(err)) from None
    configure_logging(settings)
    url = f"http://{settings.codec_host}:{settings.codec_port}"
    print(
        f"Liftoff codec server on {url} for the Web UI ({', '.join(settings.codec_origins())}) "
        f"and `temporal --codec-endpoint {url}`; Ctrl-C stops"
    )
    await serve_codec(settings)
    return EXIT_OK
