"""Configuration of Liftoff's entry points, read from the environment.

Only entry points (worker, starter, scripts) build a `Settings`; everything
else receives what it needs as arguments. Temporal's connection variables use
Temporal's own names, so an environment set up for the `temporal` CLI works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Templates and playbooks ship with the code, so their defaults do not depend
# on the directory a command is run from.
REPO = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

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
    database_url: str = Field(
        default="sqlite:///.liftoff/liftoff.db", validation_alias="DATABASE_URL"
    )
    # Only the outbox exists yet; SendGrid and SMTP join this Literal later.
    mail_backend: Literal["outbox"] = Field(
        default="outbox", validation_alias="LIFTOFF_MAIL_BACKEND"
    )
    outbox_dir: Path = Field(default=Path(".liftoff/outbox"), validation_alias="LIFTOFF_OUTBOX_DIR")
    mail_from: str = Field(
        default="Liftoff <liftoff@localhost>", validation_alias="LIFTOFF_MAIL_FROM"
    )
    playbook: Path = Field(
        default=REPO / "playbooks" / "default.toml", validation_alias="LIFTOFF_PLAYBOOK"
    )
    templates_dir: Path = Field(
        default=REPO / "templates" / "email", validation_alias="LIFTOFF_TEMPLATES_DIR"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="LIFTOFF_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias="LIFTOFF_LOG_FORMAT"
    )
    max_concurrent_activities: int = Field(
        default=20, ge=1, validation_alias="LIFTOFF_MAX_CONCURRENT_ACTIVITIES"
    )
    max_cached_workflows: int = Field(
        default=1000, ge=0, validation_alias="LIFTOFF_MAX_CACHED_WORKFLOWS"
    )
