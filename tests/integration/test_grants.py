"""Grants over the ledger's REST API, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import httpx
import pytest
from jsonschema import Draft202012Validator

from proto.actor import Role
from proto.generate import SCHEMA_DIR
from proto.ledger_events import EVENT_PAYLOADS
from tests.support.actors import AUDITOR, FINANCE, WUHOU_FINANCE_ID, acting
from tests.support.catalog import Parties, another_provider
from tests.support.feeds import read_whole_feed
from tests.support.grants_api import (
    AWARDED_AT,
    award_grant,
    disburse,
    grant_body,
    grantee_of,
    grantor_of,
    report_use,
)
from tests.support.ledger_api import allocate, cny, ok, open_budget

pytestmark = pytest.mark.asyncio


async def allocation_figures(client: httpx.AsyncClient, budget_id: str) -> tuple[Any, ...]:
    """The committed and available amounts of the budget's only allocation, and its total."""
    budget = ok(await client.get(f"/budgets/{budget_id}", headers=FINANCE), 200)
    (allocation,) = budget["allocations"]
    return allocation["committed"], allocation["available"], budget["committed"]


async def feed_head(client: httpx.AsyncClient) -> int:
    """The last position of the ledger's feed, read by an auditor."""
    page = ok(await client.get("/events", params={"limit": 1}, headers=AUDITOR), 200)
    head: int = page["head"]
    return head


async def test_award_tranches_report_and_close(ledger: httpx.AsyncClient, parties: Parties) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "100000.00", parties.street_office_id)
    response = await ledger.post(
        "/grants",
        json=grant_body(budget["id"], allocation, "46000.00", parties),
        headers=parties.street,
    )
    grant = ok(response)
    assert response.headers["location"] == f"/grants/{grant['id']}"
    assert (grant["state"], grant["amount"], grant["committed"], grant["undisbursed"]) == (
        "awarded",
        cny("46000.00"),
        cny("46000.00"),
        cny("46000.00"),
    )
    assert await allocation_figures(ledger, budget["id"]) == (
        cny("46000.00"),
        cny("54000.00"),
        cny("46000.00"),
    )

    gid = grant["id"]
    first = await disburse(
        ledger, grant, "GK-2014-05-000017", "30000.00", occurred_at="2014-05-20T10:00:00+08:00"
    )
    assert (first["reference"], first["amount"]) == ("GK-2014-05-000017", cny("30000.00"))
    await report_use(ledger, grant, "28000.00", "1a" * 32, occurred_at="2014-08-31T10:00:00+08:00")
    await disburse(
        ledger, grant, "GK-2014-09-000102", "10000.00", occurred_at="2014-09-10T10:00:00+08:00"
    )
    # The report on file covers the first tranche only: the grant cannot close yet.
    refused = await ledger.post(f"/grants/{gid}/closure", json={}, headers=parties.street)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"cannot close: the latest report on use of grant {grant['reference']} covers "
        "30,000.00 of the 40,000.00 disbursed; report on every tranche first"
    )
    final = await report_use(ledger, grant, "38500.00")
    assert (final["spent"], final["disbursed"]) == (cny("38500.00"), cny("40000.00"))

    closed = ok(
        await ledger.post(
            f"/grants/{gid}/closure",
            json={"occurred_at": "2014-12-31T17:00:00+08:00"},
            headers=parties.street,
        )
    )
    assert closed["state"] == "closed"
    assert (closed["disbursed"], closed["spent"], closed["unspent"]) == (
        cny("40000.00"),
        cny("38500.00"),
        cny("1500.00"),
    )
    assert (closed["released"], closed["committed"]) == (cny("6000.00"), cny("40000.00"))
    assert [t["reference"] for t in closed["tranches"]] == [
        "GK-2014-05-000017",
        "GK-2014-09-000102",
    ]
    assert [r["spent"] for r in closed["reports"]] == [cny("28000.00"), cny("38500.00")]
    # The released remainder is available to the street office again.
    assert await allocation_figures(ledger, budget["id"]) == (
        cny("40000.00"),
        cny("60000.00"),
        cny("40000.00"),
    )

    # The two clocks: as it stood in June, and as the ledger knew it when it was awarded.
    june = ok(
        await ledger.get(
            f"/grants/{gid}",
            params={"as_of": "2014-06-30T23:59:59+08:00"},
            headers=parties.provider,
        ),
        200,
    )
    assert (june["state"], june["disbursed"], june["committed"]) == (
        "awarded",
        cny("30000.00"),
        cny("46000.00"),
    )
    budget_june = ok(
        await ledger.get(
            f"/budgets/{budget['id']}",
            params={"as_of": "2014-06-30T23:59:59+08:00"},
            headers=FINANCE,
        ),
        200,
    )
    assert budget_june["committed"] == cny("46000.00")
    first_known = ok(
        await ledger.get(f"/grants/{gid}", params={"known_at": "4"}, headers=parties.street), 200
    )
    assert (first_known["version"], first_known["disbursed"]) == (1, cny("0.00"))


