"""`GET /audit/reconcile` on SQLite and PostgreSQL: an honest ledger reconciles without a single
violation, and each way a rogue operator could edit the events table behind the ledger's back is
reported under its rule, naming the events involved."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from fastapi import FastAPI
from psycopg import sql
from sqlalchemy.engine import make_url

from proto.actor import Actor, Role
from proto.feed import FeedEntry
from proto.reconciliation import (
    EventRef,
    Reconciliation,
    ReconciliationLine,
    ReconciliationProgress,
    Violation,
)
from services.common.gate import Gate
from services.ledger.api import audit_reconcile, progress_lines
from services.ledger.application import LedgerApplication
from services.ledger.audit.reconcile import (
    FLOW_MODEL,
    MERKLE,
    feed_pages,
    reconcile,
    reconcile_ledger,
)
from services.ledger.audit.reconcile_replay import CHECKS, Item
from tests.support.actors import AUDIT_OFFICE_ID, AUDITOR, FINANCE, acting
from tests.support.catalog import Parties
from tests.support.feeds import read_whole_feed
from tests.support.grants_api import award_grant, disburse, grantor_of, report_use
from tests.support.ledger_api import allocate, cny, deliver, ok, open_budget, sign_contract

pytestmark = pytest.mark.asyncio

AUDITOR_ACTOR = Actor(role=Role.AUDITOR, organization_id=UUID(AUDIT_OFFICE_ID), subject="a")
NDJSON = {"Accept": "application/x-ndjson"}
# Before the acceptances (recorded now) but after the contract was signed (2014-04-14).
BACKDATED = "2014-06-01T00:00:00+08:00"


@pytest.fixture
def ledger_app(ledger_app: FastAPI) -> FastAPI:
    """The ledger, its reconciliation checking the replay alone."""
    # These tests are about the replay; the checks of the checkpoints and of the flow read
    # model are their own modules' to test (a test of the first through its hook is below).
    ledger_app.dependency_overrides[audit_reconcile.merkle_check] = lambda: None
    ledger_app.dependency_overrides[audit_reconcile.flow_check] = lambda: None
    return ledger_app


# --- an honest ledger ------------------------------------------------------------------------


Story = dict[str, str]
"""Ids of what `tell_the_story` recorded, by `budget_id`, `contract_id` and `grant_id`."""


async def tell_the_story(client: httpx.AsyncClient, parties: Parties) -> Story:
    """A year of Wuhou's money, every flow taken once: a budget raised, an allocation adjusted,
    a contract with deliveries accepted, rejected and an acceptance reversed, paid with one
    payment reversed and paid again, then completed; a grant disbursed, reported on and closed."""
    budget = await open_budget(client)
    bid = budget["id"]
    raised = {"direction": "increase", "amount": cny("1000000.00"), "reason": "supplementary"}
    source = {"source_name": "Wuhou district finance"}
    ok(await client.post(f"/budgets/{bid}/adjustments", json=raised | source, headers=FINANCE))
    allocation = await allocate(client, bid, "90000.00", parties.street_office_id)
    enlarged = raised | {"amount": cny("10000.00"), "reason": "two more sites"}
    adjust = f"/budgets/{bid}/allocations/{allocation['id']}/adjustments"
    ok(await client.post(adjust, json=enlarged, headers=FINANCE))
    contract = await sign_contract(client, bid, allocation, "8000.00", parties)
    cid, street = contract["id"], parties.street
    ok(await client.post(f"/contracts/{cid}/activation", json={}, headers=street))

    async def decide(delivery: dict[str, Any], decision: str, body: dict[str, Any]) -> None:
        path = f"/contracts/{cid}/deliveries/{delivery['id']}/{decision}"
        ok(await client.post(path, json=body, headers=street))

    async def pay(reference: str, amount: str) -> None:
        body = {"reference": reference, "amount": cny(amount)}
        ok(await client.post(f"/contracts/{cid}/payments", json=body, headers=street))

    first = await deliver(client, contract, "2000.00")
    await decide(first, "acceptance", {})
    await pay("T-1", "2000.00")
    await decide(await deliver(client, contract, "500.00"), "rejection", {"reason": "no sheets"})
    mistaken = await deliver(client, contract, "1000.00")
    await decide(mistaken, "acceptance", {})
    await decide(mistaken, "acceptance-reversal", {"reason": "visits were double-counted"})
    await decide(await deliver(client, contract, "1500.00"), "acceptance", {})
    await pay("T-2", "1500.00")
    reversal = {"reason": "returned by the bank"}
    ok(await client.post(f"/contracts/{cid}/payments/T-2/reversal", json=reversal, headers=street))
    await pay("T-3", "1500.00")
    ok(await client.post(f"/contracts/{cid}/completion", json={}, headers=street))

    grant = await award_grant(client, bid, allocation, "3000.00", parties)
    await disburse(client, grant, "GK-1", "1000.00")
    await report_use(client, grant, "800.00")
    ok(await client.post(f"/grants/{grant['id']}/closure", json={}, headers=grantor_of(grant)))
    return {"budget_id": bid, "contract_id": cid, "grant_id": grant["id"]}


async def reconciled(client: httpx.AsyncClient) -> Reconciliation:
    """The reconciliation, as an auditor asks for it."""
    response = await client.get("/audit/reconcile", headers=AUDITOR)
    return Reconciliation.model_validate(ok(response, 200))


def ref_of(entry: FeedEntry) -> EventRef:
    """How a violation names a feed entry."""
    return EventRef.model_validate(entry.model_dump(include=set(EventRef.model_fields)))


async def test_an_honest_ledger_reconciles_with_every_check_run(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    await tell_the_story(ledger, parties)
    entries = await read_whole_feed(ledger, limit=100)
    # The story takes every flow whose money the checks follow.
    assert {
        "budget.adjusted",
        "allocation.adjusted",
        "commitment.released",
        "delivery.rejected",
        "delivery.acceptance_reversed",
        "payment.reversed",
        "contract.completed",
        "grant.tranche_disbursed",
        "grant.closed",
    } <= {e.event_type for e in entries}

    report = await reconciled(ledger)

    assert report.violations == []
    assert (report.checked_through, report.events_checked) == (len(entries), len(entries))
    ran = {check.rule: (check.ran, check.violations) for check in report.checks}
    assert {rule: ran[rule] for rule in CHECKS} == dict.fromkeys(CHECKS, (True, 0))
    # The checks beside the feed are listed too, run or not, so a reader knows what was not.
    assert set(ran) == {*CHECKS, MERKLE, FLOW_MODEL}
    assert ran[MERKLE] == ran[FLOW_MODEL] == (False, 0)


@pytest.mark.parametrize("accept", [{}, NDJSON], ids=["json", "ndjson"])
async def test_overseers_may_reconcile_and_no_one_else(
    ledger: httpx.AsyncClient, accept: dict[str, str]
) -> None:
    for role in Role:
        headers = acting(role, UUID(int=7)) | accept
        response = await ledger.get("/audit/reconcile", headers=headers)
        if role in (Role.FINANCE, Role.AUDITOR, Role.SERVICE):
            assert response.status_code == 200, (role, response.text)
            continue
        # Refused before any line is sent, so the status says so.
        assert response.status_code == 403, (role, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "reconcile" in response.json()["detail"]
    assert (await ledger.get("/audit/reconcile", headers=accept)).status_code == 401


async def test_asked_for_lines_a_reconciliation_says_how_far_it_has_gone_then_answers(
    ledger_app: FastAPI,
    ledger: httpx.AsyncClient,
    parties: Parties,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await tell_the_story(ledger, parties)
    gate: Gate = ledger_app.state.large_reads
    slots_held: list[int] = []

    def slow_check(head: int) -> list[Violation]:
        # Long enough for a few progress lines while the checks beside the feed run.
        slots_held.append(gate.holding)
        time.sleep(0.2)
        return []

    ledger_app.dependency_overrides[audit_reconcile.flow_check] = lambda: slow_check
    monkeypatch.setattr(progress_lines, "EVERY_SECONDS", 0.02)
    streamed = await ledger.get("/audit/reconcile", headers=AUDITOR | NDJSON)

    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"] == "application/x-ndjson"
    # The large-read slot is held while the answer streams, not only while the route ran.
    assert slots_held == [1]
    assert gate.holding == 0
    lines = [ReconciliationLine.model_validate_json(line) for line in streamed.text.splitlines()]
    *progress, last = lines
    assert (last.progress, last.problem) == (None, None)
    answer = last.reconciliation
    assert answer is not None
    assert answer == await reconciled(ledger)
    # Each progress line holds progress alone: the replay done, the checks beside it running.
    assert progress, "no progress line while the checks ran"
    assert {(line.reconciliation, line.problem) for line in progress} == {(None, None)}
    assert {line.progress for line in progress} == {
        ReconciliationProgress(
            stage="checking", replayed_through=answer.checked_through, head=answer.checked_through
        )
    }


async def test_the_lines_are_documented_beside_the_answer(ledger: httpx.AsyncClient) -> None:
    document = (await ledger.get("/openapi.json")).json()
    content = document["paths"]["/audit/reconcile"]["get"]["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Reconciliation"}
    line = content["application/x-ndjson"]["schema"]
    assert line == {"$ref": "#/components/schemas/ReconciliationLine"}
    schemas = document["components"]["schemas"]
    assert set(schemas["ReconciliationLine"]["properties"]) == {
        "progress",
        "reconciliation",
        "problem",
    }
    assert "ReconciliationProgress" in schemas


async def test_reconciliation_reports_its_progress_page_by_page(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    await tell_the_story(ledger, parties)
    heard: list[ReconciliationProgress] = []
    app: LedgerApplication = ledger_app.state.ledger
    answer = reconcile_ledger(app, by=AUDITOR_ACTOR, page_size=10, progress=heard.append)

    head = answer.checked_through
    assert [(p.stage, p.replayed_through) for p in heard] == [
        *(("replaying", through) for through in [*range(0, head, 10), head]),
        ("checking", head),
    ]
    assert {p.head for p in heard} == {head}


# --- a rogue operator ------------------------------------------------------------------------


THE_EVENT = " WHERE originator_id = %s AND originator_version = %s"


class Rogue:
    """Edits the events table directly, bypassing the ledger, as anyone with the database's
    credentials could: disabling any trigger meant to stop it, as such an operator could too."""

    def __init__(self, database_url: str, ledger: LedgerApplication) -> None:
        recorder: Any = ledger.recorder
        self.url = database_url
        self.table: str = recorder.events_table_name
        self.schema: str | None = (
            recorder.datastore.schema if isinstance(recorder, PostgresApplicationRecorder) else None
        )

    def rewrite(self, entry: FeedEntry, change: Callable[[dict[str, Any]], None]) -> None:
        """Change the stored state of one event, as JSON."""
        (row,) = self._run("SELECT state FROM {}" + THE_EVENT, self._key(entry))
        state = json.loads(bytes(row[0]))
        change(state)
        self.overwrite(entry, json.dumps(state).encode())

    def overwrite(self, entry: FeedEntry, state: bytes) -> None:
        """Replace the stored state of one event with any bytes."""
        self._run("UPDATE {} SET state = %s" + THE_EVENT, (state, *self._key(entry)), edits=1)

    def delete(self, entry: FeedEntry) -> None:
        """Remove one event's row."""
        self._run("DELETE FROM {}" + THE_EVENT, self._key(entry), edits=1)

    def _key(self, entry: FeedEntry) -> tuple[Any, int]:
        stream = entry.stream_id.hex if self.schema is None else entry.stream_id
        return stream, entry.stream_version

    def _run(self, statement: str, params: Sequence[Any], edits: int = 0) -> list[Any]:
        """The rows of a statement on the events table (`{}`), run with its triggers off."""
        if self.schema is None:
            rows, count = self._on_sqlite(statement, params)
        else:
            with psycopg.connect(self.url) as pg:
                table = sql.Identifier(self.schema, self.table)
                pg.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(table))
                cursor = pg.execute(sql.SQL(statement).format(table), params)
                rows, count = (cursor.fetchall() if cursor.description else []), cursor.rowcount
                pg.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(table))
        assert not edits or count == edits, (statement, count)
        return rows

    def _on_sqlite(self, statement: str, params: Sequence[Any]) -> tuple[list[Any], int]:
        path = make_url(self.url).database
        assert path is not None
        # SQLite cannot switch a trigger off: drop it, and put it back afterwards.
        with closing(sqlite3.connect(path)) as db, db:
            triggers = db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                (self.table,),
            ).fetchall()
            for name, _ in triggers:
                db.execute(f'DROP TRIGGER "{name}"')
            cursor = db.execute(statement.format(self.table).replace("%s", "?"), params)
            rows = cursor.fetchall()
            for _, create in triggers:
                db.execute(create)
            return rows, cursor.rowcount


