"""The ledger's money flow over its REST API, on SQLite and on PostgreSQL."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from proto.actor import Role
from tests.support.actors import FINANCE, acting
from tests.support.catalog import Parties, another_provider, seed_parties
from tests.support.ledger_api import (
    allocate,
    cny,
    contract_body,
    deliver,
    entrust,
    ok,
    open_budget,
    sign_contract,
    street_of,
)

pytestmark = pytest.mark.asyncio


async def test_budget_to_payment(ledger: httpx.AsyncClient, parties: Parties) -> None:
    budget = await open_budget(ledger)
    assert budget["appropriation"] == cny("30850000.00")
    allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
    assert contract["state"] == "signed"

    budget = ok(await ledger.get(f"/budgets/{budget['id']}", headers=FINANCE), 200)
    assert budget["committed"] == cny("360000.00")
    assert budget["allocations"][0]["available"] == cny("640000.00")

    ok(
        await ledger.post(
            f"/contracts/{contract['id']}/activation", json={}, headers=parties.street
        )
    )
    delivery = await deliver(ledger, contract, "30000.00")
    assert delivery["state"] == "pending"
    accepted = ok(
        await ledger.post(
            f"/contracts/{contract['id']}/deliveries/{delivery['id']}/acceptance",
            json={"amount": cny("29000.00"), "score": 92, "note": "two visits short"},
            headers=parties.street,
        )
    )
    assert (accepted["state"], accepted["accepted"]) == ("accepted", cny("29000.00"))

    payment = ok(
        await ledger.post(
            f"/contracts/{contract['id']}/payments",
            json={"reference": "TREASURY-2014-000123", "amount": cny("29000.00")},
            headers=parties.street,
        )
    )
    assert payment["amount"] == cny("29000.00")
    contract = ok(await ledger.get(f"/contracts/{contract['id']}", headers=parties.provider), 200)
    assert (contract["accepted"], contract["paid"], contract["unpaid_accepted"]) == (
        cny("29000.00"),
        cny("29000.00"),
        cny("0.00"),
    )


async def test_overpayment_is_refused_with_the_numbers(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "5000.00", parties)
    ok(
        await ledger.post(
            f"/contracts/{contract['id']}/activation", json={}, headers=parties.street
        )
    )
    delivery = await deliver(ledger, contract, "1000.00")
    ok(
        await ledger.post(
            f"/contracts/{contract['id']}/deliveries/{delivery['id']}/acceptance",
            json={},
            headers=parties.street,
        )
    )
    response = await ledger.post(
        f"/contracts/{contract['id']}/payments",
        json={"reference": "T-1", "amount": cny("1200.00")},
        headers=parties.street,
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"] == "payment 1,200.00 exceeds accepted-but-unpaid 1,000.00"
    assert problem["type"] == "urn:community-ledger:problem:payment-exceeds-accepted"
    assert problem["title"] == "Payment exceeds accepted"
    # Nothing was written: the contract still shows no payment.
    contract = ok(await ledger.get(f"/contracts/{contract['id']}", headers=parties.street), 200)
    assert (contract["paid"], contract["payments"]) == (cny("0.00"), 0)


async def test_commitment_beyond_the_allocation_is_refused(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    project = await entrust(ledger, budget["id"], allocation, "1000.01", parties)
    response = await ledger.post(
        "/contracts",
        json=contract_body(
            budget["id"], allocation, "1000.01", parties, project, reference="CQ-TOO-BIG"
        ),
        headers=parties.street,
    )
    assert response.status_code == 409
    assert "1,000.01 exceeds the uncommitted 1,000.00" in response.json()["detail"]
    # Neither the contract nor its reference was kept: the same number can be used again.
    listed = ok(
        await ledger.get("/contracts", params={"budget_id": budget["id"]}, headers=FINANCE), 200
    )
    assert listed["items"] == []
    project = ok(await ledger.get(f"/projects/{project['id']}", headers=parties.street), 200)
    assert project["state"] == "awarded"
    await sign_contract(
        ledger, budget["id"], allocation, "1000.00", parties, reference="CQ-TOO-BIG"
    )


async def test_purchaser_must_own_the_allocation(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    stranger = str(uuid4())
    body = {
        "reference": "X-1",
        "title": "t",
        "project_id": str(uuid4()),
        "budget_id": budget["id"],
        "allocation_id": allocation["id"],
        "purchaser_id": stranger,
        "implementer_id": str(uuid4()),
        "provider_id": str(uuid4()),
        "item_ids": [str(uuid4())],
        "value": cny("10.00"),
        "period_start": "2014-04-14",
        "period_end": "2014-12-31",
    }
    # Another street office, acting for itself, cannot sign against this street's allocation...
    response = await ledger.post("/contracts", json=body, headers=acting(Role.STREET, stranger))
    assert response.status_code == 409
    assert "not to the purchaser" in response.json()["detail"]
    # ...and the allocation's own street office cannot sign in another's name.
    response = await ledger.post("/contracts", json=body, headers=parties.street)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "acts only for its own organization" in response.json()["detail"]


async def test_termination_releases_the_unspent_commitment(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "8000.00", parties)
    ok(
        await ledger.post(
            f"/contracts/{contract['id']}/activation", json={}, headers=parties.street
        )
    )
    delivery = await deliver(ledger, contract, "3000.00")
    ok(
        await ledger.post(
            f"/contracts/{contract['id']}/deliveries/{delivery['id']}/acceptance",
            json={},
            headers=parties.street,
        )
    )
    terminated = ok(
        await ledger.post(
            f"/contracts/{contract['id']}/termination",
            json={"reason": "provider lost its registration"},
            headers=parties.street,
        )
    )
    assert (terminated["state"], terminated["committed"]) == ("terminated", cny("3000.00"))
    budget = ok(await ledger.get(f"/budgets/{budget['id']}", headers=FINANCE), 200)
    assert budget["allocations"][0]["committed"] == cny("3000.00")
    assert budget["allocations"][0]["available"] == cny("7000.00")


async def test_rejected_delivery_and_corrected_payment(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "8000.00", parties)
    cid = contract["id"]
    street = parties.street
    ok(await ledger.post(f"/contracts/{cid}/activation", json={}, headers=street))
    rejected = await deliver(ledger, contract, "500.00")
    decision = ok(
        await ledger.post(
            f"/contracts/{cid}/deliveries/{rejected['id']}/rejection",
            json={"reason": "sign-in sheets missing", "score": 30},
            headers=street,
        )
    )
    assert (decision["state"], decision["decision_note"]) == ("rejected", "sign-in sheets missing")
    accepted = await deliver(ledger, contract, "2000.00")
    ok(
        await ledger.post(
            f"/contracts/{cid}/deliveries/{accepted['id']}/acceptance", json={}, headers=street
        )
    )
    ok(
        await ledger.post(
            f"/contracts/{cid}/payments",
            json={"reference": "T-7", "amount": cny("2000.00")},
            headers=street,
        )
    )
    reversal = ok(
        await ledger.post(
            f"/contracts/{cid}/payments/T-7/reversal",
            json={"reason": "returned by the bank"},
            headers=street,
        )
    )
    assert (reversal["reversed"], reversal["amount"]) == (True, cny("2000.00"))
    ok(
        await ledger.post(
            f"/contracts/{cid}/payments",
            json={"reference": "T-8", "amount": cny("2000.00")},
            headers=street,
        )
    )
    payments = ok(await ledger.get(f"/contracts/{cid}/payments", headers=parties.provider), 200)
    assert [(p["reference"], p["reversed"]) for p in payments["items"]] == [
        ("T-7", True),
        ("T-8", False),
    ]
    deliveries = ok(
        await ledger.get(f"/contracts/{cid}/deliveries", headers=parties.community), 200
    )
    assert [d["state"] for d in deliveries["items"]] == ["rejected", "accepted"]
    contract = ok(await ledger.get(f"/contracts/{cid}", headers=street), 200)
    assert contract["paid"] == cny("2000.00")


async def test_lists_filter_and_page(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    budget = await open_budget(ledger)
    other_budget = await open_budget(ledger, amount="100.00", year=2015)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    signed = [
        await sign_contract(ledger, budget["id"], allocation, "100.00", parties) for _ in range(4)
    ]
    other_provider = another_provider(catalog_url)
    signed.append(
        await sign_contract(
            ledger, budget["id"], allocation, "100.00", parties, provider_id=other_provider
        )
    )

    first = ok(
        await ledger.get(
            "/contracts", params={"budget_id": budget["id"], "limit": 2}, headers=FINANCE
        ),
        200,
    )
    assert [c["id"] for c in first["items"]] == [c["id"] for c in signed[:2]]
    seen = [c["id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = ok(
            await ledger.get(
                "/contracts",
                params={"budget_id": budget["id"], "limit": 2, "cursor": cursor},
                headers=FINANCE,
            ),
            200,
        )
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [c["id"] for c in signed]

    by_provider = ok(
        await ledger.get("/contracts", params={"provider_id": other_provider}, headers=FINANCE),
        200,
    )
    assert [c["id"] for c in by_provider["items"]] == [signed[4]["id"]]
    # A provider, listing without filters, sees its own contracts only.
    own = ok(await ledger.get("/contracts", headers=acting(Role.PROVIDER, other_provider)), 200)
    assert [c["id"] for c in own["items"]] == [signed[4]["id"]]
    budgets_2015 = ok(await ledger.get("/budgets", params={"year": 2015}, headers=FINANCE), 200)
    assert [b["id"] for b in budgets_2015["items"]] == [other_budget["id"]]


async def test_unknown_ids_are_problem_404s(ledger: httpx.AsyncClient) -> None:
    response = await ledger.get(f"/budgets/{uuid4()}", headers=FINANCE)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    budget = await open_budget(ledger)
    # A budget's id is not a contract's.
    assert (await ledger.get(f"/contracts/{budget['id']}", headers=FINANCE)).status_code == 404


async def test_a_conflict_never_names_a_record_the_caller_may_not_see(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    budget = await open_budget(ledger)
    cuqiao = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    elsewhere = seed_parties(catalog_url)
    other = await allocate(ledger, budget["id"], "10000.00", elsewhere.street_office_id)
    ours = await sign_contract(ledger, budget["id"], cuqiao, "5000.00", parties, reference="C-1")
    theirs = await sign_contract(ledger, budget["id"], other, "5000.00", elsewhere)
    for contract in (ours, theirs):
        street = street_of(contract)
        ok(await ledger.post(f"/contracts/{contract['id']}/activation", json={}, headers=street))
        delivery = await deliver(ledger, contract, "100.00")
        acceptance = f"/contracts/{contract['id']}/deliveries/{delivery['id']}/acceptance"
        ok(await ledger.post(acceptance, json={}, headers=street))
    payment = {"reference": "GK-1", "amount": cny("100.00")}
    ok(await ledger.post(f"/contracts/{ours['id']}/payments", json=payment, headers=parties.street))

    # The other street office reuses the treasury reference, and another contract number.
    reused = await ledger.post(
        f"/contracts/{theirs['id']}/payments", json=payment, headers=street_of(theirs)
    )
    project = await entrust(ledger, budget["id"], other, "10.00", elsewhere)
    number = contract_body(budget["id"], other, "10.00", elsewhere, project, reference="C-1")
    taken = await ledger.post("/contracts", json=number, headers=street_of(theirs))

    for refused in (reused, taken):
        assert refused.status_code == 409, refused.text
        assert ours["id"] not in refused.json()["detail"]
        assert "another contract" in refused.json()["detail"]
    # The street office whose contract holds the number is told which contract it is.
    mine = await entrust(ledger, budget["id"], cuqiao, "10.00", parties)
    again = contract_body(budget["id"], cuqiao, "10.00", parties, mine, reference="C-1")
    named = await ledger.post("/contracts", json=again, headers=parties.street)
    assert named.status_code == 409, named.text
    assert f"contract {ours['id']}" in named.json()["detail"]
