"""The verifiable log as an auditor uses it, on SQLite and PostgreSQL: checkpoints signed over
the feed she can recompute herself, proofs her own verifiers accept, and tampering in the
database named at the first position it touched."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.postgres import PostgresApplicationRecorder
from pymerkle import InmemoryTree  # type: ignore[import-untyped]

from proto.actor import Role
from services.ledger.application import LedgerApplication
from services.ledger.audit.checkpoints import Checkpointer, checkpointing
from services.ledger.main import create_app
from services.ledger.settings import LedgerSettings
from services.ledger.store import reads
from services.ledger.store.tables import CHECKPOINTS_TABLE, ENTRIES_TABLE, FEED_TABLE, LEAVES_TABLE
from tests.support.actors import AUDITOR, WUHOU_FINANCE_ID, acting
from tests.support.catalog import Parties
from tests.support.inprocess import client_for
from tests.support.ledger_api import allocate, deliver, ok, open_budget, sign_contract, street_of
from tests.support.merkle_reference import pymerkle_inclusion, rfc_verify_consistency
from tests.support.metrics import sample

pytestmark = pytest.mark.asyncio

Json = dict[str, Any]


@dataclass(frozen=True)
class Audited:
    """A ledger served in-process with its verifiable log."""

    client: httpx.AsyncClient
    ledger: LedgerApplication
    checkpointer: Checkpointer


@pytest_asyncio.fixture
async def audited(database_url: str, catalog_url: str) -> AsyncIterator[Audited]:
    # No checkpoint on its own during a test: each one here is taken when the test says.
    settings = LedgerSettings(
        database_url=database_url,
        catalog_url=catalog_url,
        checkpoint_every_entries=1_000_000,
        checkpoint_every_seconds=86_400,
    )
    app = create_app(settings)
    async with client_for(app) as client:
        yield Audited(client, app.state.ledger, app.state.checkpointer)


async def record(client: httpx.AsyncClient, entries: int, budget: Json | None = None) -> Json:
    """Grow the feed by `entries`: a budget opened (if none is given), then allocations."""
    if budget is None:
        budget = await open_budget(client)
        entries -= 1
    for month in range(entries):
        await allocate(client, budget["id"], f"{month + 1}000.00")
    return budget


async def read(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    """What the auditor reads at `path`, which must answer 200."""
    return ok(await client.get(path, params=params, headers=AUDITOR), 200)


async def take(client: httpx.AsyncClient, status: int = 201) -> Json:
    checkpoint: Json = ok(await client.post("/audit/checkpoints", headers=AUDITOR), status)
    return checkpoint


async def served_feed(client: httpx.AsyncClient) -> list[Json]:
    """The feed's entries exactly as served, as JSON objects."""
    entries: list[Json] = []
    while True:
        page = await read(client, "/events", after=len(entries))
        if not page["entries"]:
            return entries
        entries += page["entries"]


def auditors_bytes(entry: Json) -> bytes:
    """The canonical bytes, made as proto/canonical.py tells a client in any language to."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def auditors_leaf(entry: Json) -> str:
    return hashlib.sha256(b"\x00" + auditors_bytes(entry)).hexdigest()


def auditors_tree(entries: list[Json]) -> InmemoryTree:
    """The feed's Merkle tree built by an independent library from the served entries."""
    tree = InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(auditors_bytes(entry))
    return tree


