"""The ledger service's composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.health import health_router
from services.common.problems import install_problem_handlers
from services.ledger.api import (
    budgets,
    contracts,
    deliveries,
    events,
    grants,
    payments,
    projects,
)
from services.ledger.application import LedgerApplication
from services.ledger.catalog import HttpCatalog
from services.ledger.sealing import PriceSealer
from services.ledger.settings import (
    DEVELOPMENT_BENEFICIARY_KEY,
    DEVELOPMENT_SEALING_KEY,
    LedgerSettings,
)
from services.ledger.store.config import eventsourcing_env

logger = logging.getLogger("services.ledger")


def create_app(settings: LedgerSettings | None = None) -> FastAPI:
    """Build the ledger app; the event store opens at startup and closes at shutdown."""
    settings = settings or LedgerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, secret, development in (
            ("LEDGER_BENEFICIARY_KEY", settings.beneficiary_key, DEVELOPMENT_BENEFICIARY_KEY),
            ("LEDGER_SEALING_KEY", settings.sealing_key, DEVELOPMENT_SEALING_KEY),
        ):
            if secret.get_secret_value() == development:
                logger.warning(
                    "%s is not set: the development key, which anyone can read in the source, "
                    "is in use; set a secret key in any deployment",
                    name,
                )
        catalog = HttpCatalog(
            settings.catalog_url,
            timeout=settings.catalog_timeout_seconds,
            attempts=settings.catalog_attempts,
        )
        ledger = LedgerApplication(
            eventsourcing_env(settings.database_url),
            beneficiary_key=settings.beneficiary_key.get_secret_value().encode(),
            catalog=catalog,
            price_sealer=PriceSealer(settings.sealing_key.get_secret_value().encode()),
        )
        app.state.ledger = ledger
        try:
            yield
        finally:
            ledger.close()
            catalog.close()

    app = FastAPI(
        title="Community services ledger",
        version="0.1.0",
        summary="Budgets, contracts, deliveries, acceptances and payments, append-only.",
        lifespan=lifespan,
    )

    async def ready() -> None:
        await asyncio.to_thread(app.state.ledger.reads.head)

    app.include_router(health_router("ledger", ready))
    for module in (budgets, projects, contracts, deliveries, payments, grants, events):
        app.include_router(module.router)
    install_problem_handlers(app)
    return app