async def test_over_commitment_is_refused_and_nothing_written(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    body = grant_body(budget["id"], allocation, "10000.01", parties, reference="BA-G-TOO-BIG")
    response = await ledger.post("/grants", json=body, headers=parties.street)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "grant value 10,000.01 exceeds the uncommitted 10,000.00 of allocation 10,000.00"
    )
    listed = ok(
        await ledger.get("/grants", params={"budget_id": budget["id"]}, headers=FINANCE), 200
    )
    assert listed["items"] == []
    # Nor may another street office award a grant in this one's name, even one that fits.
    fits = grant_body(budget["id"], allocation, "10000.00", parties, reference="BA-G-TOO-BIG")
    impostor = await ledger.post("/grants", json=fits, headers=acting(Role.STREET, str(uuid4())))
    assert impostor.status_code == 403
    assert await allocation_figures(ledger, budget["id"]) == (
        cny("0.00"),
        cny("10000.00"),
        cny("0.00"),
    )
    assert [e.event_type for e in await read_whole_feed(ledger, limit=100)] == [
        "budget.opened",
        "allocation.made",
    ]
    # The reference was not kept: the grant number can be used for a grant that fits.
    await award_grant(
        ledger, budget["id"], allocation, "10000.00", parties, reference="BA-G-TOO-BIG"
    )


async def test_parties_the_catalog_does_not_support_are_refused(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "10000.00", parties.street_office_id)
    response = await ledger.post(
        "/grants",
        json=grant_body(
            budget["id"], allocation, "500.00", parties, grantee_id=parties.community_id
        ),
        headers=parties.street,
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:community-ledger:problem:not-grantable"
    assert problem["detail"].startswith(f"grantee {parties.community_id} (Longjin community ")
    assert problem["detail"].endswith(
        "is a community, not a social_organization or social_work_agency"
    )

    # A district bureau with an allocation is still no street office.
    bureau_allocation = await allocate(ledger, budget["id"], "1000.00", parties.bureau_id)
    response = await ledger.post(
        "/grants",
        json=grant_body(budget["id"], bureau_allocation, "500.00", parties),
        headers=acting(Role.STREET, bureau_allocation["street_office_id"]),
    )
    assert response.status_code == 422
    assert response.json()["detail"].endswith("is a district_bureau, not a street_office")

    # A grantor that does not own the allocation is a conflict, found before asking anyone.
    response = await ledger.post(
        "/grants",
        json=grant_body(budget["id"], allocation, "500.00", parties, grantor_id=parties.bureau_id),
        headers=acting(Role.STREET, parties.bureau_id),
    )
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"allocation {allocation['id']} belongs to street office {parties.street_office_id}, "
        f"not to the grantor {parties.bureau_id}"
    )

    listed = ok(
        await ledger.get("/grants", params={"budget_id": budget["id"]}, headers=FINANCE), 200
    )
    assert listed["items"] == []
    budget = ok(await ledger.get(f"/budgets/{budget['id']}", headers=FINANCE), 200)
    assert budget["committed"] == cny("0.00")


