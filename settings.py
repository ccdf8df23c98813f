"""Configuration of Liftoff's entry points, read from the environment.

Only entry points (worker, starter, scripts) build a `Settings`; everything
else receives what it needs as arguments. Temporal's connection variables use
Temporal's own names, so an environment set up for the `temporal` CLI works.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.common import WorkerDeploymentVersion

# An address to listen on: a host name, IPv4 or [IPv6] address, then a port.
HOST_PORT = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):[0-9]{1,5}$"

# Templates and playbooks ship with the code, so their defaults do not depend
# on the directory a command is run from.
REPO = Path(__file__).resolve().parent
# The embedded default's state: the SQLite database and the outbox.
STATE_DIR = REPO / ".liftoff"

# Payload encryption (client/codec.py): AES-256-GCM keys, named by a short id that
# travels in each payload's metadata.
ENCRYPTION_KEY_BYTES = 32
ENCRYPTION_KEYS_MAX = 20
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The codec server's token: long enough that guessing it is hopeless.
CODEC_TOKEN_MIN_CHARS = 24
_CODEC_TOKEN = re.compile(r"[!-~]+")
# A browser's Origin header: the Web UI pages allowed to call the codec server.
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _browser_origin(origin: str) -> str:
    """An origin checked by _ORIGIN, serialized as browsers send it (RFC 6454, 6.1)."""
    scheme, _, authority = origin.partition("://")
    scheme = scheme.lower()
    authority = authority.lower()
    default_port = _DEFAULT_PORTS[scheme]
    if authority.endswith(default_port):
        authority = authority[: -len(default_port)]
    return f"{scheme}://{authority}"


def _check_database_url(url: str) -> None:
    """Refuse at start-up a URL no engine takes, never quoting it: it may hold a password."""
    from sqlalchemy.engine import make_url  # here: the CLI's start-up stays light

    try:
        backend = make_url(url).get_backend_name()
    except Exception:
        raise ValueError(
            "DATABASE_URL is not a database URL: postgresql+psycopg://user:password@host:5432/"
            "liftoff, or sqlite:///path/to/liftoff.db"
        ) from None
    if backend not in ("postgresql", "postgres", "sqlite"):
        raise ValueError(f"DATABASE_URL: {backend[:40]!r} is not supported: use postgresql, sqlite")


def parse_encryption_keys(text: str) -> list[tuple[str, bytes]]:
    """`id:base64key,...` as (id, key) pairs, newest first; messages never show a key."""
    keys: list[tuple[str, bytes]] = []
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if len(entries) > ENCRYPTION_KEYS_MAX:
        raise ValueError(f"LIFTOFF_ENCRYPTION_KEYS holds at most {ENCRYPTION_KEYS_MAX} keys")
    for number, entry in enumerate(entries, start=1):
        key_id, colon, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not colon or not _KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"LIFTOFF_ENCRYPTION_KEYS entry {number} must be ID:BASE64KEY, the id 1-64 "
                "letters, digits, '.', '_' or '-' (`liftoff codec keygen` prints one)"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != ENCRYPTION_KEY_BYTES:
            raise ValueError(
                f"LIFTOFF_ENCRYPTION_KEYS key {key_id!r} must be {ENCRYPTION_KEY_BYTES} bytes "
                "in base64 (`liftoff codec keygen` prints one)"
            )
        if any(known == key_id for known, _ in keys):
            raise ValueError(f"LIFTOFF_ENCRYPTION_KEYS names key {key_id!r} twice")
        keys.append((key_id, key))
    return keys


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error must never echo a secret back.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    temporal_address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    # None: on when an API key or client certificate is given, as Temporal's tools do.
    temporal_tls: bool | None = Field(default=None, validation_alias="TEMPORAL_TLS")
    temporal_tls_client_cert_path: Path | None = Field(
        default=None, validation_alias="TEMPORAL_TLS_CLIENT_CERT_PATH"
    )
    temporal_tls_client_key_path: Path | None = Field(
        default=None, validation_alias="TEMPORAL_TLS_CLIENT_KEY_PATH"
    )
    temporal_tls_server_ca_cert_path: Path | None = Field(
        default=None, validation_alias="TEMPORAL_TLS_SERVER_CA_CERT_PATH"
    )
    temporal_tls_server_name: str | None = Field(
        default=None, validation_alias="TEMPORAL_TLS_SERVER_NAME"
    )

    task_queue: str = Field(default="liftoff", validation_alias="LIFTOFF_TASK_QUEUE")
    # In the checkout, not the working directory: a command run from elsewhere must
    # not start a new, empty database that no worker reads.
    database_url: str = Field(
        default=f"sqlite:///{STATE_DIR / 'liftoff.db'}", validation_alias="DATABASE_URL"
    )
    mail_backend: Literal["outbox", "sendgrid", "smtp"] = Field(
        default="outbox", validation_alias="LIFTOFF_MAIL_BACKEND"
    )
    outbox_dir: Path = Field(default=STATE_DIR / "outbox", validation_alias="LIFTOFF_OUTBOX_DIR")
    mail_from: str = Field(
        default="Liftoff <liftoff@localhost>", validation_alias="LIFTOFF_MAIL_FROM"
    )
    # Per provider request; well inside the send activity's start-to-close timeout.
    mail_timeout: float = Field(default=10, gt=0, le=30, validation_alias="LIFTOFF_MAIL_TIMEOUT")
    # SendGrid's own variable name, as in its documentation and samples.
    sendgrid_api_key: SecretStr | None = Field(default=None, validation_alias="SENDGRID_API_KEY")
    sendgrid_host: str = Field(
        default="https://api.sendgrid.com", validation_alias="LIFTOFF_SENDGRID_HOST"
    )
    sendgrid_sandbox_mode: bool = Field(default=False, validation_alias="LIFTOFF_SENDGRID_SANDBOX")
    # Scheduled sends (activities/mail.py): each message goes out this many minutes
    # later, so a retry after a crash can cancel what the crashed attempt handed over.
    # At least 15: SendGrid cancels only until 10 minutes before the send time, and a
    # retry comes up to 3 minutes after a crash (MAIL_TIMEOUT plus MAIL_RETRY's longest
    # interval, workflows/activity_options.py). At most SendGrid's 72 hours.
    sendgrid_send_delay_minutes: int | None = Field(
        default=None, ge=15, le=72 * 60, validation_alias="LIFTOFF_SENDGRID_SEND_DELAY_MINUTES"
    )
    # May hold {recipient} and {customer_id}; must be https (RFC 8058 one-click).
    unsubscribe_url: str | None = Field(default=None, validation_alias="LIFTOFF_UNSUBSCRIBE_URL")
    unsubscribe_mailto: str | None = Field(
        default=None, validation_alias="LIFTOFF_UNSUBSCRIBE_MAILTO"
    )
    smtp_host: str | None = Field(default=None, validation_alias="LIFTOFF_SMTP_HOST")
    smtp_port: int = Field(default=587, ge=1, le=65535, validation_alias="LIFTOFF_SMTP_PORT")
    smtp_username: str | None = Field(default=None, validation_alias="LIFTOFF_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="LIFTOFF_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=True, validation_alias="LIFTOFF_SMTP_STARTTLS")
    # Implicit TLS (usually port 465); when on, STARTTLS is not attempted.
    smtp_tls: bool = Field(default=False, validation_alias="LIFTOFF_SMTP_TLS")
    playbook: Path = Field(
        default=REPO / "playbooks" / "default.toml", validation_alias="LIFTOFF_PLAYBOOK"
    )
    templates_dir: Path = Field(
        default=REPO / "templates" / "email", validation_alias="LIFTOFF_TEMPLATES_DIR"
    )

    # The HTTP API, intake and dashboard (`liftoff serve`).
    api_host: str = Field(default="127.0.0.1", validation_alias="LIFTOFF_API_HOST")
    api_port: int = Field(default=8000, ge=1, le=65535, validation_alias="LIFTOFF_API_PORT")
    # host:port where this process serves Prometheus metrics at /metrics (the Temporal
    # SDK's and Liftoff's own, observability/metrics.py); unset serves none.
    metrics_address: str | None = Field(
        default=None, pattern=HOST_PORT, validation_alias="LIFTOFF_METRICS_ADDRESS"
    )
    # host:port of the worker's health probe (/healthz, /readyz); unset serves none.
    health_address: str | None = Field(
        default=None, pattern=HOST_PORT, validation_alias="LIFTOFF_HEALTH_ADDRESS"
    )
    # Segment calls name their customer by group id, or else by this trait of the user.
    intake_customer_trait: str = Field(
        default="company_id", validation_alias="LIFTOFF_INTAKE_CUSTOMER_TRAIT"
    )
    # SendGrid's event webhook verification key (base64 or PEM); unset: events unverified.
    sendgrid_webhook_public_key: str | None = Field(
        default=None, validation_alias="SENDGRID_WEBHOOK_PUBLIC_KEY"
    )

    # Customer data in Temporal payloads is encrypted when keys are set (client/codec.py):
    # `id:base64key,...`, the first encrypts new payloads, every one decrypts.
    encryption_keys: SecretStr | None = Field(
        default=None, validation_alias="LIFTOFF_ENCRYPTION_KEYS"
    )
    # Payloads of 256 bytes or more are compressed (zlib) before any encryption. Every
    # process decodes compressed payloads whatever this says: turn it on once every
    # worker, API and CLI runs a version that has it (docs/operations.md).
    payload_compression: bool = Field(default=False, validation_alias="LIFTOFF_PAYLOAD_COMPRESSION")
    # A customer's playbook is kept once in the database (`stored_payloads`) and its
    # start input carries a reference instead of the whole playbook (client/
    # payload_storage.py). Every process reads references whatever this says: turn it
    # on once every worker, API and CLI runs a version that has it.
    playbooks_by_reference: bool = Field(
        default=False, validation_alias="LIFTOFF_PLAYBOOKS_BY_REFERENCE"
    )
    # `liftoff codec-server`: the Web UI's and `temporal` CLI's remote codec endpoint.
    codec_host: str = Field(default="127.0.0.1", validation_alias="LIFTOFF_CODEC_HOST")
    codec_port: int = Field(default=8081, ge=1, le=65535, validation_alias="LIFTOFF_CODEC_PORT")
    codec_token: SecretStr | None = Field(
        default=None, max_length=512, validation_alias="LIFTOFF_CODEC_TOKEN"
    )
    # Comma-separated origins of the Web UI pages allowed to call it (the dev server's UI).
    codec_cors_origins: str = Field(
        default="http://localhost:8233",
        max_length=2000,
        validation_alias="LIFTOFF_CODEC_CORS_ORIGINS",
    )

    # Signs the one-click score links of NPS survey emails (emails/survey_links.py): the
    # worker signs, `liftoff serve` verifies, so both need the same value. Unset: survey
    # emails fail visibly and the answer pages say surveys are not set up.
    survey_secret: SecretStr | None = Field(
        default=None, min_length=32, max_length=512, validation_alias="LIFTOFF_SURVEY_SECRET"
    )
    # Where customers' people reach `liftoff serve`: the links in survey emails start so.
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        max_length=200,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        validation_alias="LIFTOFF_PUBLIC_URL",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="LIFTOFF_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias="LIFTOFF_LOG_FORMAT"
    )
    # Bounded above too: past these a value is a typo, and each sizes a thread pool or a
    # cache the worker would try to fill.
    max_concurrent_activities: int = Field(
        default=20, ge=1, le=1000, validation_alias="LIFTOFF_MAX_CONCURRENT_ACTIVITIES"
    )
    max_cached_workflows: int = Field(
        default=1000, ge=0, le=1_000_000, validation_alias="LIFTOFF_MAX_CACHED_WORKFLOWS"
    )
    # Workflow tasks the worker takes at once (the SDK's default is 100). They share one
    # interpreter (the GIL), so more at once only stretches each one, towards the 10 s
    # workflow task timeout; the rest wait on the server (docs/operations.md).
    max_concurrent_workflow_tasks: int = Field(
        default=10, ge=2, le=1000, validation_alias="LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASKS"
    )
    # Long polls the worker keeps open for workflow tasks (the SDK's default, 5): a poll
    # only starts while a task slot is free (docs/operations.md, "Sizing a worker").
    max_concurrent_workflow_task_polls: int = Field(
        default=5, ge=2, le=100, validation_alias="LIFTOFF_MAX_CONCURRENT_WORKFLOW_TASK_POLLS"
    )
    # "shared" keeps one import of the workflow code for every customer (memory);
    # "strict" re-imports it per customer and fails a workflow task that reads the
    # clock, randomness or I/O outside Temporal's APIs (the test suite runs it).
    workflow_sandbox: Literal["shared", "strict"] = Field(
        default="shared", validation_alias="LIFTOFF_WORKFLOW_SANDBOX"
    )
    # Temporal Worker Versioning (docs/operations.md, "Rolling out a workflow change"):
    # both set, the worker serves only that version of the deployment, once it is
    # made current; Temporal's canonical version string joins them with a dot.
    worker_deployment: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,100}$",
        validation_alias="LIFTOFF_WORKER_DEPLOYMENT",
    )
    worker_build_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        validation_alias="LIFTOFF_WORKER_BUILD_ID",
    )

    @model_validator(mode="after")
    def _mail_backend_is_complete(self) -> Self:
        """A worker that cannot send mail should say so at start-up, not at the first email."""
        if self.mail_backend == "sendgrid" and self.sendgrid_api_key is None:
            raise ValueError("LIFTOFF_MAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
        if self.mail_backend == "smtp" and not self.smtp_host:
            raise ValueError("LIFTOFF_MAIL_BACKEND=smtp needs LIFTOFF_SMTP_HOST")
        if self.sendgrid_send_delay_minutes is not None and self.mail_backend != "sendgrid":
            raise ValueError(
                "LIFTOFF_SENDGRID_SEND_DELAY_MINUTES schedules SendGrid sends; "
                f"it has no effect with LIFTOFF_MAIL_BACKEND={self.mail_backend}: unset it"
            )
        if (self.worker_deployment is None) != (self.worker_build_id is None):
            raise ValueError(
                "LIFTOFF_WORKER_DEPLOYMENT and LIFTOFF_WORKER_BUILD_ID go together "
                "(Temporal Worker Versioning): set both or neither"
            )
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("LIFTOFF_SMTP_USERNAME and LIFTOFF_SMTP_PASSWORD go together")
        if self.unsubscribe_url is not None and not self.unsubscribe_url.startswith("https://"):
            raise ValueError("LIFTOFF_UNSUBSCRIBE_URL must be https:// (one-click unsubscribe)")
        if self.encryption_keys is not None:
            parse_encryption_keys(self.encryption_keys.get_secret_value())
        _check_database_url(self.database_url)
        token = self.codec_token
        if token is not None and len(token.get_secret_value()) < CODEC_TOKEN_MIN_CHARS:
            raise ValueError(
                f"LIFTOFF_CODEC_TOKEN must be at least {CODEC_TOKEN_MIN_CHARS} characters"
            )
        if token is not None and not _CODEC_TOKEN.fullmatch(token.get_secret_value()):
            # An HTTP header carries Latin-1 at most: such a token could never be sent.
            raise ValueError(
                "LIFTOFF_CODEC_TOKEN may hold only printable ASCII without spaces "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        for origin in self.codec_cors_origins.split(","):
            origin = origin.strip()
            if origin and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"LIFTOFF_CODEC_CORS_ORIGINS: {origin[:100]!r} is not an origin: "
                    "scheme://host[:port], with no path, trailing slash or wildcard "
                    "(the codec server answers them with credentials)"
                )
        return self

    def worker_version(self) -> WorkerDeploymentVersion | None:
        """The Worker Deployment Version this worker serves, when versioning is on."""
        if self.worker_deployment is None or self.worker_build_id is None:
            return None
        return WorkerDeploymentVersion(self.worker_deployment, self.worker_build_id)

    def encryption_key_ring(self) -> list[tuple[str, bytes]]:
        """The payload keys, newest first; empty when encryption is off."""
        if self.encryption_keys is None:
            return []
        return parse_encryption_keys(self.encryption_keys.get_secret_value())

    def codec_origins(self) -> list[str]:
        """The origins as a browser sends them: scheme and host in lower case, and no
        port where it is the scheme's default (`http://Localhost:80` is `http://localhost`)."""
        written = (origin.strip() for origin in self.codec_cors_origins.split(","))
        return [_browser_origin(origin) for origin in written if origin]
