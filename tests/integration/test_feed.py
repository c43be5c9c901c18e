"""The feed: every event once, in commit order, positions dense, envelope as in proto/."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from proto.actor import Actor, Role
from proto.canonical import canonical_bytes, canonical_json
from proto.feed import FeedEntry
from proto.generate import SCHEMA_DIR
from proto.ledger_events import EVENT_PAYLOADS
from services.ledger.application import LedgerApplication
from services.ledger.feed import feed_entry
from services.ledger.main import create_app
from services.ledger.settings import LedgerSettings
from tests.integration.test_audit_log import Database
from tests.integration.test_reconcile import tell_the_story
from tests.support.actors import (
    AUDITOR,
    CIVIL_AFFAIRS_ID,
    FINANCE,
    WUHOU_FINANCE_ID,
    acting,
)
from tests.support.catalog import Parties
from tests.support.feeds import read_whole_feed
from tests.support.inprocess import client_for
from tests.support.ledger_api import allocate, deliver, ok, open_budget, sign_contract

pytestmark = pytest.mark.asyncio

# Who tests/support's helpers call as: each signs as "<role>-clerk" unless told otherwise.
FINANCE_CLERK = Actor(
    role=Role.FINANCE, organization_id=UUID(WUHOU_FINANCE_ID), subject="finance-clerk"
)
AUDITOR_ACTOR = Actor(role=Role.AUDITOR, organization_id=uuid4(), subject="auditor")


def schema_file(path: Path) -> Draft202012Validator:
    """A validator for one of proto/schema/'s files, as a client in another language would use."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


async def test_feed_pages_through_every_event_in_order(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "500.00", parties)
    # Another account of the same street office: the feed names the account, not just the office.
    director = acting(Role.STREET, parties.street_office_id, subject="street-director")
    ok(await ledger.post(f"/contracts/{contract['id']}/activation", json={}, headers=director))
    await deliver(ledger, contract, "100.00")

    entries = await read_whole_feed(ledger)
    assert [e.position for e in entries] == list(range(1, len(entries) + 1))
    assert [e.event_type for e in entries] == [
        "budget.opened",
        "allocation.made",
        "project.opened",
        "project.awarded",
        "contract.signed",
        "commitment.made",
        "project.contracted",
        "contract.activated",
        "delivery.reported",
    ]
    for entry in entries:
        EVENT_PAYLOADS[entry.event_type].model_validate(entry.payload)
        wire = entry.model_dump(mode="json")
        schema_file(SCHEMA_DIR / "feed-entry.json").validate(wire)
        schema_file(SCHEMA_DIR / f"ledger-event.{entry.event_type}.json").validate(wire["payload"])
    recorded = [e.recorded_at for e in entries]
    assert recorded == sorted(recorded)
    signed = entries[4]
    assert (signed.stream_type, signed.stream_version) == ("contract", 1)
    assert signed.occurred_at.isoformat() == "2014-04-14T10:00:00+08:00"
    assert signed.payload["value"] == {"amount": "500.00", "currency": "CNY"}
    # Signing is one transaction: its three events carry the same record time.
    assert entries[4].recorded_at == entries[5].recorded_at == entries[6].recorded_at

    # Each entry names who made the change, as that caller's token named it.
    street = Actor(
        role=Role.STREET, organization_id=UUID(parties.street_office_id), subject="street-clerk"
    )
    assert [e.caused_by for e in entries] == [
        FINANCE_CLERK,  # budget.opened
        FINANCE_CLERK,  # allocation.made
        street,  # project.opened
        street,  # project.awarded
        street,  # contract.signed
        street,  # commitment.made: the budget's event, caused by the street office's signing
        street,  # project.contracted
        street.model_copy(update={"subject": "street-director"}),  # contract.activated
        Actor(  # delivery.reported
            role=Role.COMMUNITY,
            organization_id=UUID(parties.community_id),
            subject="community-clerk",
        ),
    ]
    assert entries[0].model_dump(mode="json")["caused_by"] == {
        "role": "finance",
        "organization_id": WUHOU_FINANCE_ID,
        "subject": "finance-clerk",
    }


async def test_stream_history_of_one_budget(ledger: httpx.AsyncClient) -> None:
    budget = await open_budget(ledger)
    await allocate(ledger, budget["id"], "1000.00")
    history = [
        FeedEntry.model_validate(e)
        for e in ok(await ledger.get(f"/streams/{budget['id']}/events", headers=AUDITOR), 200)
    ]
    assert [(e.stream_version, e.event_type) for e in history] == [
        (1, "budget.opened"),
        (2, "allocation.made"),
    ]
    assert {str(e.stream_id) for e in history} == {budget["id"]}
    assert [e.caused_by for e in history] == [FINANCE_CLERK, FINANCE_CLERK]


