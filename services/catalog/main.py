"""The catalog service's composition root."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.catalog.api import communities, events, items, organizations, platforms
from services.catalog.application import Catalog
from services.catalog.settings import CatalogSettings
from services.catalog.store.changes import ChangeStore
from services.catalog.store.migrate import upgrade
from services.common.app import create_sql_service, open_idempotency
from services.common.auth import AuthSettings
from services.common.sql import Database


def create_app(
    settings: CatalogSettings | None = None, auth: AuthSettings | None = None
) -> FastAPI:
    """Build the catalog app; its schema is brought up to date at startup unless told not to."""
    settings = settings or CatalogSettings()

    async def startup(app: FastAPI, engine: AsyncEngine) -> None:
        if settings.migrate_on_start:
            await upgrade(engine)
        app.state.database = Database(engine)
        app.state.catalog = Catalog(ChangeStore(app.state.database))
        # The table comes with the catalog's migrations (0004), like every catalog table.
        await open_idempotency(app, engine, create=False)

    async def shutdown(app: FastAPI) -> None:
        database: Database | None = getattr(app.state, "database", None)
        if database is not None:
            await database.dispose()

    return create_sql_service(
        "catalog",
        "Community services catalog",
        "What may be bought, from whom, and where: items, admission, organizations, guides.",
        settings,
        auth or AuthSettings(),
        routers=[m.router for m in (organizations, items, communities, platforms, events)],
        startup=startup,
        shutdown=shutdown,
    )
