"""A purchase from publication to contract over the ledger's API, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import uuid4

import httpx
import pytest

from proto.actor import Role
from proto.ledger_events import EVENT_PAYLOADS
from proto.money import Money
from tests.support.actors import AUDITOR, acting
from tests.support.catalog import Parties, another_provider, catalog_client
from tests.support.feeds import read_whole_feed
from tests.support.ledger_api import allocate, cny, contract_body, ok, open_budget

pytestmark = pytest.mark.asyncio

PROPOSAL = "c" * 64


def provider(provider_id: str) -> dict[str, str]:
    """Headers for a request made by this provider."""
    return acting(Role.PROVIDER, provider_id)


async def feed_head(ledger: httpx.AsyncClient) -> int:
    """The last position of the ledger's feed, read by an auditor."""
    page = ok(await ledger.get("/events", params={"limit": 1}, headers=AUDITOR), 200)
    head: int = page["head"]
    return head


async def publish(
    ledger: httpx.AsyncClient, parties: Parties, **extra: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An open call at the Chengdu 2014 fair, published, with its budget and allocation."""
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
    project = ok(
        await ledger.post(
            "/projects",
            json={
                "reference": "WH-2014-P-017",
                "title": "Home care for elderly people on minimum living allowance",
                "purchaser_id": parties.street_office_id,
                "budget_id": budget["id"],
                "allocation_id": allocation["id"],
                "item_ids": [parties.item_id],
                "estimated_value": cny("400000.00"),
                "method": "open_call",
                "eligible_tracks": ["registered"],
                "applications_open_at": "2014-04-01T09:00:00+08:00",
                "applications_close_at": "2014-04-10T17:00:00+08:00",
                "fair": "Chengdu 2014",
                "occurred_at": "2014-03-31T09:00:00+08:00",
                **extra,
            },
            headers=parties.street,
        )
    )
    project = ok(
        await ledger.post(
            f"/projects/{project['id']}/publication",
            json={"occurred_at": "2014-03-31T10:00:00+08:00"},
            headers=parties.street,
        )
    )
    return budget, allocation, project


async def apply(
    ledger: httpx.AsyncClient, project_id: str, provider_id: str, price: str, day: int
) -> dict[str, Any]:
    result: dict[str, Any] = ok(
        await ledger.post(
            f"/projects/{project_id}/applications",
            json={
                "provider_id": provider_id,
                "price": cny(price),
                "proposal_sha256": PROPOSAL,
                "occurred_at": f"2014-04-{day:02d}T10:00:00+08:00",
            },
            headers=provider(provider_id),
        )
    )
    return result


async def test_a_purchase_from_publication_through_objection_to_contract(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    budget, allocation, project = await publish(ledger, parties)
    pid = project["id"]
    assert project["state"] == "published"
    rivals = [another_provider(catalog_url), another_provider(catalog_url)]
    first = await apply(ledger, pid, parties.provider_id, "380000.00", 3)
    second = await apply(ledger, pid, rivals[0], "360000.00", 4)
    third = await apply(ledger, pid, rivals[1], "300000.00", 5)
    # The applicant sees its own price; no one else does until the period closes.
    assert first["offered_price"] == cny("380000.00")
    assert first["price"] is None
    for reader in (parties.street, provider(rivals[0])):
        sealed = ok(await ledger.get(f"/projects/{pid}", headers=reader), 200)
        assert all(a["price"] is None for a in sealed["applications"])
    entries = await read_whole_feed(ledger)
    submitted = [e.payload for e in entries if e.event_type == "application.submitted"]
    assert len(submitted) == 3
    assert all("38000000" not in str(p) and "380000.00" not in str(p) for p in submitted)

    # A provider applies only in its own name: nothing is written for the one it names.
    head = await feed_head(ledger)
    impersonated = await ledger.post(
        f"/projects/{pid}/applications",
        json={
            "provider_id": parties.provider_id,
            "price": cny("390000.00"),
            "proposal_sha256": PROPOSAL,
            "occurred_at": "2014-04-06T10:00:00+08:00",
        },
        headers=provider(rivals[0]),
    )
    assert impersonated.status_code == 403
    assert await feed_head(ledger) == head
    project = ok(await ledger.get(f"/projects/{pid}", headers=parties.street), 200)
    assert [a["id"] for a in project["applications"]] == [first["id"], second["id"], third["id"]]

    latecomer = another_provider(catalog_url)
    late = await ledger.post(
        f"/projects/{pid}/applications",
        json={
            "provider_id": latecomer,
            "price": cny("1.00"),
            "proposal_sha256": PROPOSAL,
            "occurred_at": "2014-04-11T10:00:00+08:00",
        },
        headers=provider(latecomer),
    )
    assert late.status_code == 409
    assert "applications closed at 2014-04-10T17:00:00+08:00" in late.json()["detail"]

    closed = ok(
        await ledger.post(
            f"/projects/{pid}/closure",
            json={"occurred_at": "2014-04-10T17:00:00+08:00"},
            headers=parties.street,
        )
    )
    assert sorted(a["price"]["amount"] for a in closed["applications"]) == [
        "300000.00",
        "360000.00",
        "380000.00",
    ]
    evaluated = ok(
        await ledger.post(
            f"/projects/{pid}/evaluation",
            json={
                "panel": ["Civil affairs bureau", "Street office", "Social work expert"],
                "scores": [
                    {
                        "application_id": first["id"],
                        "score": 92,
                        "acceptable": True,
                        "reason": "runs the home-care center; trained staff",
                    },
                    {
                        "application_id": second["id"],
                        "score": 85,
                        "acceptable": True,
                        "reason": "good plan, less local experience",
                    },
                    {
                        "application_id": third["id"],
                        "score": 40,
                        "acceptable": False,
                        "reason": "price too low to staff the service",
                    },
                ],
                "occurred_at": "2014-04-11T10:00:00+08:00",
            },
            headers=parties.street,
        )
    )
    assert evaluated["state"] == "evaluated"

    # Only the purchasing street office awards: not a rival applicant, not another street office.
    head = await feed_head(ledger)
    to_rival = {
        "application_id": second["id"],
        "publicity_ends_at": "2014-04-13T17:00:00+08:00",
        "occurred_at": "2014-04-11T11:00:00+08:00",
    }
    for usurper in (provider(rivals[0]), acting(Role.STREET, str(uuid4()))):
        refused = await ledger.post(f"/projects/{pid}/award", json=to_rival, headers=usurper)
        assert refused.status_code == 403
    assert await feed_head(ledger) == head
    still = ok(await ledger.get(f"/projects/{pid}", headers=parties.street), 200)
    assert (still["state"], still["award"], still["version"]) == (
        "evaluated",
        None,
        evaluated["version"],
    )

    awarded = ok(
        await ledger.post(
            f"/projects/{pid}/award",
            json={
                "application_id": first["id"],
                "publicity_ends_at": "2014-04-13T17:00:00+08:00",
                "occurred_at": "2014-04-11T12:00:00+08:00",
            },
            headers=parties.street,
        )
    )
    assert awarded["award"]["provider_id"] == parties.provider_id
    assert awarded["award"]["price"] == cny("380000.00")

    objected = ok(
        await ledger.post(
            f"/projects/{pid}/objections",
            json={
                "provider_id": rivals[1],
                "text": "the lowest price should have won",
                "occurred_at": "2014-04-12T09:00:00+08:00",
            },
            headers=provider(rivals[1]),
        )
    )
    [objection] = objected["objections"]
    body = contract_body(budget["id"], allocation, "380000.00", parties, awarded)
    blocked = await ledger.post("/contracts", json=body, headers=parties.street)
    assert blocked.status_code == 409
    assert "1 objection(s) to project WH-2014-P-017 await an answer" in blocked.json()["detail"]

    ok(
        await ledger.post(
            f"/projects/{pid}/objections/{objection['id']}/answer",
            json={
                "answer": "the panel found the price too low to staff the service; see its reasons",
                "occurred_at": "2014-04-13T09:00:00+08:00",
            },
            headers=parties.street,
        )
    )
    contract = ok(await ledger.post("/contracts", json=body, headers=parties.street))
    assert contract["project_id"] == pid
    assert contract["value"] == cny("380000.00")
    project = ok(await ledger.get(f"/projects/{pid}", headers=parties.provider), 200)
    assert (project["state"], project["contract_id"]) == ("contracted", contract["id"])

    entries = [e for e in await read_whole_feed(ledger) if str(e.stream_id) == pid]
    for entry in entries:  # every step on the wire is what proto/ says
        EVENT_PAYLOADS[entry.event_type].model_validate(entry.payload)
    closing = next(e for e in entries if e.event_type == "project.applications_closed")
    disclosed = {d["application_id"]: d for d in closing.payload["disclosures"]}
    for application in (first, second, third):
        # Anyone can check a disclosed price against the commitment made when applying.
        price = disclosed[application["id"]]
        fen = Money.model_validate(price["price"]).fen
        digest = hashlib.sha256(f"{fen}:{price['nonce']}".encode()).hexdigest()
        assert digest == application["price_commitment"]
    events = [e.event_type for e in entries]
    assert events == [
        "project.opened",
        "project.published",
        "application.submitted",
        "application.submitted",
        "application.submitted",
        "project.applications_closed",
        "project.evaluated",
        "project.awarded",
        "objection.lodged",
        "objection.answered",
        "project.contracted",
    ]
    # Each step names who took it: the street office, or the provider that applied or objected.
    street = ("street", parties.street_office_id)
    assert [
        (e.caused_by.role.value, str(e.caused_by.organization_id)) if e.caused_by else None
        for e in entries
    ] == [
        street,
        street,
        ("provider", parties.provider_id),
        ("provider", rivals[0]),
        ("provider", rivals[1]),
        street,
        street,
        street,
        ("provider", rivals[1]),
        street,
        street,
    ]


async def test_the_contract_value_follows_the_award_unless_justified(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget, allocation, project = await publish(ledger, parties)
    pid = project["id"]
    application = await apply(ledger, pid, parties.provider_id, "380000.00", 3)
    ok(
        await ledger.post(
            f"/projects/{pid}/closure",
            json={"occurred_at": "2014-04-10T17:00:00+08:00"},
            headers=parties.street,
        )
    )
    ok(
        await ledger.post(
            f"/projects/{pid}/evaluation",
            json={
                "panel": ["panel"],
                "scores": [
                    {
                        "application_id": application["id"],
                        "score": 90,
                        "acceptable": True,
                        "reason": "sound",
                    }
                ],
                "occurred_at": "2014-04-11T10:00:00+08:00",
            },
            headers=parties.street,
        )
    )
    awarded = ok(
        await ledger.post(
            f"/projects/{pid}/award",
            json={
                "application_id": application["id"],
                "publicity_ends_at": "2014-04-13T17:00:00+08:00",
                "occurred_at": "2014-04-11T12:00:00+08:00",
            },
            headers=parties.street,
        )
    )
    body = contract_body(budget["id"], allocation, "400000.00", parties, awarded)
    differs = await ledger.post("/contracts", json=body, headers=parties.street)
    assert differs.status_code == 409
    assert "differs from the award 380,000.00" in differs.json()["detail"]
    varied = ok(
        await ledger.post(
            "/contracts",
            json={**body, "variation": "a second site added"},
            headers=parties.street,
        )
    )
    assert (varied["value"], varied["variation"]) == (cny("400000.00"), "a second site added")


async def test_projects_are_listed_by_state_fair_item_and_street_office(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    _, _, published = await publish(ledger, parties)
    _, _, shanghai = await publish(ledger, parties, reference="WH-2014-P-200", fair="Shanghai 2014")
    # A provider may read the call but not cancel it; nothing is written.
    by_provider = await ledger.post(
        f"/projects/{shanghai['id']}/cancellation",
        json={"reason": "not worth it"},
        headers=parties.provider,
    )
    assert by_provider.status_code == 403
    unchanged = ok(await ledger.get(f"/projects/{shanghai['id']}", headers=parties.provider), 200)
    assert (unchanged["state"], unchanged["version"]) == ("published", shanghai["version"])
    cancelled = ok(
        await ledger.post(
            f"/projects/{shanghai['id']}/cancellation",
            json={"reason": "merged"},
            headers=parties.street,
        )
    )
    assert cancelled["ending_reason"] == "merged"

    # Calls are published: a provider looking for work lists them.
    async def ids(**params: str) -> list[str]:
        page = ok(await ledger.get("/projects", params=params, headers=parties.provider), 200)
        return [p["id"] for p in page["items"]]

    assert await ids(fair="Chengdu 2014", purchaser_id=parties.street_office_id) == [
        published["id"]
    ]
    assert await ids(item_id=parties.item_id) == [published["id"], shanghai["id"]]
    assert await ids(item_id=parties.item_id, state="published") == [published["id"]]
    assert await ids(item_id=parties.item_id, state="cancelled") == [shanghai["id"]]
    page = ok(
        await ledger.get(
            "/projects",
            params={"item_id": parties.item_id, "limit": 1},
            headers=parties.provider,
        ),
        200,
    )
    rest = ok(
        await ledger.get(
            "/projects",
            params={"item_id": parties.item_id, "limit": 1, "cursor": page["next_cursor"]},
            headers=parties.provider,
        ),
        200,
    )
    assert [p["id"] for p in page["items"] + rest["items"]] == [published["id"], shanghai["id"]]
    assert rest["next_cursor"] is None


async def test_a_filed_organization_cannot_apply_where_only_registered_may(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    _, _, project = await publish(ledger, parties)
    with catalog_client(catalog_url) as catalog:
        filed = ok(
            catalog.post(
                "/organizations",
                json={
                    "kind": "social_organization",
                    "name": "A filed residents' group",
                    "registration": {"track": "filed", "category": "community_public_interest"},
                    "occurred_at": "2014-03-01T00:00:00+08:00",
                },
            )
        )
    refused = await ledger.post(
        f"/projects/{project['id']}/applications",
        json={
            "provider_id": filed["id"],
            "price": cny("1000.00"),
            "proposal_sha256": PROPOSAL,
            "occurred_at": "2014-04-03T10:00:00+08:00",
        },
        headers=provider(filed["id"]),
    )
    assert refused.status_code == 409
    assert (
        "is filed; project WH-2014-P-017 admits registered organizations only"
        in refused.json()["detail"]
    )
