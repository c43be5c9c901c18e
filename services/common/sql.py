"""Async SQLAlchemy engines from the database URLs services are configured with."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, TypeDecorator, event, text
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
    engine = create_async_engine(url, pool_pre_ping=backend != "sqlite")
    if backend == "sqlite" and url.database and url.database != ":memory:":
        event.listen(engine.sync_engine, "connect", _write_ahead_log)
    return engine


def _write_ahead_log(connection: Any, _: object) -> None:
    # Readers then never wait for the writer, and a commit syncs one log instead of a rollback
    # journal and the database; with the default synchronous=FULL it is as durable as before.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL's timestamptz and on SQLite's text alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; give a timezone")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store UTC wall time so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_utc() -> datetime:
    """The current time, timezone-aware in UTC: what stored times are compared with."""
    return datetime.now(UTC)
