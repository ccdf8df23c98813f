"""Connecting to Temporal from any entry point, with Liftoff's data converter."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from settings import Settings


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS when asked for, or by default when an API key or certificate is given."""
    has_files = any(
        path is not None
        for path in (
            settings.temporal_tls_client_cert_path,
            settings.temporal_tls_client_key_path,
            settings.temporal_tls_server_ca_cert_path,
        )
    )
    enabled = settings.temporal_tls
    if enabled is None:
        enabled = has_files or settings.temporal_api_key is not None
    if not enabled:
        return False
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_server_ca_cert_path),
        client_cert=_read(settings.temporal_tls_client_cert_path),
        client_private_key=_read(settings.temporal_tls_client_key_path),
        domain=settings.temporal_tls_server_name,
    )


async def connect_client(settings: Settings) -> Client:
    api_key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key.get_secret_value() if api_key is not None else None,
        tls=tls_config(settings),
        data_converter=pydantic_data_converter,
    )
