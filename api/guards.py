"""What every request and response of the HTTP app goes through, whatever its route.

`SameOrigin` refuses a state change a browser sent from another origin: the
dashboard's cookie is SameSite=Lax, and a page on another port of the same host
is the same *site*, so the browser sends the cookie with its forms. Browsers name
the sending page in `Origin` (or `Referer`); a request that names another
host:port is refused. Requests authenticated by an Authorization header (API
tokens, Segment write keys) and server-to-server calls that name no origin (the
SendGrid webhook, curl) carry no ambient credential to abuse and pass, and so do
paths exempted by design (`/u/`: a mail client's one-click unsubscribe, RFC 8058,
sends no origin and is authorised by the signed token in its path alone).
`BodyLimit` refuses a body larger than its path allows before it is read: by its
declared Content-Length at once, and, for a chunked body, as soon as the bytes
received pass the limit (the route's read raises the 413). `SecurityHeaders` adds
the headers a browser needs to keep API answers and the API docs out of frames and
MIME sniffing; the dashboard's pages set their own stricter policy. `PlainUrl`
refuses a path or query holding a control character (`%00` and the like): no route
takes one, and PostgreSQL answers a NUL in a filter or id with an error, not "none".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Whatever a route does not ask more for: JSON commands, forms, the webhook.
DEFAULT_BODY_BYTES = 1024 * 1024

_API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# C0 controls but the tab, and DEL; a UTF-8 character's bytes are never among them.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_URL = "the URL holds a control character (such as %00), which no path or query here takes"


def _too_large(limit: int) -> str:
    return f"the request body may be at most {limit // 1024} KB ({limit} bytes)"


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limits: Mapping[str, int], default: int) -> None:
        self._app = app
        # Longest prefix first, so /api/usage/csv wins over /api/.
        self._limits = sorted(limits.items(), key=lambda item: -len(item[0]))
        self._default = default

    def limit_for(self, path: str) -> int:
        return next(
            (size for prefix, size in self._limits if path.startswith(prefix)), self._default
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = JSONResponse({"detail": _too_large(limit)}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, _too_large(limit))
            return message

        await self._app(scope, receive_within_limit, send)


class PlainUrl:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"].encode("utf-8", "surrogatepass")
            query = unquote_to_bytes(scope["query_string"])
            if _CONTROL_BYTES.search(path) or _CONTROL_BYTES.search(query):
                response = JSONResponse({"detail": _CONTROL_URL}, status_code=400)
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if headers.get("content-type", "").startswith("application/json"):
                    # An API answer is data, never a page to run or to cache.
                    headers.setdefault("Content-Security-Policy", _API_POLICY)
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self._app(scope, receive, send_with_headers)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SameOrigin:
    def __init__(self, app: ASGIApp, *, exempt: tuple[str, ...] = ()) -> None:
        self._app = app
        # Path prefixes whose requests carry their authority in the URL (a signed token)
        # and no ambient credential, so another page's post gains nothing.
        self._exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in _SAFE_METHODS
            and not scope["path"].startswith(self._exempt)
        ):
            headers = dict(scope["headers"])
            sender = headers.get(b"origin") or headers.get(b"referer")
            # A proxy may rewrite Host and keep the browser's in X-Forwarded-Host; a page
            # cannot make the browser send that header, so either may vouch.
            hosts = {
                headers[name].decode("latin-1").lower()
                for name in (b"host", b"x-forwarded-host")
                if name in headers
            }
            if (
                b"authorization" not in headers
                and sender is not None
                and _netloc(sender.decode("latin-1")) not in hosts
            ):
                response = JSONResponse(
                    {"detail": "refused: the request came from a page of another origin"},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _netloc(url: str) -> str:
    # "null" (a sandboxed or file: page) has no host and never matches.
    return urlsplit(url).netloc.lower() if url != "null" else ""
