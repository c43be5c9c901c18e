"""The skeleton shared by services that keep their state with async SQLAlchemy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import AuthSettings, install_token_verifier
from services.common.health import health_router
from services.common.idempotency import IdempotencyMiddleware, IdempotencyStore, create_table
from services.common.idempotency_openapi import document_idempotency
from services.common.limits import BodySizeLimitMiddleware
from services.common.problems import install_problem_handlers
from services.common.settings import ServiceSettings
from services.common.sql import async_engine, ping

Startup = Callable[[FastAPI, AsyncEngine], Awaitable[None]]
Shutdown = Callable[[FastAPI], Awaitable[None]]


def guard_requests(app: FastAPI, auth: AuthSettings, settings: ServiceSettings) -> None:
    """Bearer tokens, a bound on body size and Idempotency-Key, the same on every service.

    Replayed answers come from `app.state.idempotency`, which the app's lifespan opens with
    `open_idempotency`; until then a request with a key is refused (503), never run unguarded.
    """
    verifier = install_token_verifier(app, auth)
    app.add_middleware(
        IdempotencyMiddleware,
        store=lambda: getattr(app.state, "idempotency", None),
        identify=verifier.identify,
    )
    # Added last, so it runs first: nothing reads a body past the limit.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document_idempotency(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


async def open_idempotency(app: FastAPI, engine: AsyncEngine, *, create: bool) -> None:
    """Keep the app's Idempotency-Key answers in its own database (creating the table if asked)."""
    if create:
        await create_table(engine)
    app.state.idempotency = IdempotencyStore(engine)


def create_sql_service(
    name: str,
    title: str,
    summary: str,
    settings: ServiceSettings,
    auth: AuthSettings,
    *,
    routers: Sequence[APIRouter] = (),
    startup: Startup | None = None,
    shutdown: Shutdown | None = None,
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
            else:
                await open_idempotency(app, engine, create=True)
            yield
        finally:
            if shutdown is not None:
                await shutdown(app)
            await engine.dispose()

    app = FastAPI(title=title, version="0.1.0", summary=summary, lifespan=lifespan)

    async def ready() -> None:
        await ping(app.state.engine)

    app.include_router(health_router(name, ready))
    for router in routers:
        app.include_router(router)
    install_problem_handlers(app)
    guard_requests(app, auth, settings)
    return app
