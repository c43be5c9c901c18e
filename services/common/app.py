"""The skeleton shared by services that keep their state with async SQLAlchemy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.health import health_router
from services.common.problems import install_problem_handlers
from services.common.settings import ServiceSettings
from services.common.sql import async_engine, ping

Startup = Callable[[FastAPI, AsyncEngine], Awaitable[None]]


def create_sql_service(
    name: str,
    title: str,
    summary: str,
    settings: ServiceSettings,
    *,
    routers: Sequence[APIRouter] = (),
    startup: Startup | None = None,
) -> FastAPI:
    """A FastAPI app whose database engine opens at startup and is disposed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = async_engine(settings.database_url)
        app.state.engine = engine
        try:
            await ping(engine)  # creates the SQLite file, or fails fast on a bad URL
            if startup is not None:
                await startup(app, engine)
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title=title, version="0.1.0", summary=summary, lifespan=lifespan)

    async def ready() -> None:
        await ping(app.state.engine)

    app.include_router(health_router(name, ready))
    for router in routers:
        app.include_router(router)
    install_problem_handlers(app)
    return app