def fen(name: str, value: int) -> Callable[[dict[str, Any]], None]:
    """A rewrite setting one of the event's amounts in fen, e.g. `amount_fen`."""
    return lambda state: state.update({name: value})


def dated(moment: str) -> Callable[[dict[str, Any]], None]:
    """A rewrite moving the event's business time."""
    return lambda state: state["occurred_at"].update(_data_=moment)


Find = Callable[[list[FeedEntry], Story], FeedEntry]


def the(event_type: str, stream: str, nth: int = 0, **payload: Any) -> Find:
    """The nth entry of a type in one of the story's streams, with payload fields as given."""

    def find(entries: list[FeedEntry], story: Story) -> FeedEntry:
        return [
            e
            for e in entries
            if e.event_type == event_type
            and str(e.stream_id) == story[f"{stream}_id"]
            and all(e.payload.get(k) == v for k, v in payload.items())
        ][nth]

    return find


@dataclass(frozen=True)
class Tampering:
    """One edit of the events table, and what the reconciliation must say about it: the rules
    broken, and of the first, how often it broke, words of its first message and exactly the
    events that message names."""

    name: str
    target: Find
    edit: Callable[[Rogue, FeedEntry], None]
    rules: Sequence[str]
    says: str
    names: Sequence[Find]
    times: int = 1

    def __str__(self) -> str:
        return self.name


