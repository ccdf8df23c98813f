"""The payload codec, its keys and the codec server: what is sealed opens only with its key,
old keys keep old payloads readable, and the server answers only its token and its origins."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from api.codec_server import (
    COOKIE,
    SIGN_IN_HOURS,
    CodecServerConfigError,
    ConcurrencyLimit,
    codec_app_from_settings,
)
from cli.main import main
from client.codec import ENCODING, KEY_ID_METADATA, EncryptionCodec, PayloadDecryptionError
from client.connection import data_converter
from models.limits import CODEC_BODY_BYTES, CODEC_PAYLOADS
from settings import Settings, parse_encryption_keys
from tests.support.api_harness import ApiHarness

UI = "http://localhost:8233"
EMAIL = "boss@acme.example"


def key() -> bytes:
    return secrets.token_bytes(32)


def key_entry(key_id: str, secret: bytes) -> str:
    return f"{key_id}:{base64.b64encode(secret).decode()}"


def json_payload(value: Any) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


async def test_a_payload_round_trips_and_holds_nothing_in_clear() -> None:
    codec = EncryptionCodec([("k1", key())])
    plain = json_payload({"email": EMAIL, "name": "Dana Boss"})

    [sealed] = await codec.encode([plain])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"acme" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain]


async def test_each_payload_gets_a_fresh_nonce() -> None:
    codec = EncryptionCodec([("k1", key())])
    first, second = await codec.encode([json_payload(EMAIL), json_payload(EMAIL)])

    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_after_a_rotation_new_payloads_use_the_new_key_and_old_ones_still_open() -> None:
    old_key = key()
    [old] = await EncryptionCodec([("2025", old_key)]).encode([json_payload(EMAIL)])
    rotated = EncryptionCodec([("2026", key()), ("2025", old_key)])

    [new] = await rotated.encode([json_payload(EMAIL)])

    assert new.metadata[KEY_ID_METADATA] == b"2026"
    assert await rotated.decode([old, new]) == [json_payload(EMAIL), json_payload(EMAIL)]


async def test_an_unknown_key_id_is_refused_naming_it() -> None:
    [sealed] = await EncryptionCodec([("gone", key())]).encode([json_payload(EMAIL)])

    with pytest.raises(PayloadDecryptionError, match="key 'gone'.*it has k2, k3"):
        await EncryptionCodec([("k2", key()), ("k3", key())]).decode([sealed])
    with pytest.raises(PayloadDecryptionError, match="it has none.*LIFTOFF_ENCRYPTION_KEYS"):
        await EncryptionCodec([]).decode([sealed])


@pytest.mark.parametrize("where", ["ciphertext", "nonce", "key id"])
async def test_a_tampered_payload_is_refused_never_returned(where: str) -> None:
    codec = EncryptionCodec([("k1", key()), ("k0", key())])
    [sealed] = await codec.encode([json_payload(EMAIL)])
    data = bytearray(sealed.data)
    if where == "ciphertext":
        data[-1] ^= 1
    elif where == "nonce":
        data[0] ^= 1
    else:
        sealed.metadata[KEY_ID_METADATA] = b"k0"
    sealed.data = bytes(data)

    with pytest.raises(PayloadDecryptionError, match="does not open"):
        await codec.decode([sealed])


async def test_the_same_id_with_another_key_is_refused() -> None:
    [sealed] = await EncryptionCodec([("k1", key())]).encode([json_payload(EMAIL)])

    with pytest.raises(PayloadDecryptionError, match="key 'k1' does not open"):
        await EncryptionCodec([("k1", key())]).decode([sealed])


async def test_unencrypted_payloads_pass_through_and_no_keys_encrypts_nothing() -> None:
    plain = json_payload({"email": EMAIL})

    assert await EncryptionCodec([("k1", key())]).decode([plain]) == [plain]
    assert await EncryptionCodec([]).encode([plain]) == [plain]


async def test_the_data_converter_encrypts_only_with_keys() -> None:
    secret = key()
    sealing = data_converter(Settings(encryption_keys=SecretStr(key_entry("k1", secret))))
    plain = data_converter(Settings(encryption_keys=None))

    [sealed] = await sealing.encode([{"email": EMAIL}])
    [unsealed] = await plain.encode([{"email": EMAIL}])

    assert sealed.metadata["encoding"] == ENCODING
    assert unsealed == (await pydantic_data_converter.encode([{"email": EMAIL}]))[0]
    assert await sealing.decode([sealed, unsealed]) == [{"email": EMAIL}, {"email": EMAIL}]
    with pytest.raises(PayloadDecryptionError, match="key 'k1'"):
        await plain.decode([sealed])


def test_keys_parse_newest_first() -> None:
    first, second = key(), key()
    assert parse_encryption_keys(f"{key_entry('b', first)}, {key_entry('a', second)}") == [
        ("b", first),
        ("a", second),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("no-colon", "entry 1 must be ID:BASE64KEY"),
        (f"bad id:{base64.b64encode(bytes(32)).decode()}", "entry 1 must be ID:BASE64KEY"),
        (f"short:{base64.b64encode(bytes(16)).decode()}", "key 'short' must be 32 bytes"),
        ("junk:not base64!", "key 'junk' must be 32 bytes"),
        (f"{key_entry('a', bytes(32))},{key_entry('a', bytes(32))}", "names key 'a' twice"),
    ],
)
def test_bad_keys_are_refused_at_start_up_without_echoing_them(entry: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(encryption_keys=SecretStr(entry))

    assert message in str(refused.value)
    if secret_part := entry.partition(":")[2]:
        assert secret_part not in str(refused.value)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    entry, token = key_entry("k1", key()), secrets.token_urlsafe(32)
    settings = Settings(encryption_keys=SecretStr(entry), codec_token=SecretStr(token))

    shown = repr(settings) + str(settings.model_dump())
    codec = repr(EncryptionCodec(settings.encryption_key_ring()))
    assert entry.partition(":")[2] not in shown + codec
    assert token not in shown
    assert codec == "EncryptionCodec(key_id='k1', key_ids=['k1'])"


def test_keygen_prints_a_key_the_settings_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codec", "keygen", "--id", "2026-q4"]) == 0
    entry = capsys.readouterr().out.strip()

    [(key_id, secret)] = Settings(encryption_keys=SecretStr(entry)).encryption_key_ring()
    assert key_id == "2026-q4"
    assert len(secret) == 32
    assert main(["codec", "keygen", "--id", "bad id"]) == 2


# The codec server, spoken to over HTTP as the Web UI and the `temporal` CLI do.

TOKEN = f"codec-{secrets.token_urlsafe(24)}"


@pytest.fixture
def keys() -> list[tuple[str, bytes]]:
    return [("k2", key()), ("k1", key())]


@pytest.fixture
async def server(keys: list[tuple[str, bytes]]) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        encryption_keys=SecretStr(",".join(key_entry(*pair) for pair in keys)),
        codec_token=SecretStr(TOKEN),
        codec_cors_origins=f"{UI}, https://temporal.example.com",
    )
    app = codec_app_from_settings(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec.test") as client:
        yield client


def as_json(*payloads: Payload) -> dict[str, Any]:
    """Temporal's payloads JSON, as the Web UI and the CLI send it."""
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def from_json(body: dict[str, Any]) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
            data=base64.b64decode(p.get("data", "")),
        )
        for p in body["payloads"]
    ]


BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_server_decodes_what_a_worker_encoded(
    server: httpx.AsyncClient, keys: list[tuple[str, bytes]]
) -> None:
    worker_codec = EncryptionCodec(keys[1:])  # sealed before the rotation to k2
    plain = [json_payload({"email": EMAIL}), json_payload("Dana Boss")]
    sealed = await worker_codec.encode(plain)

    response = await server.post(
        "/decode?preserveStorageRefs=true",
        json=as_json(*sealed),
        headers={**BEARER, "X-Namespace": "default", "Origin": UI},
    )

    assert response.status_code == 200, response.text
    assert from_json(response.json()) == plain
    assert response.headers["access-control-allow-origin"] == UI


async def test_the_server_encodes_with_the_newest_key(server: httpx.AsyncClient) -> None:
    response = await server.post("/encode", json=as_json(json_payload(EMAIL)), headers=BEARER)

    [sealed] = from_json(response.json())
    assert sealed.metadata[KEY_ID_METADATA] == b"k2"
    decoded = await server.post("/decode", json=response.json(), headers=BEARER)
    assert from_json(decoded.json()) == [json_payload(EMAIL)]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
)
async def test_without_the_token_the_server_refuses_in_one_sentence(
    server: httpx.AsyncClient,
    keys: list[tuple[str, bytes]],
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sealed = await EncryptionCodec(keys).encode([json_payload(EMAIL)])

    with caplog.at_level(logging.WARNING, logger="liftoff.codec"):
        for path in ("/decode", "/encode"):
            response = await server.post(path, json=as_json(*sealed), headers=headers)
            assert response.status_code == 401
            assert response.json()["detail"].startswith("refused: the codec server needs")
            assert EMAIL not in response.text
    assert "codec request refused" in caplog.text
    assert TOKEN not in caplog.text


async def test_a_cors_preflight_is_answered_for_the_configured_origins_only(
    server: httpx.AsyncClient,
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    allowed = await server.options("/decode", headers={**preflight, "Origin": UI})
    other = await server.options("/decode", headers={**preflight, "Origin": "https://evil.example"})
    answered = await server.post(
        "/decode", json={"payloads": []}, headers={**BEARER, "Origin": "https://evil.example"}
    )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    # The browser will not hand another origin's page the answer.
    assert "access-control-allow-origin" not in answered.headers


async def test_the_web_ui_signs_in_once_and_decodes_with_its_cookie(
    server: httpx.AsyncClient, keys: list[tuple[str, bytes]]
) -> None:
    sealed = await EncryptionCodec(keys).encode([json_payload(EMAIL)])
    page = await server.get("/")
    wrong = await server.post("/", data={"token": "not-the-token"})
    assert COOKIE not in server.cookies

    signed_in = await server.post("/", data={"token": TOKEN})
    response = await server.post("/decode", json=as_json(*sealed), headers={"Origin": UI})

    assert 'name="token"' in page.text
    assert "script" not in page.headers["content-security-policy"]
    assert wrong.status_code == 401
    assert signed_in.status_code == 200
    set_cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert TOKEN not in signed_in.headers["set-cookie"]
    assert response.status_code == 200, response.text
    assert from_json(response.json()) == [json_payload(EMAIL)]


async def test_a_payload_it_cannot_open_is_refused_naming_the_key(
    server: httpx.AsyncClient,
) -> None:
    sealed = await EncryptionCodec([("retired", key())]).encode([json_payload(EMAIL)])

    response = await server.post("/decode", json=as_json(*sealed), headers=BEARER)

    assert response.status_code == 400
    assert "key 'retired'" in response.json()["detail"]


async def test_a_body_that_is_not_payloads_or_too_large_is_refused(
    server: httpx.AsyncClient,
) -> None:
    json_bearer = {**BEARER, "Content-Type": "application/json", "Origin": UI}
    not_payloads = await server.post("/decode", content=b"[1, 2]", headers=json_bearer)
    too_large = await server.post(
        "/decode", content=b"x" * (CODEC_BODY_BYTES + 1), headers=json_bearer
    )
    not_base64 = await server.post(
        "/decode",
        json={"payloads": [{"metadata": {"encoding": "!!"}, "data": "%%%%"}]},
        headers=BEARER,
    )
    too_many = await server.post(
        "/decode", json={"payloads": [{}] * (CODEC_PAYLOADS + 1)}, headers=BEARER
    )
    nested = await server.post("/decode", content=b"[" * 100_000, headers=json_bearer)

    assert not_payloads.status_code == 400
    assert "payloads JSON" in not_payloads.json()["detail"]
    assert too_large.status_code == 413
    # The Web UI reads the refusal only if it carries the CORS headers.
    assert too_large.headers["access-control-allow-origin"] == UI
    # protobuf's JSON parser would have turned them into other bytes silently.
    assert not_base64.status_code == 400 and "base64" in not_base64.json()["detail"]
    assert too_many.status_code == 400
    assert f"at most {CODEC_PAYLOADS} payloads" in too_many.json()["detail"]
    assert nested.status_code == 400


async def test_as_many_payloads_as_allowed_are_served(server: httpx.AsyncClient) -> None:
    plain = [json_payload({"n": n}) for n in range(CODEC_PAYLOADS)]
    encoded = await server.post("/encode", json=as_json(*plain), headers=BEARER)
    decoded = await server.post("/decode", json=encoded.json(), headers=BEARER)

    assert encoded.status_code == 200 and decoded.status_code == 200
    assert from_json(decoded.json()) == plain


@pytest.mark.parametrize(
    # An endpoint typed with a trailing slash: http://host:8081/ + /decode.
    "path",
    ["/prefix/decode", "http://codec.test//decode", "/namespaces/default/decode"],
)
async def test_only_the_last_part_of_the_path_says_decode(
    server: httpx.AsyncClient, keys: list[tuple[str, bytes]], path: str
) -> None:
    """Temporal's codec protocol: servers may be mounted under any path."""
    sealed = await EncryptionCodec(keys).encode([json_payload(EMAIL)])

    response = await server.post(path, json=as_json(*sealed), headers=BEARER)
    elsewhere = await server.post("/prefix/other", json=as_json(*sealed), headers=BEARER)

    assert response.status_code == 200, response.text
    assert from_json(response.json()) == [json_payload(EMAIL)]
    assert elsewhere.status_code == 404


async def test_the_cookie_counts_only_from_the_web_ui_and_only_for_json(
    server: httpx.AsyncClient, keys: list[tuple[str, bytes]]
) -> None:
    """A browser sends the SameSite cookie from any page of the same site, and a page may
    post text/plain to another origin without asking CORS first."""
    sealed = await EncryptionCodec(keys).encode([json_payload(EMAIL)])
    body = json.dumps(as_json(*sealed))
    await server.post("/", data={"token": TOKEN})
    plain_text = {"Content-Type": "text/plain"}

    other_page = await server.post(
        "/decode", content=body, headers={"Origin": "http://localhost:3000", **plain_text}
    )
    no_origin = await server.post(
        "/decode", content=body, headers={"Content-Type": "application/json"}
    )
    not_json = await server.post("/decode", content=body, headers={"Origin": UI, **plain_text})
    bearer_not_json = await server.post("/decode", content=body, headers={**BEARER, **plain_text})
    from_the_ui = await server.post(
        "/decode", content=body, headers={"Origin": UI, "Content-Type": "application/json"}
    )

    assert other_page.status_code == 403 and no_origin.status_code == 403
    assert EMAIL not in other_page.text
    assert not_json.status_code == 415 and bearer_not_json.status_code == 415
    assert from_the_ui.status_code == 200, from_the_ui.text


async def test_a_sign_in_expires_on_the_server_and_each_is_its_own(
    server: httpx.AsyncClient, keys: list[tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = await EncryptionCodec(keys).encode([json_payload(EMAIL)])
    first = (await server.post("/", data={"token": TOKEN})).cookies[COOKIE]
    second = (await server.post("/", data={"token": TOKEN})).cookies[COOKIE]
    later = time.time() + (SIGN_IN_HOURS + 1) * 3600
    monkeypatch.setattr(time, "time", lambda: later)

    response = await server.post("/decode", json=as_json(*sealed), headers={"Origin": UI})

    assert first != second
    assert response.status_code == 401


async def test_a_long_key_id_is_cut_short_in_the_answer_and_the_log(
    server: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    sealed = Payload(
        metadata={"encoding": b"binary/encrypted", KEY_ID_METADATA: b"k" * 100_000}, data=b"x" * 40
    )

    with caplog.at_level(logging.ERROR, logger="liftoff.codec"):
        response = await server.post("/decode", json=as_json(sealed), headers=BEARER)

    assert response.status_code == 400
    assert len(response.text) < 500
    assert all(len(record.getMessage()) < 500 for record in caplog.records)


async def test_codec_requests_beyond_the_limit_wait_and_are_then_turned_away() -> None:
    """Each request with the token keeps its slot until its answer is sent; requests
    without it take none (four clients without the token had locked the server)."""
    release = asyncio.Event()
    entered = 0

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal entered
        entered += 1
        if Request(scope).headers.get("authorization"):
            await release.wait()
        await JSONResponse({})(scope, receive, send)

    limited = ConcurrencyLimit(
        slow_app, limit=2, counts=lambda request: "authorization" in request.headers
    )
    transport = httpx.ASGITransport(app=limited)
    token = {"Authorization": "Bearer x"}
    async with httpx.AsyncClient(transport=transport, base_url="http://codec.test") as client:
        held = [asyncio.create_task(client.post("/decode", headers=token)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with mock.patch("api.codec_server._BUSY_SECONDS", 0.1):
            turned_away = await client.post("/decode", headers=token)
            without_token = await client.post("/decode")
        sign_in = asyncio.create_task(client.post("/", headers=token))
        await asyncio.sleep(0.05)
        release.set()
        answers = await asyncio.gather(*held, sign_in)

    assert turned_away.status_code == 503
    assert without_token.status_code == 200  # served (refused, in the real app) at once
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert entered == 4  # the two held, the one without a token, the sign-in page


async def test_a_large_answer_is_sent_in_pieces(keys: list[tuple[str, bytes]]) -> None:
    """So the slot is held until the client has read it, not only until it is queued."""
    app = codec_app_from_settings(
        Settings(
            encryption_keys=SecretStr(",".join(key_entry(*pair) for pair in keys)),
            codec_token=SecretStr(TOKEN),
        )
    )
    body = json.dumps(as_json(*[json_payload("x" * 100_000) for _ in range(3)])).encode()
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return requests.pop() if requests else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"authorization", f"Bearer {TOKEN}".encode()),
        (b"content-type", b"application/json"),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/encode",
        "raw_path": b"/encode",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "http_version": "1.1",
        "server": ("codec.test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    await app(scope, receive, send)

    assert sent[0]["status"] == 200
    pieces = [message["body"] for message in sent if message["type"] == "http.response.body"]
    assert len([piece for piece in pieces if piece]) > 1
    assert len(from_json(json.loads(b"".join(pieces)))) == 3


async def test_the_sign_in_form_takes_a_small_body_only(server: httpx.AsyncClient) -> None:
    large = await server.post("/", data={"token": "x" * 10_000})
    assert large.status_code == 413


def test_the_server_needs_keys_and_a_token() -> None:
    with pytest.raises(CodecServerConfigError, match="LIFTOFF_CODEC_TOKEN"):
        codec_app_from_settings(
            Settings(encryption_keys=SecretStr(key_entry("k1", key())), codec_token=None)
        )
    with pytest.raises(CodecServerConfigError, match="LIFTOFF_ENCRYPTION_KEYS"):
        codec_app_from_settings(Settings(encryption_keys=None, codec_token=SecretStr(TOKEN)))
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(codec_token=SecretStr("short"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # An HTTP header carries no such token: only the sign-in form would take it.
        ({"codec_token": SecretStr("tökén-" + "x" * 30)}, "printable ASCII"),
        ({"codec_token": SecretStr("a token with spaces in it, long enough")}, "printable ASCII"),
        # With credentials, a wildcard would let every origin read decoded customer data.
        ({"codec_cors_origins": "*"}, "'\\*' is not an origin"),
        ({"codec_cors_origins": f"{UI}/"}, "is not an origin"),
        ({"codec_cors_origins": f"{UI}, https://ui.example/path"}, "https://ui.example/path"),
    ],
)
def test_a_codec_token_or_origin_that_could_never_work_is_refused_at_start(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{"codec_token": SecretStr(TOKEN), **overrides})
    assert Settings(codec_token=SecretStr(TOKEN), codec_cors_origins=f"{UI}, https://[::1]:8233")


async def test_an_origin_written_with_capitals_or_its_default_port_matches_the_browsers(
    keys: list[tuple[str, bytes]],
) -> None:
    # Browsers send the scheme and host in lower case and leave a default port out.
    settings = Settings(
        encryption_keys=SecretStr(",".join(key_entry(*pair) for pair in keys)),
        codec_token=SecretStr(TOKEN),
        codec_cors_origins="HTTP://Temporal.Example.com:80, https://UI.example:443, http://[::1]:8233",
    )
    assert settings.codec_origins() == [
        "http://temporal.example.com",
        "https://ui.example",
        "http://[::1]:8233",
    ]
    preflight = {"Access-Control-Request-Method": "POST", "Origin": "https://ui.example"}
    transport = httpx.ASGITransport(app=codec_app_from_settings(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://codec.test") as client:
        response = await client.options("/decode", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://ui.example"


async def test_the_api_answers_a_missing_key_as_its_own_fault_in_one_sentence(
    api: ApiHarness,
) -> None:
    async def needs_a_key() -> None:
        raise PayloadDecryptionError("no encryption key 'k2026' here to open this payload")

    api.app.add_api_route("/needs-a-key", needs_a_key)
    async with api.client() as http:
        response = await http.get("/needs-a-key")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "this server cannot read the customer's data: "
        "no encryption key 'k2026' here to open this payload"
    }
