"""Catalog and ledger as real processes: the ledger signs only what the catalog admitted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.catalog import Parties, propose_item, seed_parties
from tests.support.ledger_api import allocate, cny, ok, open_budget
from tests.support.processes import RunningService, running_services

pytestmark = pytest.mark.asyncio


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[dict[str, RunningService]]:
    """A catalog and a ledger asking it; the ledger's catalog retries quickly."""
    overrides = {"LEDGER_CATALOG_TIMEOUT_SECONDS": "1", "LEDGER_CATALOG_ATTEMPTS": "2"}
    with running_services(tmp_path, overrides, names=["catalog", "ledger"]) as running:
        yield running


def contract_body(
    budget_id: str, allocation_id: str, parties: Parties, item_id: str
) -> dict[str, object]:
    return {
        "reference": f"CQ-{item_id[:8]}",
        "title": "Management services for elderly people over 60 on minimum living allowance",
        "budget_id": budget_id,
        "allocation_id": allocation_id,
        "purchaser_id": parties.street_office_id,
        "implementer_id": parties.community_id,
        "provider_id": parties.provider_id,
        "item_ids": [item_id],
        "value": cny("360000.00"),
        "period_start": "2014-04-14",
        "period_end": "2014-12-31",
        "occurred_at": "2014-04-14T10:00:00+08:00",
    }


async def test_admitted_signs_rejected_is_refused_and_no_catalog_means_503(
    pair: dict[str, RunningService],
) -> None:
    catalog, ledger_service = pair["catalog"], pair["ledger"]
    parties = seed_parties(catalog.url)
    with httpx.Client(base_url=catalog.url, trust_env=False) as http:
        rejected = propose_item(http, parties.bureau_id, name="Sanitation inspections")
        ok(
            http.post(
                f"/items/{rejected['id']}/rejection",
                json={
                    "reason": "a government duty, not a service",
                    "occurred_at": "2014-04-01T00:00:00+08:00",
                },
            )
        )

    async with httpx.AsyncClient(base_url=ledger_service.url, trust_env=False) as ledger:
        budget = await open_budget(ledger)
        allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)

        signed = await ledger.post(
            "/contracts",
            json=contract_body(budget["id"], allocation["id"], parties, parties.item_id),
        )
        assert signed.status_code == 201, signed.text

        refused = await ledger.post(
            "/contracts",
            json=contract_body(budget["id"], allocation["id"], parties, rejected["id"]),
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        detail = refused.json()["detail"]
        assert rejected["id"] in detail
        assert "rejected as of 2014-04-14, not admitted: a government duty, not a service" in detail

        feed_before = ok(await ledger.get("/events"), 200)["head"]
        catalog.stop()
        unavailable = await ledger.post(
            "/contracts",
            json={
                **contract_body(budget["id"], allocation["id"], parties, parties.item_id),
                "reference": "CQ-WHILE-DOWN",
            },
        )
        assert unavailable.status_code == 503
        assert unavailable.headers["content-type"] == "application/problem+json"
        assert "nothing was written" in unavailable.json()["detail"]
        assert ok(await ledger.get("/events"), 200)["head"] == feed_before
        budget_now = ok(await ledger.get(f"/budgets/{budget['id']}"), 200)
        assert budget_now["committed"] == cny("360000.00")