PAYMENT_T3, PAYMENT_T1 = (the("payment.recorded", "contract", reference=r) for r in ("T-3", "T-1"))
TAMPERINGS = [
    Tampering(
        "payment-enlarged",
        PAYMENT_T3,
        lambda rogue, entry: rogue.rewrite(entry, fen("amount_fen", 2500_00)),
        ["paid-exceeds-accepted"],
        "contract {contract_id}: paid 4,500.00 exceeds accepted 3,500.00 by 1,000.00",
        # The payment that broke the rule, and the acceptance that last set what it broke.
        [the("delivery.accepted", "contract", nth=2), PAYMENT_T3],
    ),
    Tampering(
        "acceptance-shrunk",
        the("delivery.accepted", "contract", nth=2),
        lambda rogue, entry: rogue.rewrite(entry, fen("accepted_fen", 500_00)),
        ["paid-exceeds-accepted"],
        "contract {contract_id}: paid 3,500.00 exceeds accepted 2,500.00 by 1,000.00",
        [the("delivery.accepted", "contract", nth=2), the("payment.recorded", "contract", nth=1)],
        # Broken by T-2, mended by its reversal, broken again by T-3: each breach is reported.
        times=2,
    ),
    Tampering(
        "allocation-enlarged",
        the("allocation.made", "budget"),
        lambda rogue, entry: rogue.rewrite(entry, fen("amount_fen", 40_000_000_00)),
        ["allocations-exceed-appropriation"],
        "budget {budget_id}: allocated 40,000,000.00 exceeds appropriation 31,850,000.00 by "
        "8,150,000.00",
        [the("budget.adjusted", "budget"), the("allocation.made", "budget")],
    ),
    Tampering(
        "commitment-enlarged",
        the("commitment.made", "budget"),
        lambda rogue, entry: rogue.rewrite(entry, fen("amount_fen", 200_000_00)),
        ["commitments-exceed-allocation", "commitment-differs-from-holder"],
        "committed 200,000.00 exceeds allocation 100,000.00 by 100,000.00",
        [the("allocation.adjusted", "budget"), the("commitment.made", "budget")],
    ),
    Tampering(
        "contract-value-lowered",
        the("contract.signed", "contract"),
        lambda rogue, entry: rogue.rewrite(entry, fen("value_fen", 3000_00)),
        ["accepted-exceeds-contract-value", "commitment-differs-from-holder"],
        "contract {contract_id}: accepted 3,500.00 exceeds value 3,000.00 by 500.00",
        [the("contract.signed", "contract"), the("delivery.accepted", "contract", nth=2)],
    ),
    Tampering(
        "payment-backdated",
        PAYMENT_T1,
        lambda rogue, entry: rogue.rewrite(entry, dated(BACKDATED)),
        ["payment-before-acceptance"],
        f"payment 'T-1' of 2,000.00 is dated {BACKDATED}, when 2,000.00 had been paid against "
        "0.00 accepted; 1 acceptance(s) that cover it are dated later",
        [the("delivery.accepted", "contract"), PAYMENT_T1],
    ),
    Tampering(
        "tranche-enlarged",
        the("grant.tranche_disbursed", "grant"),
        lambda rogue, entry: rogue.rewrite(entry, fen("amount_fen", 5000_00)),
        ["disbursed-exceeds-grant"],
        "grant {grant_id}: disbursed 5,000.00 exceeds value 3,000.00 by 2,000.00",
        [the("grant.awarded", "grant"), the("grant.tranche_disbursed", "grant")],
    ),
    Tampering(
        "event-garbled",
        the("delivery.rejected", "contract"),
        lambda rogue, entry: rogue.overwrite(entry, b"{not json"),
        ["event-unreadable"],
        "cannot be read as a feed entry: MapperDeserialisationError",
        [the("delivery.rejected", "contract")],
    ),
]


