"""Catalog and ledger as real processes: the ledger signs only what the catalog admitted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.actors import AUDITOR
from tests.support.catalog import catalog_client, propose_item, seed_parties
from tests.support.ledger_api import (
    allocate,
    cny,
    contract_body,
    entrust,
    ok,
    open_budget,
    sign_contract,
)
from tests.support.processes import RunningService, running_services

pytestmark = pytest.mark.asyncio


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[dict[str, RunningService]]:
    """A catalog and a ledger asking it; the ledger's catalog retries quickly."""
    overrides = {"LEDGER_CATALOG_TIMEOUT_SECONDS": "1", "LEDGER_CATALOG_ATTEMPTS": "2"}
    with running_services(tmp_path, overrides, names=["catalog", "ledger"]) as running:
        yield running


async def test_admitted_signs_rejected_or_retired_is_refused_and_no_catalog_means_503(
    pair: dict[str, RunningService],
) -> None:
    catalog, ledger_service = pair["catalog"], pair["ledger"]
    parties = seed_parties(catalog.url)
    with catalog_client(catalog.url) as http:
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
        signed = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
        assert signed["state"] == "signed"

        # A rejected item cannot even be put out to purchase.
        refused = await ledger.post(
            "/projects",
            json={
                "reference": "P-REJECTED",
                "title": "Sanitation inspections",
                "purchaser_id": parties.street_office_id,
                "budget_id": budget["id"],
                "allocation_id": allocation["id"],
                "item_ids": [rejected["id"]],
                "estimated_value": cny("1000.00"),
                "method": "direct_entrustment",
                "justification": "urgent",
                "occurred_at": "2014-04-02T09:00:00+08:00",
            },
            headers=parties.street,
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        detail = refused.json()["detail"]
        assert rejected["id"] in detail
        assert "rejected as of 2014-04-02, not admitted: a government duty, not a service" in detail

        # An item retired between award and signing stops the contract too.
        project = await entrust(ledger, budget["id"], allocation, "1000.00", parties)
        with catalog_client(catalog.url) as http:
            ok(
                http.post(
                    f"/items/{parties.item_id}/retirement",
                    json={
                        "reason": "moved to the district",
                        "occurred_at": "2014-04-12T00:00:00+08:00",
                    },
                )
            )
        late = await ledger.post(
            "/contracts",
            json=contract_body(budget["id"], allocation, "1000.00", parties, project),
            headers=parties.street,
        )
        assert late.status_code == 422
        assert (
            "retired as of 2014-04-14, not admitted: moved to the district" in late.json()["detail"]
        )

        # With the catalog down nothing is signed, and nothing is written.
        other = seed_parties(catalog.url)
        other_allocation = await allocate(ledger, budget["id"], "1000.00", other.street_office_id)
        pending = await entrust(ledger, budget["id"], other_allocation, "1000.00", other)
        feed_before = ok(await ledger.get("/events", headers=AUDITOR), 200)["head"]
        catalog.stop()
        unavailable = await ledger.post(
            "/contracts",
            json=contract_body(budget["id"], other_allocation, "1000.00", other, pending),
            headers=other.street,
        )
        assert unavailable.status_code == 503
        assert unavailable.headers["content-type"] == "application/problem+json"
        assert "nothing was written" in unavailable.json()["detail"]
        assert ok(await ledger.get("/events", headers=AUDITOR), 200)["head"] == feed_before
        project_now = ok(await ledger.get(f"/projects/{pending['id']}", headers=other.street), 200)
        assert project_now["state"] == "awarded"
