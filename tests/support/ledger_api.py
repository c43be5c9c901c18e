"""Small steps of the ledger's story over HTTP, shared by integration and end-to-end tests."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

from proto.actor import Role
from tests.support.actors import AUDITOR, FINANCE, acting
from tests.support.catalog import Parties


def cny(amount: str) -> dict[str, str]:
    """Money on the wire."""
    return {"amount": amount, "currency": "CNY"}


def ok(response: httpx.Response, *statuses: int) -> Any:
    """The JSON body, after checking the status (201 unless told), with the body in the message."""
    expected = statuses or (201,)
    assert response.status_code in expected, (response.status_code, response.text)
    return response.json()


async def feed_head(client: httpx.AsyncClient) -> int:
    """The ledger feed's last position."""
    return int(ok(await client.get("/events", params={"limit": 1}, headers=AUDITOR), 200)["head"])


async def open_budget(
    client: httpx.AsyncClient,
    amount: str = "30850000.00",
    *,
    by: dict[str, str] = FINANCE,
    **extra: Any,
) -> dict[str, Any]:
    """Wuhou's 2014 push-down budget, from district finance (a clerk of it: `by`)."""
    body = {
        "year": 2014,
        "purpose": "push-down services",
        "title": "Wuhou district 2014: services pushed down to communities",
        "sources": [
            {"kind": "district_finance", "name": "Wuhou district finance", "amount": cny(amount)}
        ],
        "occurred_at": "2014-01-01T09:00:00+08:00",
        **extra,
    }
    result: dict[str, Any] = ok(await client.post("/budgets", json=body, headers=by))
    return result


async def allocate(
    client: httpx.AsyncClient,
    budget_id: str,
    amount: str,
    street_office_id: str | None = None,
    occurred_at: str = "2014-03-31T09:00:00+08:00",
) -> dict[str, Any]:
    """An allocation to a (new) street office; returns the allocation."""
    street = street_office_id or str(uuid4())
    budget = ok(
        await client.post(
            f"/budgets/{budget_id}/allocations",
            json={"street_office_id": street, "amount": cny(amount), "occurred_at": occurred_at},
            headers=FINANCE,
        )
    )
    allocation: dict[str, Any] = next(
        a for a in budget["allocations"] if a["street_office_id"] == street
    )
    return allocation


async def entrust(
    client: httpx.AsyncClient,
    budget_id: str,
    allocation: dict[str, Any],
    value: str,
    parties: Parties,
    provider_id: str | None = None,
) -> dict[str, Any]:
    """A directly entrusted purchase, awarded: the way Wuhou's first agreement came about."""
    street = acting(Role.STREET, allocation["street_office_id"])
    project = ok(
        await client.post(
            "/projects",
            json={
                "reference": f"P-{uuid4().hex[:8]}",
                "title": "Management services for elderly people over 60",
                "purchaser_id": allocation["street_office_id"],
                "budget_id": budget_id,
                "allocation_id": allocation["id"],
                "item_ids": [parties.item_id],
                "estimated_value": cny(value),
                "method": "direct_entrustment",
                "justification": "the center already runs the street's home-care center",
                "occurred_at": "2014-04-01T09:00:00+08:00",
            },
            headers=street,
        )
    )
    awarded: dict[str, Any] = ok(
        await client.post(
            f"/projects/{project['id']}/direct-award",
            json={
                "provider_id": provider_id or parties.provider_id,
                "price": cny(value),
                "occurred_at": "2014-04-10T09:00:00+08:00",
            },
            headers=street,
        )
    )
    return awarded


def contract_body(
    budget_id: str,
    allocation: dict[str, Any],
    value: str,
    parties: Parties,
    project: dict[str, Any],
    reference: str | None = None,
) -> dict[str, Any]:
    """The terms of a contract for an awarded project, like the first Wuhou agreement."""
    return {
        "reference": reference or f"CQ-{uuid4().hex[:8]}",
        "title": "Management services for elderly people over 60 on minimum living allowance",
        "project_id": project["id"],
        "budget_id": budget_id,
        "allocation_id": allocation["id"],
        "purchaser_id": allocation["street_office_id"],
        "implementer_id": parties.community_id,
        "provider_id": project["award"]["provider_id"],
        "item_ids": [parties.item_id],
        "value": cny(value),
        "period_start": "2014-04-14",
        "period_end": "2014-12-31",
        "occurred_at": "2014-04-14T10:00:00+08:00",
    }


async def sign_contract(
    client: httpx.AsyncClient,
    budget_id: str,
    allocation: dict[str, Any],
    value: str,
    parties: Parties,
    reference: str | None = None,
    provider_id: str | None = None,
) -> dict[str, Any]:
    """Entrust the purchase, then sign its contract."""
    project = await entrust(client, budget_id, allocation, value, parties, provider_id)
    body = contract_body(budget_id, allocation, value, parties, project, reference)
    street = acting(Role.STREET, allocation["street_office_id"])
    result: dict[str, Any] = ok(await client.post("/contracts", json=body, headers=street))
    return result


def street_of(contract: dict[str, Any]) -> dict[str, str]:
    """Headers for a request made by the contract's purchasing street office."""
    return acting(Role.STREET, contract["purchaser_id"])


def community_of(contract: dict[str, Any]) -> dict[str, str]:
    """Headers for a request made by the community that implements the contract."""
    return acting(Role.COMMUNITY, contract["implementer_id"])


def provider_of(contract: dict[str, Any]) -> dict[str, str]:
    """Headers for a request made by the contract's provider."""
    return acting(Role.PROVIDER, contract["provider_id"])


async def deliver(
    client: httpx.AsyncClient, contract: dict[str, Any], amount: str, **extra: Any
) -> dict[str, Any]:
    """A month of home visits, reported by the community that implements the contract."""
    body = {
        "period_start": "2014-05-01",
        "period_end": "2014-05-31",
        "quantity": 120,
        "unit": "person-times",
        "amount": cny(amount),
        "evidence_sha256": ["0" * 64],
        "occurred_at": "2014-06-02T10:00:00+08:00",
        **extra,
    }
    result: dict[str, Any] = ok(
        await client.post(
            f"/contracts/{contract['id']}/deliveries", json=body, headers=community_of(contract)
        )
    )
    return result
