"""The skeleton shared by services that keep their state with async SQLAlchemy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import AuthSettings, install_token_verifier
from services.common.health import health_router, service_answers
from services.common.idempotency import IdempotencyMiddleware, IdempotencyStore, create_table
from services.common.idempotency_openapi import document_idempotency
from services.common.limits import BodySizeLimitMiddleware
from services.common.observability import install_observability
from services.common.problems import install_problem_handlers
from services.common.settings import ServiceSettings, refuse_development_secrets
from services.common.sql import async_engine, ping

Startup = Callable[[FastAPI, AsyncEngine], Awaitable[None]]
Shutdown = Callable[[FastAPI], Awaitable[None]]


def guard_requests(
    app: FastAPI,
    auth: AuthSettings,
    settings: ServiceSettings,
    *,
    service: str,
    development_secrets: Sequence[str] = (),
) -> None:
    """Bearer tokens, a bound on body size and Idempotency-Key, the same on every service.

    Refuses, in production mode, to guard anything with a development secret (the service's
    own, named in `development_secrets`, or the token secret): ConfigurationRefused.
    Replayed answers come from `app.state.idempotency`, which the app's lifespan opens with
    `open_idempotency`; until then a request with a key is refused (503), never run unguarded.
    """
    refuse_development_secrets(
        service, settings.mode, [*auth.development_secrets(), *development_secrets]
    )
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


def finish_service(
    app: FastAPI,
    auth: AuthSettings,
    settings: ServiceSettings,
    *,
    service: str,
    development_secrets: Sequence[str] = (),
) -> None:
    """What every service adds once its routes are in: problem answers, guards, observability.

    Observability comes last so that it runs first: every answer, a 413 or a replay included,
    is counted and logged with its request id.
    """
    install_problem_handlers(app)
    guard_requests(app, auth, settings, service=service, development_secrets=development_secrets)
    install_observability(app, service)


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
    development_secrets: Sequence[str] = (),
    depends_on: Mapping[str, str] | None = None,
) -> FastAPI:
    """A FastAPI app whose database engine opens at startup and is disposed at shutdown.

    `depends_on` names the services it calls, by base URL: it is ready only when they answer.
    """

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

    checks = {"database": ready} | {
        dependency: service_answers(dependency, url)
        for dependency, url in (depends_on or {}).items()
    }
    app.include_router(health_router(name, checks))
    for router in routers:
        app.include_router(router)
    finish_service(app, auth, settings, service=name, development_secrets=development_secrets)
    return app
