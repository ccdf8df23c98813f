"""`liftoff codec-server`: Temporal's remote codec protocol, so people can read
encrypted or compressed customer data in the Temporal Web UI and with
`temporal --codec-endpoint`.

`POST /decode` and `POST /encode` take and return Temporal's payloads JSON
(`{"payloads": [{"metadata": {...}, "data": "<base64>"}]}`, the protobuf JSON form
of `temporal.api.common.v1.Payloads`). Every call needs the codec token: as
`Authorization: Bearer <LIFTOFF_CODEC_TOKEN>` (the `temporal` CLI's `--codec-auth`),
or, for the Web UI, which can send no header of its own, as the cookie a sign-in at
`/` sets (the UI's "include cross-origin credentials"). CORS answers only the
configured Web UI origins. The server holds the keys and no database: what it can
do is decrypt and inflate, so it is no one's door to anything else. A deployment that
compresses without encrypting runs it without keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from html import escape
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Form, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from temporalio.api.common.v1 import Payload, Payloads

from api.guards import BodyLimit, SecurityHeaders
from client.codec import LiftoffCodec, PayloadCodecError
from models.limits import CODEC_BODY_BYTES
from settings import Settings

log = logging.getLogger("liftoff.codec")

COOKIE = "liftoff_codec"
SIGN_IN_HOURS = 12
_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
)
_REFUSED = (
    "refused: the codec server needs `Authorization: Bearer <LIFTOFF_CODEC_TOKEN>`, "
    "or a sign-in at its / page for the Web UI"
)
_NOT_PAYLOADS = (
    'the body must be Temporal\'s payloads JSON: {"payloads": [{"metadata": {...}, "data": "..."}]}'
)

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class CodecServerConfigError(ValueError):
    """The codec server cannot start as configured; the message names the setting."""


def _session_value(token: str) -> str:
    # The cookie proves the token was typed without holding the token itself.
    return hmac.new(token.encode(), b"liftoff codec sign-in", hashlib.sha256).hexdigest()


def create_codec_app(codec: LiftoffCodec, *, token: str, cors_origins: Sequence[str]) -> FastAPI:
    if codec.key_id is None and not codec.compresses:
        raise CodecServerConfigError(
            "the codec server has nothing to decode: it needs LIFTOFF_ENCRYPTION_KEYS, "
            "LIFTOFF_PAYLOAD_COMPRESSION=true, or both, as the workers have them"
        )
    app = FastAPI(title="Liftoff codec server", docs_url=None, redoc_url=None, openapi_url=None)
    session = _session_value(token)

    def authorized(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), session.encode())

    async def apply(request: Request, transform: Transform) -> Response:
        if not authorized(request):
            log.warning("codec request refused: no valid token", extra={"path": request.url.path})
            return JSONResponse(
                {"detail": _REFUSED},
                status_code=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            payloads = json_format.Parse(
                await request.body(), Payloads(), ignore_unknown_fields=True
            )
        except (json_format.ParseError, UnicodeDecodeError):
            return JSONResponse({"detail": _NOT_PAYLOADS}, status_code=status.HTTP_400_BAD_REQUEST)
        try:
            result = Payloads(payloads=await transform(payloads.payloads))
        except PayloadCodecError as err:
            return JSONResponse({"detail": str(err)}, status_code=status.HTTP_400_BAD_REQUEST)
        return Response(json_format.MessageToJson(result), media_type="application/json")

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        return await apply(request, codec.decode)

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        return await apply(request, codec.encode)

    @app.get("/", response_class=HTMLResponse)
    async def sign_in_page() -> HTMLResponse:
        return _page(
            "Sign in to read encrypted or compressed payloads in the Temporal Web UI.", form=True
        )

    @app.post("/", response_class=HTMLResponse)
    async def sign_in(
        request: Request, token_typed: Annotated[str, Form(alias="token", max_length=512)]
    ) -> HTMLResponse:
        if not hmac.compare_digest(token_typed.strip().encode(), token.encode()):
            log.warning("codec sign-in refused: wrong token")
            return _page(
                "That is not the codec token.", form=True, code=status.HTTP_401_UNAUTHORIZED
            )
        page = _page(
            "Signed in for 12 hours. In the Web UI's codec server settings, give this "
            "server's address and turn on “include cross-origin credentials”.",
            form=False,
        )
        page.set_cookie(
            COOKIE,
            session,
            max_age=SIGN_IN_HOURS * 3600,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return page

    app.add_middleware(SecurityHeaders)
    # Preflights are answered here, before any token check: a browser sends them bare.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        max_age=600,
    )
    app.add_middleware(BodyLimit, default=CODEC_BODY_BYTES, limits={})
    return app


def _page(message: str, *, form: bool, code: int = status.HTTP_200_OK) -> HTMLResponse:
    fields = (
        '<form method="post"><label>Codec token <input type="password" name="token" '
        'autocomplete="current-password" required maxlength="512"></label> '
        "<button>Sign in</button></form>"
        if form
        else ""
    )
    html = (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>Liftoff codec server</title>'
        '<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">'
        f"<h1>Liftoff codec server</h1><p>{escape(message)}</p>{fields}</body></html>"
    )
    return HTMLResponse(
        html,
        status_code=code,
        headers={"Content-Security-Policy": _PAGE_POLICY, "Cache-Control": "no-store"},
    )


def codec_app_from_settings(settings: Settings) -> FastAPI:
    """Raises CodecServerConfigError naming the setting that is missing."""
    if settings.codec_token is None:
        raise CodecServerConfigError("the codec server needs LIFTOFF_CODEC_TOKEN")
    return create_codec_app(
        LiftoffCodec.from_keys(
            settings.encryption_key_ring(), compress=settings.payload_compression
        ),
        token=settings.codec_token.get_secret_value(),
        cors_origins=settings.codec_origins(),
    )


async def serve_codec(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM when run alone)."""
    config = uvicorn.Config(
        codec_app_from_settings(settings),
        host=settings.codec_host,
        port=settings.codec_port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    log.info("serving the codec endpoint", extra={"url": codec_url(settings)})
    if stop is None:
        await server.serve()
        return
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


def codec_url(settings: Settings) -> str:
    return f"http://{settings.codec_host}:{settings.codec_port}"
