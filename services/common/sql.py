"""Async SQLAlchemy engines from the database URLs services are configured with."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_engine(database_url: str) -> AsyncEngine:
    """An engine on aiosqlite or asyncpg for `sqlite:///…` or `postgresql://…` URLs."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL scheme {url.drivername!r}")
    return create_async_engine(url, pool_pre_ping=True)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
