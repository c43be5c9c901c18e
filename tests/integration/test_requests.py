"""Bad input gets a clear problem response; retries with the caller's references do not double."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.actors import FINANCE
from tests.support.catalog import Parties
from tests.support.grants_api import award_grant, grantor_of
from tests.support.ledger_api import allocate, cny, deliver, ok, open_budget, sign_contract

pytestmark = pytest.mark.asyncio

SOURCE = {"kind": "district_finance", "name": "Wuhou district finance"}


def budget_body(amount: Any) -> dict[str, Any]:
    return {
        "year": 2014,
        "purpose": "push-down services",
        "title": "t",
        "sources": [{**SOURCE, "amount": {"amount": amount, "currency": "CNY"}}],
    }


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (30850000.0, "not a JSON number"),
        ("-1.00", "must not be negative"),
        ("1.001", "at most two decimals"),
    ],
)
async def test_bad_money_is_a_422_naming_the_field(
    ledger: httpx.AsyncClient, amount: Any, reason: str
) -> None:
    response = await ledger.post("/budgets", json=budget_body(amount), headers=FINANCE)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    [param] = problem["invalid-params"]
    assert param["name"] == "body.sources[0].amount.amount"
    assert reason in param["reason"]
    assert reason in problem["detail"]
    assert ok(await ledger.get("/budgets", headers=FINANCE), 200)["items"] == []


async def test_unknown_fields_and_naive_times_are_refused(ledger: httpx.AsyncClient) -> None:
    body = budget_body("1.00")
    response = await ledger.post(
        "/budgets", json={**body, "approved_by": "someone"}, headers=FINANCE
    )
    assert response.status_code == 422
    assert response.json()["invalid-params"][0]["name"] == "body.approved_by"

    response = await ledger.post(
        "/budgets", json={**body, "occurred_at": "2014-01-01T09:00:00"}, headers=FINANCE
    )
    assert response.status_code == 422
    assert "timezone" in response.json()["detail"]

    budget = await open_budget(ledger)
    url = f"/budgets/{budget['id']}"
    response = await ledger.get(url, params={"as_of": "2014-05-01T00:00:00"}, headers=FINANCE)
    assert response.status_code == 422
    response = await ledger.get(url, params={"known_at": "yesterday"}, headers=FINANCE)
    assert response.status_code == 422
    assert "feed position" in response.json()["detail"]


async def test_retried_creates_find_the_first_record(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    first = await open_budget(ledger, reference="WH-2014-PUSHDOWN")
    again = await ledger.post(
        "/budgets",
        json={
            "reference": "WH-2014-PUSHDOWN",
            "year": 2014,
            "purpose": "push-down services",
            "title": "Wuhou district 2014: services pushed down to communities",
            "sources": [{**SOURCE, "amount": cny("30850000.00")}],
        },
        headers=FINANCE,
    )
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    different = await ledger.post(
        "/budgets",
        json={
            "reference": "WH-2014-PUSHDOWN",
            "year": 2014,
            "purpose": "push-down services",
            "title": "t",
            "sources": [{**SOURCE, "amount": cny("1.00")}],
        },
        headers=FINANCE,
    )
    assert different.status_code == 409
    assert "already used" in different.json()["detail"]

    allocation = await allocate(ledger, first["id"], "5000.00", parties.street_office_id)
    street = allocation["street_office_id"]
    retried = await ledger.post(
        f"/budgets/{first['id']}/allocations",
        json={"street_office_id": street, "amount": cny("5000.00")},
        headers=FINANCE,
    )
    assert retried.status_code == 200
    assert len(retried.json()["allocations"]) == 1

    contract = await sign_contract(
        ledger, first["id"], allocation, "1000.00", parties, reference="CQ-001"
    )
    body = {
        "reference": "CQ-001",
        "title": contract["title"],
        "project_id": contract["project_id"],
        "budget_id": first["id"],
        "allocation_id": allocation["id"],
        "purchaser_id": street,
        "implementer_id": contract["implementer_id"],
        "provider_id": contract["provider_id"],
        "item_ids": contract["item_ids"],
        "value": cny("1000.00"),
        "period_start": "2014-04-14",
        "period_end": "2014-12-31",
    }
    retried = await ledger.post("/contracts", json=body, headers=parties.street)
    assert (retried.status_code, retried.json()["id"]) == (200, contract["id"])
    budget = ok(await ledger.get(f"/budgets/{first['id']}", headers=FINANCE), 200)
    assert budget["committed"] == cny("1000.00")

    ok(
        await ledger.post(
            f"/contracts/{contract['id']}/activation", json={}, headers=parties.street
        )
    )
    delivery = await deliver(ledger, contract, "600.00", reference="MAY-2014")
    again = await ledger.post(
        f"/contracts/{contract['id']}/deliveries",
        json={
            "reference": "MAY-2014",
            "period_start": "2014-05-01",
            "period_end": "2014-05-31",
            "quantity": 120,
            "unit": "person-times",
            "amount": cny("600.00"),
        },
        headers=parties.community,
    )
    assert (again.status_code, again.json()["id"]) == (200, delivery["id"])


async def test_the_same_treasury_reference_is_the_same_payment(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    contracts = [
        await sign_contract(ledger, budget["id"], allocation, "1000.00", parties) for _ in range(2)
    ]
    street = parties.street
    for contract in contracts:
        ok(await ledger.post(f"/contracts/{contract['id']}/activation", json={}, headers=street))
        delivery = await deliver(ledger, contract, "1000.00")
        ok(
            await ledger.post(
                f"/contracts/{contract['id']}/deliveries/{delivery['id']}/acceptance",
                json={},
                headers=street,
            )
        )
    payments = f"/contracts/{contracts[0]['id']}/payments"
    body = {"reference": "GK-2014-0001", "amount": cny("400.00")}
    assert (await ledger.post(payments, json=body, headers=street)).status_code == 201
    assert (await ledger.post(payments, json=body, headers=street)).status_code == 200
    changed = await ledger.post(payments, json={**body, "amount": cny("500.00")}, headers=street)
    assert changed.status_code == 409
    elsewhere = await ledger.post(
        f"/contracts/{contracts[1]['id']}/payments", json=body, headers=street
    )
    assert elsewhere.status_code == 409
    assert contracts[0]["id"] in elsewhere.json()["detail"]
    # One treasury payout is one payment: it cannot also be a grant's tranche.
    grant = await award_grant(ledger, budget["id"], allocation, "1000.00", parties)
    as_tranche = await ledger.post(
        f"/grants/{grant['id']}/tranches", json=body, headers=grantor_of(grant)
    )
    assert as_tranche.status_code == 409
    assert contracts[0]["id"] in as_tranche.json()["detail"]
    contract = ok(await ledger.get(f"/contracts/{contracts[0]['id']}", headers=street), 200)
    assert (contract["paid"], contract["payments"]) == (cny("400.00"), 1)
    grant = ok(await ledger.get(f"/grants/{grant['id']}", headers=grantor_of(grant)), 200)
    assert grant["tranches"] == []
