"""Async SQLAlchemy engines from the database URLs services are configured with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Engine,
    TypeDecorator,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")


def async_engine(database_url: str) -> AsyncEngine:
    """An engine on aiosqlite or asyncpg for `sqlite:///…` or `postgresql://…` URLs."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and _in_a_file(url):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL scheme {url.drivername!r}")
    engine = create_async_engine(url, pool_pre_ping=backend != "sqlite")
    if _in_a_file(url):
        event.listen(engine.sync_engine, "connect", _write_ahead_log)
    return engine


def _in_a_file(url: URL) -> bool:
    """Whether a URL names a SQLite database kept in a file (not one in memory)."""
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


def _write_ahead_log(connection: Any, _: object) -> None:
    # Readers then never wait for the writer, and a commit syncs one log instead of a rollback
    # journal and the database; with the default synchronous=FULL it is as durable as before.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Database:
    """Units of work, each a plain function over one connection, run with one hop each.

    aiosqlite pays a trip to its worker thread for every statement, fetch and commit, and
    those trips, not SQLite, were most of a small write's cost. On a SQLite file a unit runs
    whole on a thread of its own with the synchronous driver instead. Elsewhere (asyncpg, or
    SQLite in memory, which only the async engine's connections can see) it runs on the async
    engine's connection, whose driver awaits without threads.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._file: Engine | None = None
        if _in_a_file(engine.url):
            self._file = create_engine(engine.url.set(drivername="sqlite+pysqlite"))
            event.listen(self._file, "connect", _write_ahead_log)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on a connection and roll back whatever it left open."""
        if self._file is not None:
            return await asyncio.to_thread(_run_on_file, self._file, work, commit=False)
        async with self.engine.connect() as connection:
            return await connection.run_sync(work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a transaction: committed if it returns, rolled back if it raises."""
        if self._file is not None:
            return await asyncio.to_thread(_run_on_file, self._file, work, commit=True)
        async with self.engine.begin() as connection:
            return await connection.run_sync(work)

    async def dispose(self) -> None:
        """Close the connections of the synchronous engine, if there is one."""
        if self._file is not None:
            await asyncio.to_thread(self._file.dispose)


def _run_on_file(file: Engine, work: Callable[[Connection], T], *, commit: bool) -> T:
    with file.begin() if commit else file.connect() as connection:
        return work(connection)


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
