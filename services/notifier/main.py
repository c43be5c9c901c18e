"""The notifier service's composition root."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_sql_service, open_idempotency
from services.common.auth import AuthSettings
from services.notifier.api import deliveries, subscriptions
from services.notifier.metrics import AttemptCounter, observe_notifier
from services.notifier.settings import DEVELOPMENT_ENCRYPTION_KEY, NotifierSettings
from services.notifier.store.migrate import upgrade
from services.notifier.subscriptions import Subscriptions
from services.notifier.worker import Worker

logger = logging.getLogger("services.notifier")
# How long shutdown waits for the delivery in hand before giving up on it.
_STOP_TIMEOUT_SECONDS = 15.0


def create_app(
    settings: NotifierSettings | None = None, auth: AuthSettings | None = None
) -> FastAPI:
    """Build the notifier: its API, and (unless told not to) the worker that follows and sends."""
    settings = settings or NotifierSettings()
    auth = auth or AuthSettings()

    async def startup(app: FastAPI, engine: AsyncEngine) -> None:
        if settings.migrate_on_start:
            await upgrade(engine)
        await open_idempotency(app, engine, create=False)
        app.state.subscriptions = Subscriptions(engine, settings)
        app.state.worker = None
        if settings.worker:
            attempted = AttemptCounter(app.state.metrics)
            worker = Worker(engine, settings, auth, on_attempt=attempted)
            app.state.worker = worker
            app.state.worker_task = asyncio.create_task(worker.run(), name="notifier-worker")
        observe_notifier(app.state.metrics, engine, app.state.worker)

    async def shutdown(app: FastAPI) -> None:
        worker: Worker | None = getattr(app.state, "worker", None)
        if worker is None:
            return
        worker.stop()
        try:
            await asyncio.wait_for(app.state.worker_task, _STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("the notifier's worker did not stop in time; its lease will expire")

    return create_sql_service(
        "notifier",
        "Community services notifier",
        "Signed webhooks for the ledger's and the catalog's events.",
        settings,
        auth,
        routers=[subscriptions.router, deliveries.router],
        startup=startup,
        shutdown=shutdown,
        depends_on={"ledger": settings.ledger_url, "catalog": settings.catalog_url},
        development_secrets=(
            ["NOTIFIER_ENCRYPTION_KEY"]
            if settings.encryption_key.get_secret_value() == DEVELOPMENT_ENCRYPTION_KEY
            else []
        ),
    )