async def test_retries_return_the_first_record_and_conflicts_are_refused(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "100000.00", parties.street_office_id)
    body = grant_body(budget["id"], allocation, "20000.00", parties, reference="BA-G-2014-017")
    grant = ok(await ledger.post("/grants", json=body, headers=parties.street))

    retried = await ledger.post("/grants", json=body, headers=parties.street)
    assert retried.status_code == 200
    assert retried.headers["location"] == f"/grants/{grant['id']}"
    assert retried.json()["id"] == grant["id"]
    conflicting = await ledger.post(
        "/grants", json={**body, "amount": cny("20000.01")}, headers=parties.street
    )
    assert conflicting.status_code == 409
    assert "'BA-G-2014-017' is already used" in conflicting.json()["detail"]
    # The budget holds the grant once.
    assert (await allocation_figures(ledger, budget["id"]))[0] == cny("20000.00")

    gid = grant["id"]
    tranche = await disburse(
        ledger, grant, "GK-2014-06-000009", "5000.00", occurred_at="2014-06-01T10:00:00+08:00"
    )
    again = await ledger.post(
        f"/grants/{gid}/tranches",
        json={
            "reference": "GK-2014-06-000009",
            "amount": cny("5000.00"),
            "occurred_at": "2014-06-02T10:00:00+08:00",
        },
        headers=parties.street,
    )
    assert again.status_code == 200
    assert again.json() == tranche
    assert again.json()["disbursed_at"] == "2014-06-01T10:00:00+08:00"
    different = await ledger.post(
        f"/grants/{gid}/tranches",
        json={"reference": "GK-2014-06-000009", "amount": cny("5000.01")},
        headers=parties.street,
    )
    assert different.status_code == 409
    assert different.json()["detail"] == (
        "treasury reference 'GK-2014-06-000009' is already a tranche of a different amount"
    )
    other = await award_grant(ledger, budget["id"], allocation, "1000.00", parties)
    elsewhere = await ledger.post(
        f"/grants/{other['id']}/tranches",
        json={"reference": "GK-2014-06-000009", "amount": cny("5000.00")},
        headers=grantor_of(other),
    )
    assert elsewhere.status_code == 409
    assert elsewhere.json()["detail"] == (
        f"treasury reference 'GK-2014-06-000009' is already recorded on grant {gid}"
    )

    report = await report_use(ledger, grant, "4000.00")
    repeated = await ledger.post(
        f"/grants/{gid}/reports",
        json={"report_sha256": report["report_sha256"], "spent": cny("4000.00")},
        headers=parties.provider,
    )
    assert (repeated.status_code, repeated.json()) == (200, report)
    changed = await ledger.post(
        f"/grants/{gid}/reports",
        json={"report_sha256": report["report_sha256"], "spent": cny("4500.00")},
        headers=parties.provider,
    )
    assert changed.status_code == 409

    grant = ok(await ledger.get(f"/grants/{gid}", headers=parties.street), 200)
    assert (grant["disbursed"], len(grant["tranches"]), len(grant["reports"])) == (
        cny("5000.00"),
        1,
        1,
    )


