"""The catalog's migrations: data written under 0001 and 0002 survives, changes recorded before
0003 name no caller while later ones do, and the schema matches the tables."""

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
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from proto.actor import Role
from services.catalog.main import create_app
from services.catalog.settings import CatalogSettings
from services.catalog.store.migrate import alembic_config, upgrade
from services.catalog.store.tables import changes as changes_at_head
from services.catalog.store.tables import metadata
from services.common.sql import UTCDateTime, async_engine
from tests.support.actors import AUDITOR, CIVIL_AFFAIRS, CIVIL_AFFAIRS_ID, acting
from tests.support.inprocess import client_for
from tests.support.ledger_api import ok

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
"""The newest revision among the catalog's migrations: where `upgrade` brings a database."""
ACTOR_COLUMNS = ["actor_role", "actor_organization", "actor_subject"]
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

# The changes table as 0002_record_codes.py left it: a `code`, but no caller named; the heads
# table did not change.
metadata_0002 = sa.MetaData()
changes_0002 = sa.Table(
    "catalog_changes",
    metadata_0002,
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
    sa.Column("code", sa.String(length=64), nullable=True),
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
        assert not set(ACTOR_COLUMNS) & set(await columns(engine, "catalog_changes"))
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

        assert await revision(engine) == [HEAD]
        assert "code" in await columns(engine, "catalog_changes")
        assert set(ACTOR_COLUMNS) <= set(await columns(engine, "catalog_changes"))
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
        # Nobody can say now who registered it: the columns stay empty rather than invented.
        assert (row.actor_role, row.actor_organization, row.actor_subject) == (None, None, None)

    app = create_app(CatalogSettings(database_url=database_url))
    async with client_for(app) as client:
        client.headers.update(CIVIL_AFFAIRS)
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
        assert [e["caused_by"] for e in feed["entries"]] == [
            None,
            {
                "role": "civil-affairs",
                "organization_id": CIVIL_AFFAIRS_ID,
                "subject": "civil-affairs-clerk",
            },
        ]
        listed = ok(await client.get("/organizations", params={"kind": "street_office"}), 200)
        assert [o["id"] for o in listed["items"]] == [street_id]


@pytest.mark.asyncio
async def test_changes_recorded_before_0003_name_no_caller_and_later_ones_do(
    database_url: str,
) -> None:
    bureau_id, item_id = str(uuid4()), str(uuid4())
    # Records as 0002-era code wrote them: with codes, and nobody named as having made them.
    bureau = {
        "id": bureau_id,
        "version": 1,
        "kind": "district_bureau",
        "name": "Wuhou civil affairs bureau",
        "code": "11510107MB0000002X",
        "street_office_id": None,
        "registration": None,
        "contact": None,
    }
    item = {
        "id": item_id,
        "version": 1,
        "name": "Home visits for elderly people living alone",
        "code": "WH-2014-001",
        "description": "",
        "kind": "public",
        "domain": "elderly",
        "target_groups": ["elderly over 60 living alone"],
        "delivery_modes": ["on_site"],
        "duty_list": "committee_assisting",
        "push_down_category": None,
        "standard_unit_price": None,
        "proposed_by": bureau_id,
        "status": "proposed",
        "funding": [],
        "decision_reason": None,
    }
    async with engine_on(database_url) as engine:
        await upgrade(engine, "0002")
        assert await revision(engine) == ["0002"]
        assert not set(ACTOR_COLUMNS) & set(await columns(engine, "catalog_changes"))
        async with engine.begin() as connection:
            for position, (record, stream_type, event_type, kind, status) in enumerate(
                [
                    (bureau, "organization", "organization.registered", "district_bureau", None),
                    (item, "item", "item.proposed", "public", "proposed"),
                ],
                start=1,
            ):
                await connection.execute(
                    changes_0002.insert().values(
                        position=position,
                        stream_id=record["id"],
                        stream_type=stream_type,
                        stream_version=1,
                        event_type=event_type,
                        occurred_at=OCCURRED_AT,
                        recorded_at=RECORDED_AT,
                        kind=kind,
                        parent_id=None,
                        status=status,
                        code=record["code"],
                        record=record,
                    )
                )
                await connection.execute(
                    heads_0001.insert().values(
                        stream_id=record["id"],
                        stream_type=stream_type,
                        position=position,
                        version=1,
                        occurred_at=OCCURRED_AT,
                    )
                )

        await upgrade(engine)

        assert await revision(engine) == [HEAD]
        assert set(ACTOR_COLUMNS) <= set(await columns(engine, "catalog_changes"))
        assert await differences(engine) == []

    wang = {"role": "civil-affairs", "organization_id": CIVIL_AFFAIRS_ID, "subject": "wang.li"}
    app = create_app(CatalogSettings(database_url=database_url))
    async with client_for(app) as client:
        assert ok(await client.get(f"/items/{item_id}", headers=AUDITOR), 200) == item
        # A retry with the bureau's code still finds the record nobody is named for.
        again = await client.post(
            "/organizations",
            json={
                "kind": "district_bureau",
                "name": "Wuhou civil affairs bureau",
                "code": "11510107MB0000002X",
            },
            headers=CIVIL_AFFAIRS,
        )
        assert (again.status_code, again.json()) == (200, bureau), again.text
        reviewed = ok(
            await client.post(
                f"/items/{item_id}/review",
                json={"occurred_at": "2014-03-25T09:00:00+08:00"},
                headers=acting(Role.CIVIL_AFFAIRS, CIVIL_AFFAIRS_ID, "wang.li"),
            )
        )
        assert (reviewed["status"], reviewed["version"]) == ("under_review", 2)
        history = ok(await client.get(f"/items/{item_id}/history", headers=AUDITOR), 200)
        assert [c["record"] for c in history] == [item, reviewed]
        feed = ok(await client.get("/events", headers=AUDITOR), 200)
        assert [(e["position"], e["caused_by"]) for e in feed["entries"]] == [
            (1, None),
            (2, None),
            (3, wang),
        ]

    async with engine_on(database_url) as engine, engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.select(
                    changes_at_head.c.position,
                    *(changes_at_head.c[name] for name in ACTOR_COLUMNS),
                ).order_by(changes_at_head.c.position)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, None, None, None),
        (2, None, None, None),
        (3, "civil-affairs", CIVIL_AFFAIRS_ID, "wang.li"),
    ]


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
        assert await revision(engine) == [HEAD]

    # Startup upgrades a third time; what it writes must survive one more upgrade.
    app = create_app(CatalogSettings(database_url=database_url))
    async with client_for(app) as client:
        bureau = ok(
            await client.post(
                "/organizations",
                json={"kind": "district_bureau", "name": "Wuhou civil affairs bureau"},
                headers=CIVIL_AFFAIRS,
            )
        )

    async with engine_on(database_url) as engine:
        await upgrade(engine)
        assert await revision(engine) == [HEAD]
        assert await differences(engine) == []
        async with engine.connect() as connection:
            stored = (await connection.execute(sa.select(changes_at_head.c.record))).scalars()
            assert list(stored) == [bureau]
            actors = (
                await connection.execute(
                    sa.select(*(changes_at_head.c[name] for name in ACTOR_COLUMNS))
                )
            ).all()
            assert [tuple(a) for a in actors] == [
                ("civil-affairs", CIVIL_AFFAIRS_ID, "civil-affairs-clerk")
            ]


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
            assert await revision(engine) == [HEAD]
            assert "code" in await columns(engine, "catalog_changes")
            assert set(ACTOR_COLUMNS) <= set(await columns(engine, "catalog_changes"))
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
