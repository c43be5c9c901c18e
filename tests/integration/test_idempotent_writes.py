"""Idempotency-Key on the services' own writes: a retry answers as the first, never writes twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from proto.actor import Role
from services.catalog.main import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from tests.support.actors import CIVIL_AFFAIRS, FINANCE, acting
from tests.support.catalog import Parties
from tests.support.inprocess import client_for
from tests.support.ledger_api import (
    allocate,
    cny,
    deliver,
    feed_head,
    ok,
    open_budget,
    sign_contract,
)

pytestmark = pytest.mark.asyncio

BUDGET = {
    "year": 2014,
    "purpose": "push-down services",
    "title": "Wuhou district 2014: services pushed down to communities",
    "sources": [{"kind": "district_finance", "name": "district", "amount": cny("30850000.00")}],
    "occurred_at": "2014-01-01T09:00:00+08:00",
}


def keyed(caller: dict[str, str], key: str) -> dict[str, str]:
    """The caller's headers with an Idempotency-Key."""
    return {**caller, "Idempotency-Key": key}


async def test_a_retried_create_answers_as_the_first_and_writes_once(
    ledger: httpx.AsyncClient,
) -> None:
    first = await ledger.post("/budgets", json=BUDGET, headers=keyed(FINANCE, "budget-2014-1"))
    assert first.status_code == 201, first.text
    again = await ledger.post("/budgets", json=BUDGET, headers=keyed(FINANCE, "budget-2014-1"))

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await feed_head(ledger) == 1
    assert len(ok(await ledger.get("/budgets", headers=FINANCE), 200)["items"]) == 1


async def test_the_same_key_with_another_body_is_refused_and_writes_nothing(
    ledger: httpx.AsyncClient,
) -> None:
    ok(await ledger.post("/budgets", json=BUDGET, headers=keyed(FINANCE, "k-1")))
    other = {**BUDGET, "title": "another budget"}
    response = await ledger.post("/budgets", json=other, headers=keyed(FINANCE, "k-1"))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "different request" in response.json()["detail"]
    assert await feed_head(ledger) == 1


async def test_concurrent_identical_requests_write_once(ledger: httpx.AsyncClient) -> None:
    async def attempt() -> httpx.Response:
        return await ledger.post("/budgets", json=BUDGET, headers=keyed(FINANCE, "race"))

    responses = await asyncio.gather(*(attempt() for _ in range(8)))

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = [r.json()["id"] for r in responses if r.status_code == 201]
    assert created
    assert len(set(created)) == 1
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["retry-after"] == "1"
        assert "still being processed" in refused.json()["detail"]
    assert len(ok(await ledger.get("/budgets", headers=FINANCE), 200)["items"]) == 1
    assert await feed_head(ledger) == 1


async def test_keys_belong_to_their_caller(ledger: httpx.AsyncClient) -> None:
    other_finance = acting(Role.FINANCE, "7d0f5a8e-1f3b-4c55-9a1e-2014f1a4ce02")
    mine = ok(await ledger.post("/budgets", json=BUDGET, headers=keyed(FINANCE, "shared")))
    theirs = ok(await ledger.post("/budgets", json=BUDGET, headers=keyed(other_finance, "shared")))

    assert mine["id"] != theirs["id"]
    assert mine["holder_id"] != theirs["holder_id"]
    assert await feed_head(ledger) == 2


async def test_a_refused_request_frees_its_key_for_the_corrected_one(
    ledger: httpx.AsyncClient,
) -> None:
    wrong = {**BUDGET, "year": 1066}
    refused = await ledger.post("/budgets", json=wrong, headers=keyed(FINANCE, "fix-me"))
    assert refused.status_code == 422
    corrected = await ledger.post("/budgets", json=BUDGET, headers=keyed(FINANCE, "fix-me"))

    assert corrected.status_code == 201, corrected.text
    assert await feed_head(ledger) == 1


async def test_a_retried_acceptance_is_replayed_not_refused_as_already_accepted(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "5000.00", parties)
    path = f"/contracts/{contract['id']}"
    ok(await ledger.post(f"{path}/activation", json={}, headers=parties.street))
    delivery = await deliver(ledger, contract, "1000.00")
    acceptance = f"{path}/deliveries/{delivery['id']}/acceptance"
    body: dict[str, Any] = {"score": 90, "occurred_at": "2014-06-10T10:00:00+08:00"}
    headers = keyed(parties.street, "accept-may")

    first = ok(await ledger.post(acceptance, json=body, headers=headers))
    before = await feed_head(ledger)
    again = await ledger.post(acceptance, json=body, headers=headers)
    without_key = await ledger.post(acceptance, json=body, headers=parties.street)

    assert (again.status_code, again.json()) == (201, first)
    assert without_key.status_code == 409  # the domain's answer to a second acceptance
    assert await feed_head(ledger) == before


async def test_a_bad_key_is_a_clear_400(ledger: httpx.AsyncClient) -> None:
    response = await ledger.post("/budgets", json=BUDGET, headers=keyed(FINANCE, "no spaces"))

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in response.json()["detail"]
    assert await feed_head(ledger) == 0


@pytest_asyncio.fixture
async def catalog(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_catalog(CatalogSettings(database_url=database_url))) as client:
        yield client


async def test_the_catalog_registers_once_under_one_key(catalog: httpx.AsyncClient) -> None:
    body = {"kind": "street_office", "name": "Cuqiao street office"}
    headers = keyed(CIVIL_AFFAIRS, "register-cuqiao")
    responses = await asyncio.gather(
        *(catalog.post("/organizations", json=body, headers=headers) for _ in range(5))
    )
    again = await catalog.post("/organizations", json=body, headers=headers)

    assert {r.status_code for r in responses} <= {201, 409}
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    listed = ok(await catalog.get("/organizations", headers=CIVIL_AFFAIRS), 200)["items"]
    assert [o["id"] for o in listed] == [again.json()["id"]]


async def test_a_body_over_the_limit_is_refused_before_anything_reads_it(
    catalog: httpx.AsyncClient,
) -> None:
    body = {"kind": "street_office", "name": "x" * 2_000_000}
    response = await catalog.post("/organizations", json=body, headers=CIVIL_AFFAIRS)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "1048576 bytes" in response.json()["detail"]
    assert ok(await catalog.get("/organizations", headers=CIVIL_AFFAIRS), 200)["items"] == []