@pytest.mark.parametrize("tampering", TAMPERINGS, ids=str)
async def test_each_edit_behind_the_ledgers_back_is_reported_with_its_event(
    ledger: httpx.AsyncClient,
    ledger_app: FastAPI,
    database_url: str,
    parties: Parties,
    tampering: Tampering,
) -> None:
    story = await tell_the_story(ledger, parties)
    entries = await read_whole_feed(ledger, limit=100)
    target = tampering.target(entries, story)
    tampering.edit(Rogue(database_url, ledger_app.state.ledger), target)

    report = await reconciled(ledger)

    assert sorted({v.rule for v in report.violations}) == sorted(tampering.rules)
    first = next(v for v in report.violations if v.rule == tampering.rules[0])
    assert tampering.says.format(**story) in first.message
    # The edited event is named as the feed names it, whatever its state now says.
    assert first.events == [ref_of(find(entries, story)) for find in tampering.names]
    counts = {check.rule: check.violations for check in report.checks}
    assert {rule for rule, count in counts.items() if count} == set(tampering.rules)
    assert counts[tampering.rules[0]] == tampering.times


async def test_a_deleted_event_leaves_a_hole_in_the_feed_and_in_its_stream(
    ledger: httpx.AsyncClient, ledger_app: FastAPI, database_url: str, parties: Parties
) -> None:
    story = await tell_the_story(ledger, parties)
    entries = await read_whole_feed(ledger, limit=100)
    # A rejection moves no money: only the feed's and the stream's numbering can show it gone.
    gone = the("delivery.rejected", "contract")(entries, story)
    before, after = entries[gone.position - 2], entries[gone.position]
    assert (before.stream_id, after.stream_id) == (gone.stream_id, gone.stream_id)
    app: LedgerApplication = ledger_app.state.ledger
    Rogue(database_url, app).delete(gone)

    report = await reconciled(ledger)

    assert report.checked_through == len(entries)
    assert report.events_checked == len(entries) - 1
    hole, jump = report.violations
    assert (hole.rule, hole.message) == (
        "feed-not-dense",
        f"feed position {gone.position} is missing",
    )
    assert hole.events == [ref_of(before), ref_of(after)]
    assert jump.rule == "stream-versions-not-contiguous"
    assert jump.message == (
        f"contract {gone.stream_id} goes from version {before.stream_version} (position "
        f"{before.position}) to version {after.stream_version} (position {after.position}), "
        f"not to version {gone.stream_version}"
    )
    assert jump.events == [ref_of(before), ref_of(after)]
    # However the feed is paged, the hole is found once, between the same two events.
    for page_size in (1, 2, gone.position - 1, gone.position):
        assert reconcile_ledger(app, by=AUDITOR_ACTOR, page_size=page_size) == report


