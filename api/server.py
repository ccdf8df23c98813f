"""Serving the HTTP app with uvicorn: `liftoff serve`, and `make run` in-process."""

from __future__ import annotations

import asyncio
import gc
import logging

import uvicorn
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime

from api.app import create_app
from api.services import Services
from client.connection import connect_client
from client.onboarding import OnboardingClient
from emails.opt_out_links import OptOutLinks
from emails.survey_links import SurveyLinks
from observability.tracing import configure_tracing, trace_database, trace_http
from records.database import Database
from records.playbooks import load_playbook
from settings import Settings

log = logging.getLogger("liftoff.api")


def build_services(settings: Settings, client: Client) -> Services:
    """Raises PlaybookError when LIFTOFF_PLAYBOOK does not validate: better than serving."""
    return Services(
        onboarding=OnboardingClient(client, settings.task_queue),
        database=Database(settings.database_url),
        playbook=load_playbook(settings.playbook),
        playbook_source=str(settings.playbook),
        customer_trait=settings.intake_customer_trait,
        webhook_public_key=settings.sendgrid_webhook_public_key,
        metrics=_meter(client),
        survey_links=_survey_links(settings),
        opt_out_links=_opt_out_links(settings),
    )


def _survey_links(settings: Settings) -> SurveyLinks | None:
    if settings.survey_secret is None:
        log.warning("LIFTOFF_SURVEY_SECRET is not set: survey links will not be accepted")
        return None
    return SurveyLinks(settings.survey_secret.get_secret_value(), settings.public_url)


def _opt_out_links(settings: Settings) -> OptOutLinks | None:
    # Same secret as survey links, another salt (emails/opt_out_links.py).
    if settings.survey_secret is None:
        log.warning("LIFTOFF_SURVEY_SECRET is not set: unsubscribe links will not be accepted")
        return None
    return OptOutLinks(settings.survey_secret.get_secret_value(), settings.public_url)


def _meter(client: Client) -> MetricMeter:
    """The meter of the runtime the client connected with (telemetry_runtime)."""
    runtime = client.service_client.config.runtime or Runtime.default()
    return runtime.metric_meter


async def serve_api(
    settings: Settings,
    *,
    client: Client | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM when run alone)."""
    tracing = configure_tracing("liftoff-api")
    if client is None:
        client = await connect_client(settings, serve_metrics=True)
    services = build_services(settings, client)
    trace_database(services.database.engine, tracing)
    # The API reads and writes the same tables as the worker; it migrates as a worker does.
    await asyncio.to_thread(services.database.migrate)
    app = create_app(services)
    trace_http(app, tracing)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # Logging is configured by the entry point, not by uvicorn.
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    # What the imports built (FastAPI, SQLAlchemy, statsmodels' scipy and pandas) lives
    # as long as the process: kept out of the collector's full passes, which otherwise
    # walk it all and add ~150 ms to a request now and then (the cohort analytics).
    gc.freeze()
    log.info("serving the API and dashboard", extra={"url": base_url(settings)})
    if stop is None:
        await server.serve()
        return
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


def base_url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}"
