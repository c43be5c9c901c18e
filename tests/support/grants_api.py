"""Steps of a grant's story over HTTP: awarded, disbursed in tranches, reported on."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

from proto.actor import Role
from tests.support.actors import acting
from tests.support.catalog import Parties
from tests.support.ledger_api import cny, ok

AWARDED_AT = "2014-05-06T10:00:00+08:00"
REPORT_SHA256 = "5e" * 32


def grant_body(
    budget_id: str, allocation: dict[str, Any], amount: str, parties: Parties, **extra: Any
) -> dict[str, Any]:
    """A Bao'an-style grant from the allocation's street office to the registered provider."""
    return {
        "reference": f"BA-G-{uuid4().hex[:8]}",
        "purpose": "elderly mutual-help activities in Haiyu community",
        "budget_id": budget_id,
        "allocation_id": allocation["id"],
        "grantor_id": allocation["street_office_id"],
        "grantee_id": parties.provider_id,
        "amount": cny(amount),
        "occurred_at": AWARDED_AT,
        **extra,
    }


async def award_grant(
    client: httpx.AsyncClient,
    budget_id: str,
    allocation: dict[str, Any],
    amount: str,
    parties: Parties,
    **extra: Any,
) -> dict[str, Any]:
    """Award a grant; fails the test unless it is created."""
    body = grant_body(budget_id, allocation, amount, parties, **extra)
    grantor = acting(Role.STREET, body["grantor_id"])
    result: dict[str, Any] = ok(await client.post("/grants", json=body, headers=grantor))
    return result


def grantor_of(grant: dict[str, Any]) -> dict[str, str]:
    """Headers for a request made by the granting street office."""
    return acting(Role.STREET, grant["grantor_id"])


def grantee_of(grant: dict[str, Any]) -> dict[str, str]:
    """Headers for a request made by the grantee."""
    return acting(Role.PROVIDER, grant["grantee_id"])


async def disburse(
    client: httpx.AsyncClient, grant: dict[str, Any], reference: str, amount: str, **extra: Any
) -> dict[str, Any]:
    """A tranche paid by the treasury, recorded by the grantor; fails unless it is created."""
    body = {
        "reference": reference,
        "amount": cny(amount),
        "occurred_at": "2014-05-20T10:00:00+08:00",
        **extra,
    }
    result: dict[str, Any] = ok(
        await client.post(f"/grants/{grant['id']}/tranches", json=body, headers=grantor_of(grant))
    )
    return result


async def report_use(
    client: httpx.AsyncClient,
    grant: dict[str, Any],
    spent: str,
    report_sha256: str = REPORT_SHA256,
    **extra: Any,
) -> dict[str, Any]:
    """The grantee's report on use, made by the grantee; fails unless it is created."""
    body = {
        "report_sha256": report_sha256,
        "summary": "35 activities, 325 members, 13,600 person-times served",
        "spent": cny(spent),
        "occurred_at": "2014-12-15T10:00:00+08:00",
        **extra,
    }
    result: dict[str, Any] = ok(
        await client.post(f"/grants/{grant['id']}/reports", json=body, headers=grantee_of(grant))
    )
    return result