@pytest.mark.parametrize("role", [Role.STREET, Role.COMMUNITY, Role.PROVIDER, Role.CIVIL_AFFAIRS])
async def test_only_overseers_read_the_whole_feed_and_streams(
    ledger: httpx.AsyncClient, parties: Parties, role: Role
) -> None:
    budget = await open_budget(ledger)
    party = {
        Role.STREET: parties.street_office_id,
        Role.COMMUNITY: parties.community_id,
        Role.PROVIDER: parties.provider_id,
    }.get(role, CIVIL_AFFAIRS_ID)
    caller = acting(role, party)
    for path in ("/events", f"/streams/{budget['id']}/events"):
        response = await ledger.get(path, headers=caller)
        assert response.status_code == 403, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Finance funds the ledger, auditors check it, other services (the notifier) follow it.
    for overseer in (FINANCE, AUDITOR, acting(Role.SERVICE, uuid4(), "notifier")):
        assert ok(await ledger.get("/events", headers=overseer), 200)["head"] == 1


async def test_beneficiaries_are_never_stored_in_clear(
    ledger: httpx.AsyncClient, ledger_app: FastAPI, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "500.00", parties)
    ok(
        await ledger.post(
            f"/contracts/{contract['id']}/activation", json={}, headers=parties.street
        )
    )
    identity = "510107195001011234"
    delivery = await deliver(ledger, contract, "100.00", beneficiaries=[identity])

    app: LedgerApplication = ledger_app.state.ledger
    stored = app.recorder.select_notifications(start=1, limit=100)
    assert stored, "the events were stored"
    assert not any(identity.encode() in n.state for n in stored)
    digest = app.beneficiary_digest(identity)
    assert delivery["beneficiary_digests"] == [digest]
    assert len(digest) == 64
    assert digest != identity
    assert any(digest.encode() in n.state for n in stored)