async def test_tranches_and_reports_within_their_limits(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "100000.00", parties.street_office_id)
    grant = await award_grant(ledger, budget["id"], allocation, "1000.00", parties)
    gid = grant["id"]
    early = await ledger.post(
        f"/grants/{gid}/reports",
        json={"report_sha256": "0" * 64, "spent": cny("0.00")},
        headers=parties.provider,
    )
    assert early.status_code == 409
    assert early.json()["type"] == "urn:community-ledger:problem:nothing-disbursed"
    await disburse(ledger, grant, "GK-1", "600.00")
    too_much = await ledger.post(
        f"/grants/{gid}/tranches",
        json={"reference": "GK-2", "amount": cny("400.01")},
        headers=parties.street,
    )
    assert too_much.status_code == 409
    assert too_much.json()["detail"] == (
        "tranche 400.01 exceeds the undisbursed 400.00 of grant 1,000.00 (disbursed 600.00)"
    )
    overspent = await ledger.post(
        f"/grants/{gid}/reports",
        json={"report_sha256": "0" * 64, "spent": cny("600.01")},
        headers=parties.provider,
    )
    assert overspent.status_code == 409
    assert overspent.json()["detail"] == "reported spending 600.01 exceeds the 600.00 disbursed"

    # Only the grantor records tranches and only the grantee reports: the grantee may see its
    # grant but not record its own tranche, the grantor may not report on the grantee's behalf,
    # and another provider or street office is told the grant does not exist.
    head = await feed_head(ledger)
    tranche = {"reference": "GK-2", "amount": cny("400.00")}
    report = {"report_sha256": "0" * 64, "spent": cny("600.00")}
    own_tranche = await ledger.post(
        f"/grants/{gid}/tranches", json=tranche, headers=grantee_of(grant)
    )
    assert own_tranche.status_code == 403
    other_street = acting(Role.STREET, str(uuid4()))
    foreign_tranche = await ledger.post(
        f"/grants/{gid}/tranches", json=tranche, headers=other_street
    )
    assert foreign_tranche.status_code == 404
    grantor_report = await ledger.post(
        f"/grants/{gid}/reports", json=report, headers=grantor_of(grant)
    )
    assert grantor_report.status_code == 403
    rival = acting(Role.PROVIDER, another_provider(catalog_url))
    rival_report = await ledger.post(f"/grants/{gid}/reports", json=report, headers=rival)
    assert rival_report.status_code == 404
    assert (await ledger.get(f"/grants/{gid}", headers=rival)).status_code == 404
    assert await feed_head(ledger) == head

    grant = ok(await ledger.get(f"/grants/{gid}", headers=parties.provider), 200)
    assert (grant["disbursed"], grant["reports"], grant["version"]) == (cny("600.00"), [], 2)


async def test_revocation_releases_the_undisbursed_part(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "50000.00", parties.street_office_id)
    grant = await award_grant(ledger, budget["id"], allocation, "20000.00", parties)
    gid = grant["id"]
    await disburse(ledger, grant, "GK-2014-05-000031", "5000.00")
    no_reason = await ledger.post(
        f"/grants/{gid}/revocation", json={"reason": " "}, headers=parties.street
    )
    assert no_reason.status_code == 422
    # The grantee may not revoke its own grant; nothing is written.
    by_grantee = await ledger.post(
        f"/grants/{gid}/revocation", json={"reason": "we give up"}, headers=parties.provider
    )
    assert by_grantee.status_code == 403
    unchanged = ok(await ledger.get(f"/grants/{gid}", headers=parties.street), 200)
    assert (unchanged["state"], unchanged["version"]) == ("awarded", 2)

    revoked = ok(
        await ledger.post(
            f"/grants/{gid}/revocation",
            json={"reason": "organization deregistered"},
            headers=parties.street,
        )
    )
    assert (revoked["state"], revoked["revocation_reason"]) == (
        "revoked",
        "organization deregistered",
    )
    assert (revoked["released"], revoked["committed"], revoked["disbursed"]) == (
        cny("15000.00"),
        cny("5000.00"),
        cny("5000.00"),
    )
    assert await allocation_figures(ledger, budget["id"]) == (
        cny("5000.00"),
        cny("45000.00"),
        cny("5000.00"),
    )
    after = await ledger.post(
        f"/grants/{gid}/tranches",
        json={"reference": "GK-LATE", "amount": cny("1.00")},
        headers=parties.street,
    )
    assert after.status_code == 409
    assert after.json()["detail"] == (
        f"cannot disburse a tranche: grant {grant['reference']} is revoked, not awarded"
    )
    # The disbursed part is still to be accounted for.
    await report_use(ledger, grant, "4200.00")

    full = await award_grant(ledger, budget["id"], allocation, "1000.00", parties)
    await disburse(ledger, full, "GK-FULL", "1000.00")
    refused = await ledger.post(
        f"/grants/{full['id']}/revocation", json={"reason": "misuse"}, headers=grantor_of(full)
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"cannot revoke: grant {full['reference']} is fully disbursed (1,000.00 of 1,000.00); "
        "report on its use and close it"
    )