async def test_checkpoints_sign_the_tree_an_auditor_recomputes_from_the_feed(
    audited: Audited,
) -> None:
    client = audited.client
    # Nothing recorded: nothing to sign, nothing signed.
    empty = await client.post("/audit/checkpoints", headers=AUDITOR)
    assert (empty.status_code, empty.json()["type"]) == (
        409,
        "urn:community-ledger:problem:empty-ledger",
    )
    assert (await client.get("/audit/checkpoints/latest", headers=AUDITOR)).status_code == 404

    budget = await record(client, 5)
    first = await take(client)
    assert first["tree_size"] == 5
    # Taken again with nothing new: the same checkpoint, not a second one.
    again = await client.post("/audit/checkpoints", headers=AUDITOR)
    assert (again.status_code, again.json()) == (200, first)
    assert again.headers["Location"] == "/audit/checkpoints/5"
    await record(client, 6, budget)
    second = await take(client)
    assert second["tree_size"] == 11

    key = await read(client, "/audit/public-key")
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["raw"]))
    loaded = serialization.load_pem_public_key(key["pem"].encode())
    assert isinstance(loaded, Ed25519PublicKey)
    assert loaded.public_bytes_raw().hex() == key["raw"]

    entries = await served_feed(client)
    tree = auditors_tree(entries)
    for checkpoint in (first, second):
        size = checkpoint["tree_size"]
        note = (
            f"community-ledger checkpoint\n{size}\n{checkpoint['root_hash']}\n"
            f"{checkpoint['timestamp']}\n"
        )
        assert checkpoint["note"] == note
        assert checkpoint["public_key"] == key["raw"]
        public.verify(bytes.fromhex(checkpoint["signature"]), note.encode())  # raises if forged
        assert tree.get_root(size).hex() == checkpoint["root_hash"]

    leaves: list[Json] = []
    while page := (await read(client, "/audit/leaves", after=len(leaves), limit=4))["leaves"]:
        leaves += page
    assert leaves == [
        {"position": i, "leaf_hash": auditors_leaf(e)} for i, e in enumerate(entries, 1)
    ]

    listed = await read(client, "/audit/checkpoints", limit=1)
    assert (listed["items"], listed["next_cursor"]) == ([first], 5)
    rest = await read(client, "/audit/checkpoints", cursor=5)
    assert (rest["items"], rest["next_cursor"]) == ([second], None)
    assert await read(client, "/audit/checkpoints/5") == first
    assert await read(client, "/audit/checkpoints/latest") == second


async def test_every_entry_is_proven_in_every_checkpoint_and_they_are_consistent(
    audited: Audited,
) -> None:
    client = audited.client
    budget = await record(client, 1)
    checkpoints = [await take(client)]
    for grown in (3, 1, 6):  # trees of 1, 4, 5 and 11 entries: edges of the RFC's splits
        await record(client, grown, budget)
        checkpoints.append(await take(client))
    assert [c["tree_size"] for c in checkpoints] == [1, 4, 5, 11]
    entries = await served_feed(client)
    tree = auditors_tree(entries)

    for checkpoint in checkpoints:
        size = checkpoint["tree_size"]
        for position in range(1, size + 1):
            params = {"position": position, "tree_size": size}
            proof = await read(client, "/audit/proofs/inclusion", **params)
            assert proof["checkpoint"] == checkpoint
            assert (proof["position"], proof["leaf_index"]) == (position, position - 1)
            assert proof["entry"] == entries[position - 1]
            assert proof["leaf_hash"] == auditors_leaf(entries[position - 1])
            path = [bytes.fromhex(node) for node in proof["audit_path"]]
            assert pymerkle_inclusion(tree, position - 1, size, path), (position, size)
    latest = await read(client, "/audit/proofs/inclusion", position=2)
    assert latest["checkpoint"] == checkpoints[-1]

    for earlier in checkpoints:
        for later in checkpoints:
            if earlier["tree_size"] > later["tree_size"]:
                continue
            params = {"first": earlier["tree_size"], "second": later["tree_size"]}
            proof = await read(client, "/audit/proofs/consistency", **params)
            assert (proof["first"], proof["second"]) == (earlier, later)
            path = [bytes.fromhex(node) for node in proof["consistency_path"]]
            if earlier == later:
                assert path == []
                continue
            first, second = (bytes.fromhex(c["root_hash"]) for c in (earlier, later))
            sizes = (earlier["tree_size"], later["tree_size"])
            assert rfc_verify_consistency(*sizes, first, second, path), sizes

    for params, status in (
        ({"position": 12, "tree_size": 11}, 422),
        ({"position": 1, "tree_size": 7}, 404),  # no checkpoint of 7 entries was taken
    ):
        answer = await client.get("/audit/proofs/inclusion", params=params, headers=AUDITOR)
        assert answer.status_code == status, answer.text
    for params, status in (({"first": 11, "second": 5}, 422), ({"first": 7}, 404)):
        answer = await client.get("/audit/proofs/consistency", params=params, headers=AUDITOR)
        assert answer.status_code == status, answer.text


