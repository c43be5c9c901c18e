"""Inputs the fuzzer once turned into 500s, or into a write then a 500: now clear refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote

import httpx
import pytest
import pytest_asyncio

from services.catalog.main import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from tests.support.actors import AUDITOR, CIVIL_AFFAIRS, FINANCE
from tests.support.catalog import Parties
from tests.support.inprocess import client_for
from tests.support.ledger_api import allocate, cny, deliver, ok, open_budget, sign_contract

pytestmark = pytest.mark.asyncio

HUGE = str(2**64)


@pytest_asyncio.fixture
async def catalog(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_catalog(CatalogSettings(database_url=database_url))) as client:
        yield client


async def test_a_total_past_the_largest_amount_is_refused_and_nothing_written(
    ledger: httpx.AsyncClient,
) -> None:
    sources = [
        {"kind": "other", "name": name, "amount": cny("810089604201743.00")} for name in "ab"
    ]
    response = await ledger.post(
        "/budgets",
        json={"year": 2014, "purpose": "p", "title": "t", "sources": sources},
        headers=FINANCE,
    )
    assert response.status_code == 422
    assert "above the largest amount the ledger records" in response.json()["detail"]
    assert ok(await ledger.get("/budgets", headers=FINANCE), 200)["items"] == []
    assert ok(await ledger.get("/events", headers=AUDITOR), 200)["head"] == 0


async def test_a_treasury_reference_in_any_script_is_recorded_and_located(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "1000.00", parties)
    street = parties.street
    ok(await ledger.post(f"/contracts/{contract['id']}/activation", json={}, headers=street))
    delivery = await deliver(ledger, contract, "10.00")
    acceptance = f"/contracts/{contract['id']}/deliveries/{delivery['id']}/acceptance"
    ok(await ledger.post(acceptance, json={}, headers=street))
    reference = "国库-2014-𝚣"
    response = await ledger.post(
        f"/contracts/{contract['id']}/payments",
        json={"reference": reference, "amount": cny("10.00")},
        headers=street,
    )
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert unquote(location).endswith(f"/payments/{reference}")
    assert ok(await ledger.get(location, headers=street), 200)["reference"] == reference


@pytest.mark.parametrize("path", ["/events", "/budgets", "/contracts", "/projects", "/grants"])
async def test_positions_and_cursors_past_any_database_are_422(
    ledger: httpx.AsyncClient, path: str
) -> None:
    params = {"after": HUGE} if path == "/events" else {"cursor": HUGE}
    response = await ledger.get(path, params=params, headers=AUDITOR)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_known_at_position_past_the_head_reads_everything(
    ledger: httpx.AsyncClient,
) -> None:
    budget = await open_budget(ledger)
    read = ok(
        await ledger.get(f"/budgets/{budget['id']}", params={"known_at": HUGE}, headers=FINANCE),
        200,
    )
    assert read["id"] == budget["id"]


@pytest.mark.parametrize("path", ["/organizations", "/items", "/platforms", "/events"])
async def test_catalog_refuses_huge_cursors_and_impossible_times(
    catalog: httpx.AsyncClient, path: str
) -> None:
    params = {"after": HUGE} if path == "/events" else {"cursor": HUGE}
    assert (await catalog.get(path, params=params, headers=CIVIL_AFFAIRS)).status_code == 422
    if path != "/events":
        year_one = await catalog.get(
            path, params={"as_of": "0001-01-01T00:00:04+04:00"}, headers=CIVIL_AFFAIRS
        )
        assert year_one.status_code == 422
        assert "not a time the ledger can record" in year_one.json()["detail"]
    registered = await catalog.post(
        "/organizations",
        json={"kind": "street_office", "name": "x", "occurred_at": "0001-01-01T00:00:04+04:00"},
        headers=CIVIL_AFFAIRS,
    )
    assert registered.status_code == 422