async def test_the_feed_served_from_kept_entries_is_the_feed_the_events_give(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    await tell_the_story(ledger, parties)
    app: LedgerApplication = ledger_app.state.ledger
    served = [e.model_dump(mode="json") for e in await read_whole_feed(ledger)]
    computed = [
        feed_entry(row, event).model_dump(mode="json")
        for row, event in app.feed(after=0, limit=1000, by=AUDITOR_ACTOR)
    ]
    assert served == computed
    assert len(served) > 30
    # Entries kept before bodies were (or whose bodies are lost) are computed just the same.
    database = Database(app)
    database.execute(f"DELETE FROM {database.entries}")
    assert [e.model_dump(mode="json") for e in await read_whole_feed(ledger)] == computed
    # `python -m services.ledger migrate` keeps them again, for every event, once.
    assert app.keep_missing_entries() == len(computed)
    assert app.keep_missing_entries() == 0
    assert [e.model_dump(mode="json") for e in await read_whole_feed(ledger)] == computed

    # Bodies kept by an earlier release, their keys in the order they were made (and no
    # lines): served just the same, and `migrate` writes them in canonical form.
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    forget_lines(app)
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT notification_id, body FROM {database.entries}")
        kept = [(row["notification_id"], row["body"]) for row in cursor.fetchall()]
    earlier = [(unsorted(body), nid) for nid, body in kept]
    with datastore.transaction(commit=True) as cursor:
        update = f"UPDATE {database.entries} SET body = ? WHERE notification_id = ?"
        cursor.executemany(update.replace("?", database.mark), earlier)
    assert [e.model_dump(mode="json") for e in await read_whole_feed(ledger)] == computed
    assert app.keep_missing_entries() == len(kept)
    assert app.keep_missing_entries() == 0
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT notification_id, body FROM {database.entries}")
        assert sorted((row["notification_id"], row["body"]) for row in cursor.fetchall()) == sorted(
            kept
        )
    assert [e.model_dump(mode="json") for e in await read_whole_feed(ledger)] == computed


async def served_lines(ledger: httpx.AsyncClient) -> list[str]:
    """The log's entries as `GET /audit/entries` serves them, one line each."""
    response = await ledger.get(
        "/audit/entries", params={"after": 0, "limit": 10_000}, headers=AUDITOR
    )
    assert response.status_code == 200, response.text
    return response.text.splitlines()


def kept_lines(app: LedgerApplication) -> list[str | None]:
    """The lines kept with the entries, in position order."""
    database = Database(app)
    rows = database.execute(
        f"SELECT b.line FROM {database.entries} b JOIN {database.feed} f "
        "USING (notification_id) ORDER BY f.position",
    )
    return [row["line"] for row in rows]


def forget_lines(app: LedgerApplication) -> None:
    """The entries as a release before lines kept them: bodies, the entry less its feed row's
    fields (PostgreSQL keeps lines in their place; SQLite bodies)."""
    database = Database(app)
    if database.mark != "%s":
        return
    table = database.entries
    for row in database.execute(
        f"SELECT notification_id, line FROM {table} WHERE line IS NOT NULL"
    ):
        body = {
            key: value
            for key, value in json.loads(row["line"]).items()
            if key not in ("caused_by", "position", "recorded_at")
        }
        database.execute(
            f"UPDATE {table} SET body = ?, line = NULL, line_digest = NULL "
            "WHERE notification_id = ?",
            canonical_json(body).decode(),
            row["notification_id"],
        )


@asynccontextmanager
async def storied_ledger(
    database_url: str, catalog_url: str, parties: Parties
) -> AsyncIterator[tuple[LedgerApplication, httpx.AsyncClient, list[str]]]:
    """A ledger that has recorded the story, its client, and its log's lines as served."""
    ledger_app = create_app(LedgerSettings(database_url=database_url, catalog_url=catalog_url))
    async with client_for(ledger_app) as ledger:
        await tell_the_story(ledger, parties)
        yield ledger_app.state.ledger, ledger, await served_lines(ledger)


@pytest.mark.postgres
async def test_each_entry_is_kept_whole_as_served_and_served_as_kept(
    postgres_url: str, catalog_url: str, parties: Parties
) -> None:
    async with storied_ledger(postgres_url, catalog_url, parties) as (app, ledger, served):
        # Written by the database, byte for byte the entry the events give.
        computed = [
            canonical_bytes(feed_entry(row, event)).decode()
            for row, event in app.feed(after=0, limit=1000, by=AUDITOR_ACTOR)
        ]
        assert kept_lines(app) == served == computed
        assert len(served) > 30
        # The ledger's own reads (its leaf hashes) take each line as kept too: the line's
        # digest is the same computed in Python as in SQL.
        assert [row.line for row in app.reads.feed_entries(after=0, limit=1000)] == served

        # Served as kept: a kept line altered is served altered, so its leaf no longer matches.
        altered = served[2].replace('"role":', '"role" :', 1)
        database = Database(app)
        database.execute(
            f"UPDATE {database.entries} SET line = ? WHERE line = ?",
            altered,
            served[2],
        )
        assert (await served_lines(ledger))[2] == altered

        # Kept by a release before lines were: served the same, and `migrate` keeps each line.
        forget_lines(app)
        assert await served_lines(ledger) == served
        assert app.keep_missing_lines() == len(served)
        assert app.keep_missing_lines() == 0
        assert await served_lines(ledger) == served
        assert kept_lines(app) == served


@pytest.mark.postgres
async def test_the_database_writes_every_page_of_kept_lines_itself(
    postgres_url: str, catalog_url: str, parties: Parties
) -> None:
    async with storied_ledger(postgres_url, catalog_url, parties) as (app, _, served):
        # Each line was written in its event's and feed row's own transaction, so the database
        # need not hash them again to know them unchanged.
        assert rows_as_written(app) == len(served)
        # Each page a range of positions, its lines in position order, none left for the
        # ledger to write: at every page size, from every start.
        for size in (1, 7, len(served)):
            paged: list[str] = []
            for after in range(0, len(served), size):
                page = app.reads.entry_page(after, size, "\n", "")
                assert page is not None, f"the database left the page after {after} to the ledger"
                assert page.last == min(after + size, len(served))
                assert page.text.endswith(b"\n")
                paged += page.text.decode().splitlines()
            assert paged == served
        past = app.reads.entry_page(len(served), 10, "\n", "")
        assert past is not None
        assert (past.text, past.last) == (b"", None)


def rows_as_written(app: LedgerApplication) -> int:
    """How many kept lines' events and feed rows are still the rows they were written with."""
    database = Database(app)
    return int(
        database.execute(
            f"SELECT count(*) AS n FROM {database.entries} b JOIN {database.events} e "
            f"USING (notification_id) JOIN {database.feed} f USING (notification_id) "
            "WHERE b.written_in = e.xmin AND b.written_in = f.xmin",
        )[0]["n"]
    )


@pytest.mark.postgres
async def test_an_event_rewritten_with_its_feed_row_and_entry_shows_in_the_entry_served(
    postgres_url: str, catalog_url: str, parties: Parties
) -> None:
    async with storied_ledger(postgres_url, catalog_url, parties) as (app, ledger, served):
        database = Database(app)
        # Every row rewritten as it was, together in one transaction, as a restore into one
        # transaction would: new row versions, but each line still has its digest.
        database.run(
            *(
                (f"UPDATE {table} SET notification_id = notification_id", ())
                for table in (database.events, database.feed, database.entries)
            )
        )
        assert rows_as_written(app) == 0
        assert await served_lines(ledger) == served

        # An allocation made ten times larger, its feed row and kept line rewritten in the
        # same transaction: the three rows are of one transaction again, but not of the one
        # the line was written in, and the line served says what the event now says.
        position = database.first_of("Budget.Allocated")
        database.inflate_allocation(position, database.feed, database.entries)
        now = await served_lines(ledger)
        changed = feed_entry(*app.feed(after=position - 1, limit=1, by=AUDITOR_ACTOR)[0])
        assert now[position - 1] == canonical_bytes(changed).decode() != served[position - 1]
        assert now[: position - 1] == served[: position - 1]
        assert now[position:] == served[position:]


@pytest.mark.postgres
async def test_lines_kept_before_their_transaction_was_are_served_after_an_upgrade(
    postgres_url: str, catalog_url: str, parties: Parties
) -> None:
    async with storied_ledger(postgres_url, catalog_url, parties) as (app, _, served):
        # The table as a release before lines were tied to their transaction made it.
        database = Database(app)
        database.execute(f"ALTER TABLE {database.entries} DROP COLUMN written_in")

    upgraded = create_app(LedgerSettings(database_url=postgres_url, catalog_url=catalog_url))
    async with client_for(upgraded) as ledger:
        app = upgraded.state.ledger
        assert rows_as_written(app) == 0
        assert await served_lines(ledger) == served  # held to their digests
        # Each new entry is tied to its transaction.
        await open_budget(ledger)
        lines = await served_lines(ledger)
        assert lines[: len(served)] == served
        assert rows_as_written(app) == len(lines) - len(served) > 0

        # `migrate` ties each earlier line to its rows' versions, where their digest holds:
        # not the line of an event changed since, rewritten with its feed row in one
        # transaction, which still shows what the event now says.
        database = Database(app)
        position = database.first_of("Budget.Allocated")
        database.inflate_allocation(position, database.feed)
        changed = await served_lines(ledger)
        assert changed[position - 1] != lines[position - 1]
        assert app.keep_missing_row_versions() == len(served) - 1
        assert app.keep_missing_row_versions() == 0
        assert rows_as_written(app) == len(lines) - 1
        assert await served_lines(ledger) == changed


@pytest.mark.postgres
async def test_entries_kept_before_lines_are_served_after_an_upgrade(
    postgres_url: str, catalog_url: str, parties: Parties
) -> None:
    async with storied_ledger(postgres_url, catalog_url, parties) as (app, _, served):
        # The table as a release before lines made it.
        forget_lines(app)
        database = Database(app)
        database.execute(
            f"ALTER TABLE {database.entries} DROP COLUMN line, DROP COLUMN line_digest, "
            "DROP COLUMN written_in, ALTER COLUMN body SET NOT NULL",
        )

    upgraded = create_app(LedgerSettings(database_url=postgres_url, catalog_url=catalog_url))
    async with client_for(upgraded) as ledger:
        assert await served_lines(ledger) == served
        assert upgraded.state.ledger.keep_missing_lines() == len(served)
        assert await served_lines(ledger) == served
        # Each line just written is tied to its rows' versions too.
        assert upgraded.state.ledger.keep_missing_row_versions() == len(served)
        assert rows_as_written(upgraded.state.ledger) == len(served)
        assert await served_lines(ledger) == served


FEED_ROW_CHANGES = {
    "its caller": ("actor_subject", "'someone-else'"),
    "its record time": ("recorded_at", "recorded_at + 1000000"),
}


@pytest.mark.parametrize("change", sorted(FEED_ROW_CHANGES))
async def test_a_feed_row_changed_behind_the_ledgers_back_shows_in_the_entry_served(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties, change: str
) -> None:
    await tell_the_story(ledger, parties)
    app: LedgerApplication = ledger_app.state.ledger
    honest = await served_lines(ledger)
    column, value = FEED_ROW_CHANGES[change]
    database = Database(app)
    database.execute(f"UPDATE {database.feed} SET {column} = {value} WHERE position = 3")

    served = await served_lines(ledger)
    assert served[:2] == honest[:2]
    assert served[3:] == honest[3:]
    computed = feed_entry(*app.feed(after=2, limit=1, by=AUDITOR_ACTOR)[0])
    assert json.loads(served[2]) == computed.model_dump(mode="json") != json.loads(honest[2])


def unsorted(body: str) -> str:
    """A canonical body as an earlier release kept it: the same fields, keys not sorted."""
    fields = json.loads(body)
    return json.dumps(dict(reversed(fields.items())), ensure_ascii=False, separators=(",", ":"))
