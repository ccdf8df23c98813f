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
import hmac
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from html import escape
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Form, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from google.protobuf import json_format
from itsdangerous import BadSignature, TimestampSigner
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from api.guards import BodyLimit, SecurityHeaders
from client.codec import LiftoffCodec, PayloadCodecError
from models.limits import CODEC_BODY_BYTES, CODEC_CONCURRENT_REQUESTS, CODEC_PAYLOADS
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
# Metadata entries of one payload: Temporal's own are a handful (encoding, key id...).
_METADATA_ENTRIES = 32
_TOO_MANY = (
    f"at most {CODEC_PAYLOADS} payloads per request, "
    f"each with at most {_METADATA_ENTRIES} metadata entries"
)
# An answer is written in pieces, each after the client read the one before.
_ANSWER_CHUNK_BYTES = 64 * 1024
# How long a client may take to send its request's body.
_BODY_SECONDS = 30
# The sign-in form: one token field.
_SIGN_IN_BODY_BYTES = 4096
_NOT_JSON = "the body must be sent as Content-Type: application/json"
_OTHER_ORIGIN = "refused: the sign-in cookie is accepted only from the configured Web UI origins"
# Standard or URL-safe, padded or not: what protobuf's JSON form accepts. Anything
# else would be decoded leniently into other bytes rather than refused.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
# How long a request waits for one of the CODEC_CONCURRENT_REQUESTS slots.
_BUSY_SECONDS = 30

Transform = Callable[[Sequence[Payload]], Coroutine[Any, Any, list[Payload]]]


class CodecServerConfigError(ValueError):
    """The codec server cannot start as configured; the message names the setting."""


def _signer(token: str) -> TimestampSigner:
    # The cookie proves the token was typed without holding the token itself; each
    # sign-in's is its own and expires after SIGN_IN_HOURS, whatever the browser keeps.
    # Changing the token signs everyone out.
    return TimestampSigner(token, salt="liftoff codec sign-in")


def _payloads_of(body: bytes) -> Payloads | str:
    """The request's payloads, or why they are refused."""
    # Counted before parsing: the parser's objects take far more memory than the body.
    # Each payload is an object with a metadata object, and base64 holds none of these.
    if body.count(b"{") > 2 * CODEC_PAYLOADS + 1 or body.count(b"[") > 1:
        return _TOO_MANY
    if body.count(b":") > CODEC_PAYLOADS * (2 + _METADATA_ENTRIES) + 1:
        return _TOO_MANY
    try:
        parsed: Any = json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_PAYLOADS
    if not isinstance(parsed, dict) or not isinstance(parsed.get("payloads", []), list):
        return _NOT_PAYLOADS
    if len(parsed.get("payloads", [])) > CODEC_PAYLOADS:
        return _TOO_MANY
    for payload in parsed.get("payloads", []):
        if not isinstance(payload, dict):
            return _NOT_PAYLOADS
        metadata = payload.get("metadata", {})
        if not isinstance(metadata, dict):
            return _NOT_PAYLOADS
        if len(metadata) > _METADATA_ENTRIES:
            return _TOO_MANY
        texts = [payload.get("data", ""), *metadata.values()]
        if not all(isinstance(text, str) and _BASE64.fullmatch(text) for text in texts):
            return "payload data and metadata values must be base64"
    try:
        return json_format.ParseDict(parsed, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError):
        return _NOT_PAYLOADS


def _transformed(body: bytes, transform: Transform) -> tuple[int, str]:
    """Runs in a thread: parsing, decrypting and inflating a request of a few megabytes
    takes long enough to stall every other request on the event loop."""
    payloads = _payloads_of(body)
    if isinstance(payloads, str):
        return status.HTTP_400_BAD_REQUEST, json.dumps({"detail": payloads})
    try:
        result = asyncio.run(transform(payloads.payloads))
    except PayloadCodecError as err:
        return status.HTTP_400_BAD_REQUEST, json.dumps({"detail": str(err)})
    return status.HTTP_200_OK, json_format.MessageToJson(Payloads(payloads=result))


