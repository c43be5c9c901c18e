"""Units of work: all or nothing, one connection each, on SQLite files, in memory and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy import Connection

from services.common.sql import Database, async_engine

pytestmark = pytest.mark.asyncio

metadata = sa.MetaData()
notes = sa.Table("unit_of_work_notes", metadata, sa.Column("text", sa.Text, nullable=False))


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    engine = async_engine(url)
    database = Database(engine)
    await database.write(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()
        await engine.dispose()


@pytest_asyncio.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    async with opened(database_url) as database:
        yield database


def _texts(connection: Connection) -> list[str]:
    return list(connection.scalars(sa.select(notes.c.text).order_by(notes.c.text)))


async def test_a_unit_that_returns_is_committed_and_seen_by_later_reads(
    database: Database,
) -> None:
    def write(connection: Connection) -> int:
        connection.execute(notes.insert(), [{"text": "allocated"}, {"text": "committed"}])
        return len(_texts(connection))

    assert await database.write(write) == 2
    assert await database.read(_texts) == ["allocated", "committed"]


def _insert_then_fail(connection: Connection) -> None:
    connection.execute(notes.insert().values(text="paid"))
    raise LookupError("the second half found nothing")


async def test_a_unit_that_raises_leaves_nothing_written(database: Database) -> None:
    with pytest.raises(LookupError, match="second half"):
        await database.write(_insert_then_fail)
    assert await database.read(_texts) == []


async def test_a_read_leaves_nothing_behind_even_if_it_wrote(database: Database) -> None:
    # A read is rolled back: what it did inside is never committed.
    def sneaky(connection: Connection) -> None:
        connection.execute(notes.insert().values(text="not kept"))

    await database.read(sneaky)
    assert await database.read(_texts) == []


async def test_in_memory_sqlite_units_share_one_database_and_are_all_or_nothing() -> None:
    # Only the async engine's connection sees an in-memory database: units run on it.
    async with opened("sqlite:///:memory:") as database:
        await database.write(lambda c: c.execute(notes.insert().values(text="kept")))
        with pytest.raises(LookupError):
            await database.write(_insert_then_fail)
        assert await database.read(_texts) == ["kept"]


async def test_a_unit_runs_whole_on_one_thread_off_the_loop_only_on_sqlite_files(
    database_url: str,
) -> None:
    threads: set[int] = set()

    def where(connection: Connection) -> None:
        threads.add(threading.get_ident())
        connection.execute(sa.text("SELECT 1"))
        threads.add(threading.get_ident())

    async with opened(database_url) as database:
        await database.read(where)
    # One thread saw the whole unit: on SQLite a worker thread, on PostgreSQL the loop's own.
    assert len(threads) == 1
    on_loop = threads == {threading.get_ident()}
    assert on_loop == (database.dialect == "postgresql")
