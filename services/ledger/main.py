"""The ledger service's composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from fastapi import FastAPI

from proto.reconciliation import ReconciliationLine
from services.common.app import finish_service, open_idempotency
from services.common.auth import AuthSettings, ServiceToken
from services.common.gate import Gate
from services.common.health import health_router, service_answers
from services.common.openapi_schemas import document_schemas
from services.common.sql import async_engine
from services.ledger.api import (
    audit_flow,
    audit_log,
    audit_ocds,
    audit_reconcile,
    budgets,
    contracts,
    deliveries,
    events,
    grants,
    payments,
    projects,
)
from services.ledger.application import LedgerApplication
from services.ledger.audit.background import in_background
from services.ledger.audit.checkpoints import Checkpointer, checkpointing
from services.ledger.audit.flow_answers import KeptAnswers
from services.ledger.audit.flow_model import FlowModel
from services.ledger.catalog import HttpCatalog
from services.ledger.metrics import observe_ledger
from services.ledger.sealing import PriceSealer
from services.ledger.settings import (
    DEVELOPMENT_BENEFICIARY_KEY,
    DEVELOPMENT_CHECKPOINT_KEY,
    DEVELOPMENT_SEALING_KEY,
    LedgerSettings,
)
from services.ledger.store.config import eventsourcing_env

logger = logging.getLogger("services.ledger")
# The organization the ledger names in the service tokens it mints for itself.
LEDGER_SERVICE_ID = UUID("5e6f1c2a-7b8d-5c4e-9f0a-1b2c3d4e5f60")


def open_ledger(
    settings: LedgerSettings, auth: AuthSettings
) -> tuple[LedgerApplication, HttpCatalog]:
    """The ledger application on its database (creating its tables), and its catalog client."""
    catalog = HttpCatalog(
        settings.catalog_url,
        token=ServiceToken(auth, LEDGER_SERVICE_ID, "ledger", configured=settings.catalog_token),
        timeout=settings.catalog_timeout_seconds,
        attempts=settings.catalog_attempts,
    )
    env = eventsourcing_env(
        settings.database_url,
        idle_in_transaction_seconds=settings.database_idle_in_transaction_seconds,
    )
    if settings.aggregate_cache_size > 0:
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.aggregate_cache_size)
    ledger = LedgerApplication(
        env,
        beneficiary_key=settings.beneficiary_key.get_secret_value().encode(),
        catalog=catalog,
        price_sealer=PriceSealer(settings.sealing_key.get_secret_value().encode()),
    )
    if settings.group_commit_ms > 0:
        ledger.start_group_commit(settings.group_commit_ms / 1000)
    return ledger, catalog


def create_app(settings: LedgerSettings | None = None, auth: AuthSettings | None = None) -> FastAPI:
    """Build the ledger app; the event store opens at startup and closes at shutdown."""
    settings = settings or LedgerSettings()
    auth = auth or AuthSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger, catalog = open_ledger(settings, auth)
        app.state.ledger = ledger
        app.state.checkpointer = Checkpointer.from_settings(ledger, settings)
        app.state.flow_model = FlowModel(ledger)
        app.state.large_reads = Gate(settings.large_reads, settings.large_read_wait_seconds)
        mib = settings.flow_answers_mib
        app.state.flow_answers = KeptAnswers(mib * 2**20) if mib else None
        observe_ledger(app.state.metrics, ledger, app.state.flow_model, app.state.flow_answers)
        # Idempotency-Key answers are kept beside the events, in the ledger's own database.
        engine = async_engine(settings.database_url)
        try:
            await open_idempotency(app, engine, create=True)
            # Reads bring the flow model up to date themselves; keeping it close to the head
            # in between makes them cheap.
            async with (
                checkpointing(app.state.checkpointer),
                in_background(
                    "ledger-flow-model",
                    app.state.flow_model.catch_up,
                    every=1.0,
                    failing="the flow read model could not catch up",
                ),
            ):
                yield
        finally:
            await engine.dispose()
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

    checks = {"database": ready, "catalog": service_answers("catalog", settings.catalog_url)}
    app.include_router(health_router("ledger", checks))
    for module in (
        budgets,
        projects,
        contracts,
        deliveries,
        payments,
        grants,
        events,
        audit_flow,
        audit_log,
        audit_reconcile,
    ):
        app.include_router(module.router)
    app.include_router(audit_ocds.ocds_router(settings.ocid_prefix))
    development_secrets = [
        name
        for name, secret, development in (
            ("LEDGER_BENEFICIARY_KEY", settings.beneficiary_key, DEVELOPMENT_BENEFICIARY_KEY),
            ("LEDGER_SEALING_KEY", settings.sealing_key, DEVELOPMENT_SEALING_KEY),
            ("LEDGER_CHECKPOINT_KEY", settings.checkpoint_key, DEVELOPMENT_CHECKPOINT_KEY),
        )
        if secret.get_secret_value() == development
    ]
    finish_service(app, auth, settings, service="ledger", development_secrets=development_secrets)
    document_schemas(app, ReconciliationLine)
    return app