class ConcurrencyLimit:
    """At most `limit` codec requests at once, each held until its answer is sent (the
    answer goes out in pieces, each after the client read the one before): an answer
    is a few megabytes at most, and clients that never read theirs cannot pile them up
    in memory. Only requests `counts` admits take a slot: a refused one costs nothing
    and must not keep a slot from those with the token."""

    def __init__(self, app: ASGIApp, *, limit: int, counts: Callable[[Request], bool]) -> None:
        self._app = app
        self._slots = asyncio.Semaphore(limit)
        self._counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] == "/"
            or not self._counts(Request(scope))
        ):
            await self._app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), _BUSY_SECONDS)
        except TimeoutError:
            busy = JSONResponse({"detail": "the codec server is busy; try again"}, 503)
            await busy(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            self._slots.release()


class _CodecBodyLimit(BodyLimit):
    """The codec's bodies may be megabytes; the sign-in form's is one short field."""

    def limit_for(self, path: str) -> int:
        return _SIGN_IN_BODY_BYTES if path == "/" else super().limit_for(path)


def create_codec_app(codec: LiftoffCodec, *, token: str, cors_origins: Sequence[str]) -> FastAPI:
    if codec.key_id is None and not codec.compresses:
        raise CodecServerConfigError(
            "the codec server has nothing to decode: it needs LIFTOFF_ENCRYPTION_KEYS, "
            "LIFTOFF_PAYLOAD_COMPRESSION=true, or both, as the workers have them"
        )
    app = FastAPI(title="Liftoff codec server", docs_url=None, redoc_url=None, openapi_url=None)
    signer = _signer(token)
    allowed_origins = set(cors_origins)

    def bearer(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("latin-1", "replace"), token.encode()
        )

    def signed_in(request: Request) -> bool:
        try:
            signer.unsign(request.cookies.get(COOKIE, ""), max_age=SIGN_IN_HOURS * 3600)
        except BadSignature:  # also an expired one
            return False
        return True

    def refusal(request: Request) -> JSONResponse | None:
        """None when the request may be served. A browser attaches the cookie to
        same-site requests from any page, so a cookie counts only from the Web UI's
        origins; and only JSON is taken, which a page of another origin cannot send
        without CORS asking first."""
        if bearer(request):
            pass
        elif not signed_in(request):
            log.warning("codec request refused: no valid token", extra={"path": request.url.path})
            return JSONResponse(
                {"detail": _REFUSED},
                status_code=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Bearer"},
            )
        elif request.headers.get("origin") not in allowed_origins:
            log.warning("codec request refused: cookie from another origin")
            return JSONResponse({"detail": _OTHER_ORIGIN}, status_code=status.HTTP_403_FORBIDDEN)
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            return JSONResponse(
                {"detail": _NOT_JSON}, status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
            )
        return None

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
            signer.sign(secrets.token_urlsafe(16)).decode(),
            max_age=SIGN_IN_HOURS * 3600,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return page

    # Temporal's codec protocol: only the URL's last part says which, so the server can
    # be mounted under any path (and an endpoint typed with a trailing slash works).
    @app.post("/{path:path}")
    async def encode_or_decode(request: Request, path: str) -> Response:
        transforms: dict[str, Transform] = {"decode": codec.decode, "encode": codec.encode}
        transform = transforms.get(path.rstrip("/").rpartition("/")[2])
        if transform is None:
            return JSONResponse({"detail": "Not Found"}, status_code=status.HTTP_404_NOT_FOUND)
        refused = refusal(request)
        if refused is not None:
            return refused
        try:
            body = await asyncio.wait_for(request.body(), _BODY_SECONDS)
        except TimeoutError:
            return JSONResponse({"detail": "the body came too slowly"}, status_code=408)
        except ClientDisconnect:
            return Response(status_code=400)  # no one left to read it
        code, content = await asyncio.to_thread(_transformed, body, transform)

        async def pieces() -> AsyncIterator[str]:
            for start in range(0, len(content), _ANSWER_CHUNK_BYTES):
                yield content[start : start + _ANSWER_CHUNK_BYTES]

        return StreamingResponse(pieces(), status_code=code, media_type="application/json")

    app.add_middleware(SecurityHeaders)
    app.add_middleware(_CodecBodyLimit, default=CODEC_BODY_BYTES, limits={})
    app.add_middleware(
        ConcurrencyLimit,
        limit=CODEC_CONCURRENT_REQUESTS,
        counts=lambda request: bearer(request) or signed_in(request),
    )
    # Outermost: preflights are answered before any token check (a browser sends them
    # bare), and every answer, a refusal for size included, carries the CORS headers
    # the Web UI needs to read it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        max_age=600,
    )
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
