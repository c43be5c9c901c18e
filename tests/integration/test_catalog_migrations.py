"""The catalog's migrations: data written under 0001 survives, and the schema matches the tables."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.catalog.main import create_app
from services.catalog.settings import CatalogSettings
from services.catalog.store.migrate import upgrade
from services.catalog.store.tables import UTCDateTime, metadata
from services.catalog.store.tables import changes as changes_at_head
from services.common.sql import async_engine
from tests.support.inprocess import client_for
from tests.support.ledger_api import ok

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OCCURRED_AT = datetime(2014, 3, 1, 1, 0, tzinfo=UTC)
RECORDED_AT = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)

# The tables exactly as migrations/versions/0001_catalog_changes.py created them: no `code` yet.
metadata_0001 = sa.MetaData()
changes_0001 = sa.Table(
    "catalog_changes",
    metadata_0001,
    sa.Column("position", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("stream_id", sa.String(length=36), nullable=False),
    sa.Column("stream_type", sa.String(length=32), nullable=False),
    sa.Column("stream_version", sa.Integer(), nullable=False),
    sa.Column("event_type", sa.String(length=64), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=True),
    sa.Column("parent_id", sa.String(length=36), nullable=True),
    sa.Column("status", sa.String(length=32), nullable=True),
    sa.Column("record", sa.JSON(), nullable=False),
)
heads_0001 = sa.Table(
    "catalog_heads",
    metadata_0001,
    sa.Column("stream_id", sa.String(length=36), primary_key=True),
    sa.Column("stream_type", sa.String(length=32), nullable=False),
    sa.Column("position", sa.BigInteger(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
)


@asynccontextmanager
async def engine_on(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database, disposed afterwards."""
    engine = async_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def revision(engine: AsyncEngine) -> list[str]:
    """The rows of alembic_version: one, naming the revision the database is at."""
    async with engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return [str(row[0]) for row in rows]


async def columns(engine: AsyncEngine, table: str) -> list[str]:
    """The names of a table's columns, as the database reports them."""

    def names(connection: Connection) -> list[str]:
        return [c["name"] for c in sa.inspect(connection).get_columns(table)]

    async with engine.connect() as connection:
        return await connection.run_sync(names)


async def differences(engine: AsyncEngine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match tables.py."""

    def compare(connection: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


@pytest.mark.asyncio
async def test_a_record_written_under_0001_survives_the_upgrade(database_url: str) -> None:
    street_id = str(uuid4())
    # A record as 0001-era code wrote it: no `code` key in the record either.
    record = {
        "id": street_id,
        "version": 1,
        "kind": "street_office",
        "name": "Cuqiao street office",
        "street_office_id": None,
        "registration": None,
        "contact": "028-8555 0101",
    }
    async with engine_on(database_url) as engine:
        await upgrade(engine, "0001")
        assert await revision(engine) == ["0001"]
        assert "code" not in await columns(engine, "catalog_changes")
        async with engine.begin() as connection:
            await connection.execute(
                changes_0001.insert().values(
                    position=1,
                    stream_id=street_id,
                    stream_type="organization",
                    stream_version=1,
                    event_type="organization.registered",
                    occurred_at=OCCURRED_AT,
                    recorded_at=RECORDED_AT,
                    kind="street_office",
                    parent_id=None,
                    status=None,
                    record=record,
                )
            )
            await connection.execute(
                heads_0001.insert().values(
                    stream_id=street_id,
                    stream_type="organization",
                    position=1,
                    version=1,
                    occurred_at=OCCURRED_AT,
                )
            )

        await upgrade(engine)

        assert await revision(engine) == ["0002"]
        assert "code" in await columns(engine, "catalog_changes")
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.select(changes_at_head))).all()
        assert len(rows) == 1
        row = rows[0]
        assert (row.position, row.stream_id, row.stream_version) == (1, street_id, 1)
        assert (row.event_type, row.kind, row.code) == (
            "organization.registered",
            "street_office",
            None,
        )
        assert (row.occurred_at, row.recorded_at) == (OCCURRED_AT, RECORDED_AT)
        assert row.record == record

    app = create_app(CatalogSettings(database_url=database_url))
    async with client_for(app) as client:
        served = ok(await client.get(f"/organizations/{street_id}"), 200)
        assert served == {**record, "code": None}
        past = ok(
            await client.get(
                f"/organizations/{street_id}", params={"as_of": "2014-03-01T09:00:00+08:00"}
            ),
            200,
        )
        assert past["name"] == "Cuqiao street office"
        community = ok(
            await client.post(
                "/organizations",
                json={
                    "kind": "community",
                    "name": "Longjin community",
                    "code": "51510107MJ0000001A",
                    "street_office_id": street_id,
                },
            )
        )
        feed = ok(await client.get("/events"), 200)
        assert [e["position"] for e in feed["entries"]] == [1, 2]
        assert feed["entries"][1]["payload"] == community
        listed = ok(await client.get("/organizations", params={"kind": "street_office"}), 200)
        assert [o["id"] for o in listed["items"]] == [street_id]


@pytest.mark.asyncio
async def test_the_migrations_build_exactly_the_tables_the_code_defines(
    database_url: str,
) -> None:
    async with engine_on(database_url) as engine:
        await upgrade(engine)
        assert await differences(engine) == []


@pytest.mark.asyncio
async def test_upgrading_twice_is_harmless(database_url: str) -> None:
    async with engine_on(database_url) as engine:
        await upgrade(engine)
        await upgrade(engine)
        assert await revision(engine) == ["0002"]

    # Startup upgrades a third time; what it writes must survive one more upgrade.
    app = create_app(CatalogSettings(database_url=database_url))
    async with client_for(app) as client:
        bureau = ok(
            await client.post(
                "/organizations",
                json={"kind": "district_bureau", "name": "Wuhou civil affairs bureau"},
            )
        )

    async with engine_on(database_url) as engine:
        await upgrade(engine)
        assert await revision(engine) == ["0002"]
        assert await differences(engine) == []
        async with engine.connect() as connection:
            stored = (await connection.execute(sa.select(changes_at_head.c.record))).scalars()
            assert list(stored) == [bureau]


def test_the_migrate_command_brings_the_database_to_head(database_url: str) -> None:
    # Our own CATALOG_* settings must not leak into the child: only the test's database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env["CATALOG_DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "-m", "services.catalog", "migrate"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    async def check() -> None:
        async with engine_on(database_url) as engine:
            assert await revision(engine) == ["0002"]
            assert "code" in await columns(engine, "catalog_changes")
            assert await differences(engine) == []

    asyncio.run(check())


def test_the_migrate_command_refuses_other_arguments(tmp_path: Path) -> None:
    database = tmp_path / "catalog.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env["CATALOG_DATABASE_URL"] = f"sqlite:///{database}"
    result = subprocess.run(
        [sys.executable, "-m", "services.catalog", "migrate", "now"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "usage: python -m services.catalog [migrate]" in result.stderr
    assert not database.exists()
