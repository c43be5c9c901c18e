"""The notifier's own database, fresh for each test on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.sql import Database, async_engine
from services.notifier.store.migrate import upgrade


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The notifier's database, on each backend, at the newest schema."""
    engine = async_engine(database_url)
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def database(engine: AsyncEngine) -> AsyncIterator[Database]:
    """Units of work on that database, as the notifier's worker runs them."""
    database = Database(engine)
    try:
        yield database
    finally:
        await database.dispose()
