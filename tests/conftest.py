"""Shared fixtures: a real PostgreSQL server, and a fresh database per test on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from services.catalog.main import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from tests.support.catalog import Parties, seed_parties
from tests.support.inprocess import served
from tests.support.postgres import PostgresServer, find_or_start_postgres


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The CI machine's PostgreSQL, or a throwaway one when none answers: never a skip."""
    server, stop = find_or_start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        stop()


@contextmanager
def fresh_postgres_database(server: PostgresServer) -> Iterator[str]:
    """A new, empty PostgreSQL database's URL, dropped afterwards."""
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@contextmanager
def fresh_database(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A new database's URL on one backend, as both database fixtures below give them."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/service.sqlite3"
    else:
        with fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
            yield url


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database URL for one test, on SQLite and again on PostgreSQL."""
    with fresh_database(request.param, request, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database shared by one module's tests, on SQLite and again on PostgreSQL."""
    with fresh_database(request.param, request, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="session")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A catalog served over real HTTP, for the ledger to ask; shared by the session."""
    database = tmp_path_factory.mktemp("catalog") / "catalog.sqlite3"
    with served(create_catalog(CatalogSettings(database_url=f"sqlite:///{database}"))) as url:
        yield url


@pytest.fixture
def parties(catalog_url: str) -> Parties:
    """A street office, its community, a registered provider and an admitted item."""
    return seed_parties(catalog_url)
