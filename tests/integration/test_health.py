"""Every service answers its health checks on its own database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from services.catalog.main import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.ledger.main import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from services.notifier.main import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from tests.support.inprocess import client_for
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.asyncio

SERVICES: dict[str, Callable[[str], FastAPI]] = {
    "catalog": lambda url: create_catalog(CatalogSettings(database_url=url)),
    "ledger": lambda url: create_ledger(LedgerSettings(database_url=url)),
    "notifier": lambda url: create_notifier(NotifierSettings(database_url=url)),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_health_and_readiness(service: str, database_url: str) -> None:
    async with client_for(SERVICES[service](database_url)) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "service": service})
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


@pytest.mark.postgres
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_not_ready_once_the_database_is_gone(
    service: str, postgres_server: PostgresServer
) -> None:
    name = postgres_server.create_database()
    try:
        async with client_for(SERVICES[service](postgres_server.url(name))) as client:
            assert (await client.get("/readyz")).status_code == 200
            postgres_server.drop_database(name)
            ready = await client.get("/readyz")
            assert (await client.get("/healthz")).status_code == 200
    finally:
        postgres_server.drop_database(name)
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["reason"]


async def test_unknown_routes_are_problem_404s(database_url: str) -> None:
    async with client_for(SERVICES["catalog"](database_url)) as client:
        response = await client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_ledger_warns_when_it_runs_on_the_development_key(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(SERVICES["ledger"](database_url)):
        pass
    assert "LEDGER_BENEFICIARY_KEY is not set" in caplog.text
    caplog.clear()
    secret = create_ledger(LedgerSettings(database_url=database_url, beneficiary_key="s3cret"))
    async with client_for(secret):
        pass
    assert "LEDGER_BENEFICIARY_KEY" not in caplog.text