# --- the checkpoint hook -----------------------------------------------------------------------


async def test_the_checkpoint_check_runs_when_given_and_its_findings_are_reported(
    ledger: httpx.AsyncClient, ledger_app: FastAPI, parties: Parties
) -> None:
    await tell_the_story(ledger, parties)
    app: LedgerApplication = ledger_app.state.ledger
    head = app.reads.head()
    finding = Violation(rule=MERKLE, message="root differs", events=[])

    class Merkle:
        """Handed what the replay reads, as the log's verification is."""

        def __init__(self) -> None:
            self.seen: list[int] = []
            self.asked: list[int] = []

        def see(self, item: Item) -> None:
            self.seen.append(item.position if isinstance(item, FeedEntry) else item.ref.position)

        def violations(self, through: int) -> list[Violation]:
            self.asked.append(through)
            return [finding]

    merkle = Merkle()
    report = reconcile(feed_pages(app), head=head, merkle=merkle, page_size=7)

    assert merkle.seen == list(range(1, head + 1))  # every entry, once, in order
    assert merkle.asked == [head]
    assert report.violations == [finding]
    (check,) = [c for c in report.checks if c.rule == MERKLE]
    assert (check.ran, check.violations) == (True, 1)
    unchecked = reconcile(feed_pages(app), head=head)
    (check,) = [c for c in unchecked.checks if c.rule == MERKLE]
    assert (check.ran, check.violations) == (False, 0)