def schema_file(event_type: str) -> Draft202012Validator:
    path = SCHEMA_DIR / f"ledger-event.{event_type}.json"
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


async def test_grant_events_in_the_feed(ledger: httpx.AsyncClient, parties: Parties) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "100000.00", parties.street_office_id)
    grant = await award_grant(ledger, budget["id"], allocation, "46000.00", parties)
    gid = grant["id"]
    await disburse(ledger, grant, "GK-1", "40000.00")
    await report_use(ledger, grant, "39000.00")
    ok(await ledger.post(f"/grants/{gid}/closure", json={}, headers=grantor_of(grant)))
    revoked = await award_grant(ledger, budget["id"], allocation, "1000.00", parties)
    ok(
        await ledger.post(
            f"/grants/{revoked['id']}/revocation",
            json={"reason": "withdrawn"},
            headers=grantor_of(revoked),
        )
    )

    entries = await read_whole_feed(ledger)
    assert [e.event_type for e in entries] == [
        "budget.opened",
        "allocation.made",
        "grant.awarded",
        "commitment.made",
        "grant.tranche_disbursed",
        "grant.use_reported",
        "grant.closed",
        "commitment.released",
        "grant.awarded",
        "commitment.made",
        "grant.revoked",
        "commitment.released",
    ]
    for entry in entries:
        EVENT_PAYLOADS[entry.event_type].model_validate(entry.payload)
        schema_file(entry.event_type).validate(entry.model_dump(mode="json")["payload"])
    # Every event names who caused it: finance funds, the street office grants and pays out,
    # the grantee reports; the budget's own events follow the grantor's actions.
    street = ("street", parties.street_office_id)
    assert [
        (e.caused_by.role.value, str(e.caused_by.organization_id)) if e.caused_by else None
        for e in entries
    ] == [
        ("finance", WUHOU_FINANCE_ID),
        ("finance", WUHOU_FINANCE_ID),
        street,
        street,
        street,
        ("provider", parties.provider_id),
        street,
        street,
        street,
        street,
        street,
        street,
    ]

    awarded, committed = entries[2], entries[3]
    assert (awarded.stream_type, str(awarded.stream_id), awarded.stream_version) == (
        "grant",
        gid,
        1,
    )
    assert awarded.occurred_at.isoformat() == AWARDED_AT
    assert awarded.payload == {
        "reference": grant["reference"],
        "purpose": grant["purpose"],
        "budget_id": budget["id"],
        "allocation_id": allocation["id"],
        "grantor_id": parties.street_office_id,
        "grantee_id": parties.provider_id,
        "amount": cny("46000.00"),
    }
    assert (committed.payload["commitment_id"], committed.payload["commitment_kind"]) == (
        gid,
        "grant",
    )
    # Awarding is one transaction: the grant's and the budget's events carry one record time.
    assert awarded.recorded_at == committed.recorded_at
    assert entries[5].payload["disbursed"] == cny("40000.00")
    assert entries[6].payload == {"released": cny("6000.00"), "unspent": cny("1000.00")}
    assert entries[7].payload["amount"] == cny("6000.00")
    assert entries[10].payload == {"reason": "withdrawn", "released": cny("1000.00")}

    history = ok(await ledger.get(f"/streams/{gid}/events", headers=AUDITOR), 200)
    assert [(e["stream_version"], e["event_type"]) for e in history] == [
        (1, "grant.awarded"),
        (2, "grant.tranche_disbursed"),
        (3, "grant.use_reported"),
        (4, "grant.closed"),
    ]
    # Histories are for overseers: even the grant's own parties may not read them.
    for party in (grantor_of(grant), grantee_of(grant)):
        assert (await ledger.get(f"/streams/{gid}/events", headers=party)).status_code == 403