async def test_only_overseers_read_the_log_or_take_checkpoints(audited: Audited) -> None:
    client = audited.client
    await record(client, 2)
    await take(client)
    reads = (
        "/audit/public-key",
        "/audit/checkpoints",
        "/audit/checkpoints/latest",
        "/audit/checkpoints/2",
        "/audit/proofs/inclusion?position=1",
        "/audit/proofs/consistency?first=2",
        "/audit/leaves",
        "/audit/entries",
        "/audit/verification",
    )
    for role in Role:
        caller = acting(role, uuid4())
        overseer = role in (Role.FINANCE, Role.AUDITOR, Role.SERVICE)
        for path in reads:
            answer = await client.get(path, headers=caller)
            assert answer.status_code == (200 if overseer else 403), (role, path, answer.text)
        taken = await client.post("/audit/checkpoints", headers=caller)
        assert taken.status_code == (200 if overseer else 403), (role, taken.text)


async def checkpoint_findings(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """What reconciliation finds of the log: its replay hands each entry to the verification."""
    found = (await read(client, "/audit/reconcile"))["violations"]
    return [(v["rule"], v["message"]) for v in found if v["rule"].startswith("checkpoint-")]


async def verification(client: httpx.AsyncClient) -> Json:
    result: Json = await read(client, "/audit/verification")
    return result


async def test_an_honest_ledger_verifies(audited: Audited, parties: Parties) -> None:
    client = audited.client
    nothing = await verification(client)
    assert (nothing["ok"], nothing["checked_positions"], nothing["failure"]) == (True, 0, None)
    # Every kind of field the feed carries: Chinese text, money, dates, times, nested lists.
    budget = await open_budget(client, title="武侯区2014年公共服务下沉")
    allocation = await allocate(client, budget["id"], "1000.00", parties.street_office_id)
    contract = await sign_contract(client, budget["id"], allocation, "500.00", parties)
    await take(client)
    ok(
        await client.post(
            f"/contracts/{contract['id']}/activation", json={}, headers=street_of(contract)
        )
    )
    await deliver(client, contract, "100.00")
    latest = await take(client)
    await record(client, 2, budget)  # recorded after the last checkpoint: checked all the same

    entries = await served_feed(client)
    assert auditors_tree(entries).get_root(latest["tree_size"]).hex() == latest["root_hash"]
    assert await verification(client) == {
        "ok": True,
        "checked_positions": len(entries),
        "checked_checkpoints": 2,
        "failure": None,
    }


async def test_the_log_serves_each_entry_as_the_bytes_its_leaf_hash_is_over(
    audited: Audited, parties: Parties
) -> None:
    client = audited.client
    budget = await open_budget(client, title="武侯区2014年公共服务下沉")
    allocation = await allocate(client, budget["id"], "1000.00", parties.street_office_id)
    await sign_contract(client, budget["id"], allocation, "500.00", parties)
    await record(client, 3, budget)
    # A caller whose name JSON must escape.
    clerk = acting(Role.FINANCE, WUHOU_FINANCE_ID, subject='会计 "老张"\\\t')
    await open_budget(client, by=clerk)
    await take(client)
    entries = await served_feed(client)
    assert entries[-1]["caused_by"]["subject"] == '会计 "老张"\\\t'

    # Ops can tell the pages the database wrote from those the ledger had to write itself.
    on_postgres = isinstance(audited.ledger.recorder, PostgresApplicationRecorder)
    written = await pages_written(client)
    answer = await client.get("/audit/entries", params={"limit": 10_000}, headers=AUDITOR)
    assert answer.status_code == 200
    await one_more_page_written(client, written, database=on_postgres)
    assert answer.headers["content-type"] == "application/jsonl"
    # One line per entry, each ending in a line feed: the canonical bytes of what /events serves.
    assert answer.content == b"".join(auditors_bytes(entry) + b"\n" for entry in entries)
    leaves = (await read(client, "/audit/leaves", limit=1000))["leaves"]
    assert [leaf["leaf_hash"] for leaf in leaves] == [
        hashlib.sha256(b"\x00" + line).hexdigest() for line in answer.content.splitlines()
    ]
    # Paged as the feed is; past the end, nothing.
    page = await client.get("/audit/entries", params={"after": 2, "limit": 3}, headers=AUDITOR)
    assert page.content == b"".join(auditors_bytes(entry) + b"\n" for entry in entries[2:5])
    past = await client.get("/audit/entries", params={"after": len(entries)}, headers=AUDITOR)
    assert (past.status_code, past.content) == (200, b"")
    too_many = await client.get("/audit/entries", params={"limit": 10_001}, headers=AUDITOR)
    assert too_many.status_code == 422
    # The database joins a page's lines in the order its rows come, checked: rows that came
    # in another order are not served so (the ledger writes that page itself).
    with pytest.MonkeyPatch.context() as patch:
        reordered = reads._ENTRY_PAGE.replace(
            "FROM page\n", "FROM (SELECT * FROM page ORDER BY position DESC) AS page\n"
        )
        assert reordered != reads._ENTRY_PAGE
        patch.setattr(reads, "_ENTRY_PAGE", reordered)
        written = await pages_written(client)
        again = await client.get("/audit/entries", params={"limit": 10_000}, headers=AUDITOR)
    assert again.content == answer.content
    await one_more_page_written(client, written, database=False)

    # An event changed behind the ledger's back: its line says what the event now says (and no
    # longer hashes to its leaf); every other line stands.
    Database(audited.ledger).inflate_allocation(2)
    written = await pages_written(client)
    changed = (await client.get("/audit/entries", headers=AUDITOR)).content.splitlines()
    await one_more_page_written(client, written, database=False)
    now = await served_feed(client)
    assert now[1]["payload"]["amount"] != entries[1]["payload"]["amount"]
    assert changed == [auditors_bytes(entry) for entry in now]
    assert [i for i, line in enumerate(changed) if line != auditors_bytes(entries[i])] == [1]


async def pages_written(client: httpx.AsyncClient) -> dict[str, float | None]:
    """How many pages of entries the ledger says were written by the database and by itself."""
    text = (await client.get("/metrics")).text
    return {
        writer: sample(text, "ledger_entry_pages_total", written_by=writer)
        for writer in ("database", "ledger")
    }


async def one_more_page_written(
    client: httpx.AsyncClient, before: dict[str, float | None], *, database: bool
) -> None:
    """Check that one page was written since `before`: by the database if `database`, else by
    the ledger."""
    now = await pages_written(client)
    by, other = ("database", "ledger") if database else ("ledger", "database")
    assert (now[by], now[other]) == ((before[by] or 0) + 1, before[other]), (before, now)


class Database:
    """The ledger's tables, reached around the ledger as someone tampering with them would."""

    def __init__(self, ledger: LedgerApplication) -> None:
        recorder = ledger.recorder
        self._datastore = recorder.datastore  # type: ignore[attr-defined]
        postgres = isinstance(recorder, PostgresApplicationRecorder)
        prefix = f'"{self._datastore.schema}".' if postgres else ""
        self.mark = "%s" if postgres else "?"  # the database's parameter placeholder
        self.events = prefix + f'"{recorder.events_table_name}"'  # type: ignore[attr-defined]
        self.key = "notification_id" if postgres else "rowid"
        self.feed, self.leaves, self.checkpoints, self.entries = (
            prefix + table for table in (FEED_TABLE, LEAVES_TABLE, CHECKPOINTS_TABLE, ENTRIES_TABLE)
        )

    def run(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            for sql, params in statements:
                cursor.execute(sql.replace("?", self.mark), list(params))

    def execute(self, sql: str, *params: Any) -> list[Any]:
        """Run one statement (`?` placeholders) and commit; the rows of a SELECT."""
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(sql.replace("?", self.mark), list(params))
            return list(cursor.fetchall()) if sql.startswith("SELECT") else []

    def one(self, sql: str, *params: Any) -> Any:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(sql.replace("?", self.mark), list(params))
            return cursor.fetchone()

    def event_of(self, position: int) -> tuple[Any, dict[str, Any]]:
        row = self.one(
            f"SELECT e.{self.key} AS k, e.state FROM {self.events} e "
            f"JOIN {self.feed} f ON e.{self.key} = f.notification_id WHERE f.position = ?",
            position,
        )
        return row["k"], json.loads(bytes(row["state"]))

    def first_of(self, event_class: str) -> int:
        """The position of the first event of an aggregate's event class ("Budget.Allocated")."""
        row = self.one(
            f"SELECT min(f.position) AS p FROM {self.events} e "
            f"JOIN {self.feed} f ON e.{self.key} = f.notification_id WHERE e.topic LIKE ?",
            f"%:{event_class}",
        )
        return int(row["p"])

    def inflate_allocation(self, position: int, *rewriting: str) -> None:
        """Make the allocation recorded at `position` ten times larger than it was; its rows in
        the tables `rewriting` are rewritten as they are, in the same transaction."""
        key, state = self.event_of(position)
        state["amount_fen"] *= 10
        new = json.dumps(state).encode()
        self.run(
            (f"UPDATE {self.events} SET state = ? WHERE {self.key} = ?", (new, key)),
            *(
                (
                    f"UPDATE {table} SET notification_id = notification_id "
                    "WHERE notification_id = ?",
                    (key,),
                )
                for table in rewriting
            ),
        )

    def delete_entry(self, position: int) -> None:
        self.run((f"DELETE FROM {self.feed} WHERE position = ?", (position,)))

    def delete_event(self, position: int) -> None:
        key, _ = self.event_of(position)
        self.run((f"DELETE FROM {self.events} WHERE {self.key} = ?", (key,)))

    def swap(self, position: int, other: int) -> None:
        move = f"UPDATE {self.feed} SET position = ? WHERE position = ?"
        self.run((move, (-1, position)), (move, (position, other)), (move, (other, -1)))


TAMPERING: dict[str, tuple[Callable[[Database], None], str]] = {
    "an allocation inflated": (lambda db: db.inflate_allocation(3), "altered"),
    "a feed row deleted": (lambda db: db.delete_entry(3), "missing"),
    "an event deleted": (lambda db: db.delete_event(3), "missing"),
    "two entries swapped": (lambda db: db.swap(3, 6), "reordered"),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
async def test_tampering_in_the_database_is_named_at_its_first_position(
    audited: Audited, tampering: str
) -> None:
    client = audited.client
    budget = await record(client, 4)
    await take(client)
    await record(client, 4, budget)
    await take(client)
    tamper, reason = TAMPERING[tampering]
    tamper(Database(audited.ledger))

    result = await verification(client)
    assert result["ok"] is False
    failure = result["failure"]
    assert (failure["position"], failure["reason"]) == (3, reason), failure
    # No checkpoint is vouched for past the first failure: the first covers positions 1..4.
    assert result["checked_checkpoints"] == 0
    if reason == "reordered":
        assert "recorded at 6" in failure["detail"]
    # Reconciliation, which reads and decodes the feed once for its replay and this check,
    # finds the same.
    assert await checkpoint_findings(client) == [(f"checkpoint-{reason}", failure["detail"])]


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
async def test_entries_tampered_with_before_their_leaves_are_hashed_are_hashed_as_served(
    audited: Audited, tampering: str
) -> None:
    client = audited.client
    await record(client, 6)
    tamper, reason = TAMPERING[tampering]
    tamper(Database(audited.ledger))

    if reason == "missing":
        # No leaf for a position the feed no longer holds, nor a checkpoint over it.
        refused = await client.post("/audit/checkpoints", headers=AUDITOR)
        assert refused.status_code == 409, refused.text
        assert "no entry at position 3" in refused.json()["detail"]
        return
    # The leaves are of the entries as served now, whatever they say: a checkpoint vouches
    # for the log as it stood when signed, and from then on.
    await take(client)
    served = (await client.get("/audit/entries", headers=AUDITOR)).content.splitlines()
    leaves = (await read(client, "/audit/leaves", limit=1000))["leaves"]
    assert [leaf["position"] for leaf in leaves] == list(range(1, len(served) + 1))
    assert [leaf["leaf_hash"] for leaf in leaves] == [
        hashlib.sha256(b"\x00" + line).hexdigest() for line in served
    ]


async def test_the_reconciliation_names_the_event_the_checkpoints_no_longer_vouch_for(
    audited: Audited,
) -> None:
    client = audited.client
    budget = await record(client, 4)
    await take(client)
    honest = await read(client, "/audit/reconcile")
    assert honest["violations"] == []
    assert next(c for c in honest["checks"] if c["rule"].startswith("merkle"))["ran"] is True

    Database(audited.ledger).inflate_allocation(3)
    found = (await read(client, "/audit/reconcile"))["violations"]
    checkpoint = [v for v in found if v["rule"] == "checkpoint-altered"]
    assert len(checkpoint) == 1, found
    [event] = checkpoint[0]["events"]
    assert (event["position"], event["stream_id"]) == (3, budget["id"])
    assert event["event_type"] == "allocation.made"


async def test_leaf_hashes_rewritten_with_the_event_are_caught_by_the_signed_root(
    audited: Audited,
) -> None:
    client = audited.client
    budget = await record(client, 2)
    await take(client)
    await record(client, 3, budget)
    await take(client)
    database = Database(audited.ledger)
    database.inflate_allocation(4)
    forged = auditors_leaf((await served_feed(client))[3])
    update = f"UPDATE {database.leaves} SET leaf_hash = ? WHERE position = ?"
    database.run((update, (bytes.fromhex(forged), 4)))

    failure = (await verification(client))["failure"]
    assert (failure["reason"], failure["position"], failure["tree_size"]) == (
        "root-mismatch",
        None,
        5,
    )
    assert await checkpoint_findings(client) == [("checkpoint-root-mismatch", failure["detail"])]
    # Nor is a proof given against a root the stored leaves no longer lead to.
    proof = await client.get("/audit/proofs/inclusion", params={"position": 1}, headers=AUDITOR)
    assert proof.status_code == 409, proof.text


async def test_a_checkpoint_whose_signature_was_replaced_is_caught(audited: Audited) -> None:
    client = audited.client
    await record(client, 3)
    taken = await take(client)
    database = Database(audited.ledger)
    forged = bytes(64)
    database.run((f"UPDATE {database.checkpoints} SET signature = ?", (forged,)))

    failure = (await verification(client))["failure"]
    assert (failure["reason"], failure["tree_size"]) == ("bad-signature", taken["tree_size"])
    assert await checkpoint_findings(client) == [("checkpoint-bad-signature", failure["detail"])]


async def test_checkpoints_are_taken_every_n_entries_or_once_entries_waited_t_seconds(
    audited: Audited,
) -> None:
    client, ledger = audited.client, audited.ledger
    budget = await record(client, 2)
    oldest = ledger.reads.feed(after=0, limit=1)[0].recorded_at
    now = [oldest + timedelta(seconds=59)]
    checkpointer = Checkpointer(
        ledger,
        audited.checkpointer.signer,
        every_entries=3,
        every_seconds=60,
        clock=lambda: now[0],
    )
    assert checkpointer.maybe_checkpoint() is None  # two entries, waiting 59 s: not yet
    now[0] = oldest + timedelta(seconds=60)
    taken = checkpointer.maybe_checkpoint()
    assert taken is not None
    assert taken.tree_size == 2
    assert checkpointer.maybe_checkpoint() is None  # nothing new

    await record(client, 2, budget)
    assert checkpointer.maybe_checkpoint() is None  # two new, just recorded
    await record(client, 1, budget)
    taken = checkpointer.maybe_checkpoint()
    assert taken is not None
    assert taken.tree_size == 5

    # In the background, as the ledger runs it: a checkpoint follows entries on its own.
    eager = Checkpointer(ledger, checkpointer.signer, every_entries=1, every_seconds=60)
    async with checkpointing(eager, poll_seconds=0.02):
        await record(client, 1, budget)
        deadline = datetime.now() + timedelta(seconds=10)
        while (latest := ledger.reads.latest_checkpoint()) is None or latest.tree_size < 6:
            assert datetime.now() < deadline, "no checkpoint was taken in the background"
            await asyncio.sleep(0.02)
    assert (await verification(client))["checked_checkpoints"] == 3


@pytest.mark.postgres
async def test_the_log_is_served_in_utf8_whatever_the_connections_encoding(
    postgres_url: str, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deployment whose connections default to GB18030: the page's bytes must still be UTF-8.
    monkeypatch.setenv("PGCLIENTENCODING", "GB18030")
    app = create_app(LedgerSettings(database_url=postgres_url, catalog_url=catalog_url))
    async with client_for(app) as client:
        await open_budget(client, title="武侯区2014年公共服务下沉")
        entries = await served_feed(client)
        answer = await client.get("/audit/entries", headers=AUDITOR)
    assert "武侯区" in entries[0]["payload"]["title"]
    assert answer.content == b"".join(auditors_bytes(entry) + b"\n" for entry in entries)
