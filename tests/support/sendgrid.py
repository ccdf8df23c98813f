"""SendGrid's side of the tests: the loopback mail API as a fixture, and the event
webhook's signer and events as SendGrid posts them."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import select

from models.tables import EmailLedgerEntry
from records.database import Database
from testkit.sendgrid import SendGridServer, serve

LEDGER_KEY = "stall:1:proposal"
ADMIN = "admin@acme.example"

Key = tuple[str, str, str]  # customer, ledger key, recipient


@pytest.fixture
def sendgrid_server() -> Iterator[SendGridServer]:
    with serve() as state:
        yield state


def key_of(body: dict[str, Any]) -> Key:
    """Whom a request to the loopback SendGrid was for (one recipient per message)."""
    args = body["custom_args"]
    [personalization] = body["personalizations"]
    [to] = personalization["to"]
    return args["customer_id"], args["ledger_key"], to["email"]


def ledger(database: Database) -> dict[Key, EmailLedgerEntry]:
    """The email ledger's rows by whom each is for."""
    with database.session() as session:
        rows = session.exec(select(EmailLedgerEntry)).all()
    return {(row.customer_id, row.ledger_key, row.recipient): row for row in rows}


@dataclass(frozen=True)
class Signer:
    """Plays SendGrid: a P-256 key pair, the public half as the dashboard shows it."""

    private_key: ec.EllipticCurvePrivateKey
    public_key: str

    @classmethod
    def generate(cls) -> Signer:
        private_key = ec.generate_private_key(ec.SECP256R1())
        der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private_key, base64.b64encode(der).decode())

    def sign(self, timestamp: str, body: bytes) -> str:
        signature = self.private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()


def sg_event(
    event: str,
    customer_id: str | None,
    *,
    email: str = ADMIN,
    at: datetime | None = None,
    ledger_key: str | None = LEDGER_KEY,
    **fields: Any,
) -> dict[str, Any]:
    """One event as SendGrid posts it: custom_args come back as top-level fields."""
    occurred = at or datetime.now(UTC)
    body: dict[str, Any] = {
        "email": email,
        "event": event,
        "timestamp": int(occurred.timestamp()),
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": f"{uuid.uuid4().hex}.filter0001",
        **fields,
    }
    if customer_id is not None:
        body["customer_id"] = customer_id
    if ledger_key is not None:
        body["ledger_key"] = ledger_key
    return body