async def test_lists_filter_by_grantee_budget_and_grantor(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    budget = await open_budget(ledger)
    other_budget = await open_budget(ledger, amount="50000.00", year=2015)
    allocation = await allocate(ledger, budget["id"], "100000.00", parties.street_office_id)
    other_allocation = await allocate(
        ledger, other_budget["id"], "50000.00", parties.street_office_id
    )
    other_grantee = another_provider(catalog_url)
    to_provider = [
        await award_grant(ledger, budget["id"], allocation, "1000.00", parties) for _ in range(3)
    ]
    to_other = await award_grant(
        ledger, budget["id"], allocation, "2000.00", parties, grantee_id=other_grantee
    )
    next_year = await award_grant(ledger, other_budget["id"], other_allocation, "3000.00", parties)

    def ids(page: dict[str, Any]) -> list[str]:
        return [g["id"] for g in page["items"]]

    # Finance sees every grant, so its lists show the filters alone at work.
    by_grantee = ok(
        await ledger.get("/grants", params={"grantee_id": other_grantee}, headers=FINANCE), 200
    )
    assert ids(by_grantee) == [to_other["id"]]
    by_budget = ok(
        await ledger.get("/grants", params={"budget_id": other_budget["id"]}, headers=FINANCE),
        200,
    )
    assert ids(by_budget) == [next_year["id"]]
    both = ok(
        await ledger.get(
            "/grants",
            params={"budget_id": budget["id"], "grantee_id": parties.provider_id},
            headers=FINANCE,
        ),
        200,
    )
    assert ids(both) == [g["id"] for g in to_provider]

    seen: list[str] = []
    params: dict[str, Any] = {"grantor_id": parties.street_office_id, "limit": 2}
    while True:
        page = ok(await ledger.get("/grants", params=params, headers=parties.street), 200)
        assert len(page["items"]) <= 2
        seen += ids(page)
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [g["id"] for g in [*to_provider, to_other, next_year]]

    # A grantee's list holds only its own grants, whatever it asks for; another street office
    # sees none of this one's; communities may not list grants at all.
    other = acting(Role.PROVIDER, other_grantee)
    mine = ok(await ledger.get("/grants", params={"budget_id": budget["id"]}, headers=other), 200)
    assert ids(mine) == [to_other["id"]]
    theirs = ok(
        await ledger.get("/grants", params={"grantee_id": parties.provider_id}, headers=other),
        200,
    )
    assert ids(theirs) == []
    stranger = acting(Role.STREET, str(uuid4()))
    strangers = ok(
        await ledger.get(
            "/grants", params={"grantor_id": parties.street_office_id}, headers=stranger
        ),
        200,
    )
    assert ids(strangers) == []
    assert (await ledger.get("/grants", headers=parties.community)).status_code == 403

    # Grants are not contracts, nor budgets: lists and reads keep them apart.
    contracts = ok(
        await ledger.get("/contracts", params={"budget_id": budget["id"]}, headers=FINANCE), 200
    )
    assert contracts["items"] == []
    assert (await ledger.get(f"/contracts/{to_other['id']}", headers=FINANCE)).status_code == 404
    assert (await ledger.get(f"/grants/{budget['id']}", headers=FINANCE)).status_code == 404
