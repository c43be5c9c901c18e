"""The funding-flow read model: the same answers as a replay, rebuildable, and checked."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.reconcile import FLOW_MODEL
from services.ledger.store.flow_rows import MODEL_NAME
from services.ledger.store.tables import (
    FLOW_RECORDS_TABLE,
    FLOW_TOTALS_TABLE,
    READ_MODELS_TABLE,
    RETIRED_FLOW_TABLES,
)
from tests.integration.test_audit_flow import story_of
from tests.integration.test_reconcile import Rogue, reconciled, tell_the_story, the
from tests.support.actors import AUDITOR
from tests.support.catalog import Parties
from tests.support.feeds import read_whole_feed
from tests.support.ledger_api import feed_head

pytestmark = pytest.mark.asyncio

# Business times across the dated story: before it, inside it, between a payment and its
# reversal, and after it; None is the state as recorded.
AS_OF = (
    None,
    "2014-04-01T00:00:00+08:00",
    "2014-06-30T23:59:59+08:00",
    "2014-07-15T00:00:00+08:00",
    "2015-01-01T00:00:00+08:00",
)


async def answer(ledger: httpx.AsyncClient, budget_id: str, **params: str) -> tuple[int, Any]:
    """Status and body of a flow question, but for `source`, which says where it came from."""
    response = await ledger.get(f"/audit/budgets/{budget_id}/flow", params=params, headers=AUDITOR)
    body = response.json()
    source = body.pop("source", None)
    if response.status_code == 200:
        assert source == params.get("source", "read-model")
    return response.status_code, body


async def assert_same_as_replay(ledger: httpx.AsyncClient, budget_id: str) -> None:
    """At every position the feed has had, and at each business time, both sources agree."""
    for position in range(await feed_head(ledger) + 1):
        for as_of in AS_OF:
            params = {"known_at": str(position)} | ({"as_of": as_of} if as_of else {})
            kept = await answer(ledger, budget_id, **params)
            replayed = await answer(ledger, budget_id, **params, source="replay")
            assert kept == replayed, (position, as_of)


async def test_the_read_model_answers_as_a_replay_does_at_every_position_and_date(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    dated = await story_of(ledger, parties, catalog_url)
    everything = await tell_the_story(ledger, parties)
    for budget_id in (dated.budget_id, everything["budget_id"]):
        await assert_same_as_replay(ledger, budget_id)
    # Before a budget was opened, both sources say so the same way.
    early = await answer(ledger, everything["budget_id"], known_at=str(dated.position))
    assert early[0] == 404
    assert "was not yet recorded" in early[1]["detail"]


async def test_the_model_records_the_position_it_reflects_and_keeps_up_with_writes(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    model: FlowModel = ledger_app.state.flow_model
    story = await tell_the_story(ledger, parties)
    status, flow = await answer(ledger, story["budget_id"])
    assert status == 200
    # The answer reflects the head, and the model has reached it (a read brings it there).
    assert flow["position"] == await feed_head(ledger)
    assert model.position() >= flow["position"]


async def test_a_rebuilt_model_gives_the_same_answers(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    model: FlowModel = ledger_app.state.flow_model
    story = await story_of(ledger, parties, catalog_url)
    before = [await answer(ledger, story.budget_id, as_of=a) for a in AS_OF if a]
    before.append(await answer(ledger, story.budget_id))
    assert model.rebuild() == await feed_head(ledger)
    after = [await answer(ledger, story.budget_id, as_of=a) for a in AS_OF if a]
    after.append(await answer(ledger, story.budget_id))
    assert after == before


async def test_the_collector_is_held_off_while_entries_are_applied_and_given_back_after(
    ledger_app: FastAPI,
    ledger: httpx.AsyncClient,
    parties: Parties,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model: FlowModel = ledger_app.state.flow_model
    await tell_the_story(ledger, parties)
    applying: list[bool] = []
    moves = model._moves

    def watched(row: Any) -> Any:
        applying.append(gc.isenabled())
        return moves(row)

    monkeypatch.setattr(model, "_moves", watched)
    gc.enable()
    head = await feed_head(ledger)
    assert model.rebuild() == head
    # Every entry was applied with the collector off, and it is on again for the process.
    assert applying == [False] * head
    assert gc.isenabled()


async def test_two_processes_catching_up_at_once_keep_one_model(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    story = await story_of(ledger, parties, catalog_url)
    ledger_app.state.flow_model.rows.reset()
    # Two followers of one database, as two replicas of the ledger would have.
    first, second = FlowModel(ledger_app.state.ledger), FlowModel(ledger_app.state.ledger)
    reached = await asyncio.gather(
        asyncio.to_thread(first.catch_up), asyncio.to_thread(second.catch_up)
    )
    assert list(reached) == [await feed_head(ledger)] * 2
    await assert_same_as_replay(ledger, story.budget_id)


async def test_a_model_kept_by_an_earlier_version_is_derived_again(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    story = await story_of(ledger, parties, catalog_url)
    before = await answer(ledger, story.budget_id)
    rows = ledger_app.state.flow_model.rows
    read_models = rows._table(READ_MODELS_TABLE)
    retired = [rows._table(table) for table in RETIRED_FLOW_TABLES]
    # What a database kept by earlier versions holds: their tables, the model under its old
    # names at the head, and totals this version would not have written.
    for statement, params in (
        (f"DELETE FROM {read_models} WHERE name = ?", [MODEL_NAME]),
        (f"INSERT INTO {read_models} (name, position) VALUES (?, ?)", ["budget-flow", 9]),
        (f"INSERT INTO {read_models} (name, position) VALUES (?, ?)", ["budget-flow-2", 9]),
        *((f"CREATE TABLE {table} (position INTEGER)", []) for table in retired),
    ):
        with rows._datastore.transaction(commit=True) as cursor:
            cursor.execute(rows._sql(statement), params)
    edit_behind_the_ledgers_back(ledger_app.state.flow_model, "UPDATE {table} SET paid = paid + 1")

    upgraded = FlowModel(ledger_app.state.ledger)
    assert upgraded.position() == 0
    assert upgraded.catch_up() == await feed_head(ledger)
    assert await answer(ledger, story.budget_id) == before
    await assert_same_as_replay(ledger, story.budget_id)
    names = {r["name"] for r in rows._rows(f"SELECT name FROM {read_models}")}
    assert MODEL_NAME in names
    assert "budget-flow" not in names
    assert "budget-flow-2" not in names
    for table, name in zip(retired, RETIRED_FLOW_TABLES, strict=True):
        with pytest.raises(Exception, match=name):
            rows._rows(f"SELECT * FROM {table}")


def edit_behind_the_ledgers_back(model: FlowModel, statement: str, *params: str) -> None:
    """Run a statement on the read model's totals as someone with the database's credentials."""
    table = model.rows._table(FLOW_TOTALS_TABLE)
    model.rows._write(statement.format(table=table), [params])


# (where in the flow, the node key's pattern, the figure): a payment made to look larger than
# the treasury paid, below a contract; a contract's own acceptance, above its deliveries.
EDITS = {"a payment": ("%/payment/%", "paid"), "a contract": ("%/contract/%", "accepted")}


@pytest.mark.parametrize("edited_node", sorted(EDITS))
async def test_an_edited_read_model_is_reported_and_mended_by_a_rebuild(
    ledger_app: FastAPI,
    ledger: httpx.AsyncClient,
    parties: Parties,
    catalog_url: str,
    database_url: str,
    edited_node: str,
) -> None:
    model: FlowModel = ledger_app.state.flow_model
    story = await story_of(ledger, parties, catalog_url)
    honest = await reconciled(ledger)
    assert honest.violations == []
    assert [(c.ran, c.violations) for c in honest.checks if c.rule == FLOW_MODEL] == [(True, 0)]
    pattern, figure = EDITS[edited_node]
    edit_behind_the_ledgers_back(
        model,
        f"UPDATE {{table}} SET {figure} = {figure} + 100000 WHERE node_key LIKE ? AND {figure} > 0",
        pattern,
    )
    _, edited = await answer(ledger, story.budget_id)
    assert edited != (await answer(ledger, story.budget_id, source="replay"))[1]

    report = await reconciled(ledger)
    (violation,) = report.violations
    assert violation.rule == FLOW_MODEL
    assert f"budget {story.budget_id}" in violation.message
    assert f"differs in {figure}" in violation.message
    assert "rebuild-read-models" in violation.message
    (check,) = [c for c in report.checks if c.rule == FLOW_MODEL]
    assert (check.ran, check.violations) == (True, 1)

    # The operator's remedy, as the violation names it: derive the model again from the feed.
    environment = os.environ | {"LEDGER_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "services.ledger", "rebuild-read-models"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"rebuilt through feed position {await feed_head(ledger)}" in done.stdout
    assert (await reconciled(ledger)).violations == []
    await assert_same_as_replay(ledger, story.budget_id)


async def test_a_node_slipped_into_the_read_model_under_a_stream_no_one_holds_is_reported(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    model: FlowModel = ledger_app.state.flow_model
    story = await story_of(ledger, parties, catalog_url)
    assert (await reconciled(ledger)).violations == []
    # A copy of a payment, under a stream no contract or grant of the budget is: it hangs from
    # the same contract, so a whole flow read from the model shows it.
    stray = str(uuid4())
    model.catch_up()  # so that the payment is there to copy
    records = model.rows._table(FLOW_RECORDS_TABLE)
    model.rows._write(
        f"INSERT INTO {records} (position, seq, budget_id, stream_id, node_key, kind, "
        "parent_key, created, occurred_at, state, details) "
        "SELECT position, seq + 1000, budget_id, ?, ? || substr(node_key, 37), kind, "
        f"parent_key, created, occurred_at, state, details FROM {records} "
        "WHERE node_key LIKE ? ORDER BY position LIMIT 1",
        [[stray, stray, "%/payment/%"]],
    )

    report = await reconciled(ledger)
    (violation,) = report.violations
    assert violation.rule == FLOW_MODEL
    assert f"budget {story.budget_id}" in violation.message
    assert "the read model has a payment" in violation.message
    assert "the events do not" in violation.message


@pytest.mark.parametrize("prefix", ["another stream's id", "no id at all"])
async def test_a_record_whose_key_no_longer_names_its_stream_is_reported_not_a_failure(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties, catalog_url: str, prefix: str
) -> None:
    model: FlowModel = ledger_app.state.flow_model
    story = await story_of(ledger, parties, catalog_url)
    # A payment's creation edited in place: kept under its contract's stream still, but with a
    # key that begins with another stream's id, or with no id at all.
    edited = str(uuid4()) if prefix == "another stream's id" else "edited"
    model.catch_up()  # so that the record is there to edit
    records = model.rows._table(FLOW_RECORDS_TABLE)
    model.rows._write(
        f"UPDATE {records} SET node_key = ? || substr(node_key, 37) WHERE position = "
        f"(SELECT min(position) FROM {records} WHERE node_key LIKE ? AND created = 1) "
        "AND node_key LIKE ?",
        [[edited, "%/payment/%", "%/payment/%"]],
    )

    report = await reconciled(ledger)
    (violation,) = report.violations
    assert violation.rule == FLOW_MODEL
    assert f"budget {story.budget_id}" in violation.message
    # A whole flow read from the model still answers: with the payment's figures lost to the
    # edit, so not as the replay does.
    kept = await answer(ledger, story.budget_id, depth="all")
    assert kept[0] == 200
    assert kept != await answer(ledger, story.budget_id, depth="all", source="replay")


async def test_a_model_that_cannot_follow_a_garbled_event_is_reported_as_not_checked(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties, database_url: str
) -> None:
    model: FlowModel = ledger_app.state.flow_model
    story = await tell_the_story(ledger, parties)
    entries = await read_whole_feed(ledger, limit=100)
    garbled = the("delivery.rejected", "contract")(entries, story)
    Rogue(database_url, ledger_app.state.ledger).overwrite(garbled, b"{not json")
    # The model must derive its rows again, through the event it can no longer read.
    model.rows.reset()
    model._cache.clear()

    report = await reconciled(ledger)

    # The replay names the event (and the log's check, once its leaf was hashed); the flow
    # check says it did not run, not that it passed.
    rules = {v.rule for v in report.violations}
    assert "event-unreadable" in rules
    assert FLOW_MODEL not in rules
    ran = {check.rule: (check.ran, check.violations) for check in report.checks}
    assert ran[FLOW_MODEL] == (False, 0)
