"""Reads that build their whole answer in memory wait for one of a few slots, and past their wait
are refused with a 503 that says when to come back; small reads never wait."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.common.gate import Gate
from services.ledger.main import create_app
from services.ledger.settings import LedgerSettings
from tests.support.actors import AUDITOR
from tests.support.catalog import Parties
from tests.support.ledger_api import allocate, open_budget, sign_contract

pytestmark = pytest.mark.asyncio

WAIT_SECONDS = 0.2


@pytest.fixture
def ledger_app(database_url: str, catalog_url: str) -> FastAPI:
    """A ledger that builds one large answer at a time, and has callers wait briefly."""
    settings = LedgerSettings(
        database_url=database_url,
        catalog_url=catalog_url,
        large_reads=1,
        large_read_wait_seconds=WAIT_SECONDS,
    )
    return create_app(settings)


async def a_budget_with_a_contract(ledger: httpx.AsyncClient, parties: Parties) -> str:
    budget = await open_budget(ledger, "10000.00")
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    await sign_contract(ledger, budget["id"], allocation, "500.00", parties)
    return str(budget["id"])


def large_reads_of(budget_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    flow = f"/audit/budgets/{budget_id}/flow"
    return {
        "whole flow": (flow, {}),
        "whole flow as CSV": (f"{flow}.csv", {}),
        "flow replayed to its contracts": (flow, {"source": "replay", "depth": "contracts"}),
        "reconciliation": ("/audit/reconcile", {}),
    }


async def test_while_the_slots_are_taken_large_reads_are_refused_and_small_ones_answered(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget_id = await a_budget_with_a_contract(ledger, parties)
    gate: Gate = ledger_app.state.large_reads
    async with gate.slot("a read the test holds"):
        for what, (path, params) in large_reads_of(budget_id).items():
            refused = await ledger.get(path, params=params, headers=AUDITOR)
            assert refused.status_code == 503, (what, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"] == "1"
            problem = refused.json()
            assert problem["type"].endswith(":too-busy")
            assert "already building 1 large answer" in problem["detail"]
        small = await ledger.get(
            f"/audit/budgets/{budget_id}/flow", params={"depth": "contracts"}, headers=AUDITOR
        )
        assert small.status_code == 200, small.text
        assert [child["kind"] for child in small.json()["budget"]["children"]] == ["allocation"]
    # Once the slot is free, every large read is answered again.
    for what, (path, params) in large_reads_of(budget_id).items():
        answered = await ledger.get(path, params=params, headers=AUDITOR)
        assert answered.status_code == 200, (what, answered.text)


async def test_large_reads_arriving_together_each_wait_their_turn(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget_id = await a_budget_with_a_contract(ledger, parties)
    gate: Gate = ledger_app.state.large_reads
    gate.wait_seconds = 30  # long enough for every read before it
    flow = f"/audit/budgets/{budget_id}/flow"
    answers = await asyncio.gather(*(ledger.get(flow, headers=AUDITOR) for _ in range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert len({answer.content for answer in answers}) == 1
    assert gate.holding == 0


async def test_the_refusal_and_when_to_retry_are_documented(ledger: httpx.AsyncClient) -> None:
    document = (await ledger.get("/openapi.json")).json()
    for path, method in (
        ("/audit/budgets/{budget_id}/flow", "get"),
        ("/audit/budgets/{budget_id}/flow.csv", "get"),
        ("/audit/reconcile", "get"),
    ):
        busy = document["paths"][path][method]["responses"]["503"]
        assert "LEDGER_LARGE_READS" in busy["description"], path
        assert "Retry-After" in busy["headers"], path
        assert busy["content"]["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }, path


async def test_a_whole_flow_kept_from_an_earlier_read_needs_no_slot(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget_id = await a_budget_with_a_contract(ledger, parties)
    flow = f"/audit/budgets/{budget_id}/flow"
    first = await ledger.get(flow, headers=AUDITOR)
    gate: Gate = ledger_app.state.large_reads
    async with gate.slot("a read the test holds"):
        kept = await ledger.get(flow, headers=AUDITOR)
        assert kept.status_code == 200, kept.text
        assert kept.content == first.content
        fresh = await ledger.get(flow, headers={**AUDITOR, "Cache-Control": "no-cache"})
        assert fresh.status_code == 503, fresh.text
