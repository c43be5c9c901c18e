"""An in-process ledger on a fresh database of each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.ledger.main import create_app
from services.ledger.settings import LedgerSettings
from tests.support.inprocess import client_for


@pytest.fixture
def ledger_app(database_url: str, catalog_url: str) -> FastAPI:
    return create_app(LedgerSettings(database_url=database_url, catalog_url=catalog_url))


@pytest_asyncio.fixture
async def ledger(ledger_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(ledger_app) as client:
        yield client
