"""The ledger's OCDS 1.1 export, checked as an auditor would, with libcoveocds offline.

Every package must pass libcoveocds against OCDS 1.1.5 with no validation error and no value
outside a closed codelist; the figures in it must be the ledger's own.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from ocdsmerge import Merger  # type: ignore[import-untyped]

from proto.actor import Role
from services.ledger.api import audit_ocds
from services.ledger.audit.ocds import MERGE_RULES, check_prefix, export_ocds
from tests.support.actors import AUDITOR, FINANCE, WUHOU_FINANCE_ID, acting
from tests.support.catalog import Parties, another_provider
from tests.support.ledger_api import (
    allocate,
    cny,
    contract_body,
    deliver,
    ok,
    open_budget,
    sign_contract,
    street_of,
)
from tests.support.ocds import ocds_errors, open_codelist_additions, standard_merge_rules

PREFIX = "ocds-community-ledger"
SERVICE = acting(Role.SERVICE, str(uuid4()))


def exact(response: httpx.Response) -> Any:
    """A JSON body with its numbers read as decimals, as an auditor's tools should read money."""
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.text, parse_float=Decimal)


async def releases_of(ledger: httpx.AsyncClient, contract: dict[str, Any]) -> dict[str, Any]:
    """The release package of a contract's process, read by an auditor; it must pass libcoveocds."""
    response = await ledger.get(f"/audit/ocds/contracts/{contract['id']}/releases", headers=AUDITOR)
    assert ocds_errors(response.json()) == []
    package: dict[str, Any] = exact(response)
    return package


async def record_of(ledger: httpx.AsyncClient, contract: dict[str, Any]) -> dict[str, Any]:
    """The record package of a contract's process; it must pass libcoveocds."""
    response = await ledger.get(f"/audit/ocds/contracts/{contract['id']}/record", headers=AUDITOR)
    assert ocds_errors(response.json()) == []
    package: dict[str, Any] = exact(response)
    return package


def roles(release: dict[str, Any]) -> dict[str, list[str]]:
    """Each party's roles, by party id."""
    return {party["id"]: party["roles"] for party in release["parties"]}


async def stream_positions(ledger: httpx.AsyncClient, stream_id: str) -> list[int]:
    """The feed positions of one aggregate's events."""
    entries = ok(await ledger.get(f"/streams/{stream_id}/events", headers=AUDITOR), 200)
    return [entry["position"] for entry in entries]


async def post(ledger: httpx.AsyncClient, path: str, body: dict[str, Any], headers: Any) -> Any:
    """A write that must be recorded (201)."""
    return ok(await ledger.post(path, json=body, headers=headers))


async def pay(
    ledger: httpx.AsyncClient, contract: dict[str, Any], reference: str, amount: str, day: str
) -> None:
    """A treasury payment recorded by the street office."""
    await post(
        ledger,
        f"/contracts/{contract['id']}/payments",
        {"reference": reference, "amount": cny(amount), "occurred_at": f"{day}T10:00:00+08:00"},
        street_of(contract),
    )


async def decide(
    ledger: httpx.AsyncClient,
    contract: dict[str, Any],
    delivery: dict[str, Any],
    how: str,
    **body: Any,
) -> None:
    """The street office's acceptance or rejection of a delivery."""
    path = f"/contracts/{contract['id']}/deliveries/{delivery['id']}/{how}"
    await post(ledger, path, body, street_of(contract))


async def entrusted_and_paid(
    ledger: httpx.AsyncClient, parties: Parties
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A directly entrusted contract, active, three deliveries decided three ways, two payments."""
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
    activation = {"occurred_at": "2014-04-15T09:00:00+08:00"}
    await post(ledger, f"/contracts/{contract['id']}/activation", activation, street_of(contract))
    may = await deliver(ledger, contract, "30000.00")
    june = await deliver(
        ledger,
        contract,
        "30000.00",
        period_start="2014-06-01",
        period_end="2014-06-30",
        occurred_at="2014-07-02T10:00:00+08:00",
    )
    july = await deliver(
        ledger,
        contract,
        "10000.00",
        period_start="2014-07-01",
        period_end="2014-07-31",
        occurred_at="2014-08-02T10:00:00+08:00",
    )
    await decide(
        ledger, contract, may, "acceptance", score=90, occurred_at="2014-06-05T10:00:00+08:00"
    )
    await decide(
        ledger,
        contract,
        june,
        "acceptance",
        amount=cny("20000.00"),
        note="two weeks of visits missed",
        occurred_at="2014-07-05T10:00:00+08:00",
    )
    await decide(
        ledger,
        contract,
        july,
        "rejection",
        reason="no sign-in sheets",
        occurred_at="2014-08-05T10:00:00+08:00",
    )
    await pay(ledger, contract, "GK-2014-06-0001", "30000.00", "2014-06-10")
    await pay(ledger, contract, "GK-2014-07-0002", "20000.00", "2014-07-10")
    return contract, [may, june, july]


@pytest.mark.asyncio
async def test_a_directly_entrusted_contract_is_an_ocds_process_an_auditor_can_check(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    contract, deliveries = await entrusted_and_paid(ledger, parties)
    before = await releases_of(ledger, contract)
    await post(
        ledger,
        f"/contracts/{contract['id']}/payments/GK-2014-07-0002/reversal",
        {"reason": "returned by the bank", "occurred_at": "2014-07-20T10:00:00+08:00"},
        street_of(contract),
    )
    await pay(ledger, contract, "GK-2014-07-0003", "20000.00", "2014-07-25")
    completion = {"occurred_at": "2014-12-31T17:00:00+08:00"}
    await post(ledger, f"/contracts/{contract['id']}/completion", completion, street_of(contract))
    package = await releases_of(ledger, contract)
    ocid = f"{PREFIX}-{contract['project_id']}"
    releases = package["releases"]
    assert {r["ocid"] for r in releases} == {ocid}
    # Releases are immutable: those published before stay exactly as they were.
    assert releases[: len(before["releases"])] == before["releases"]
    # One release per event of the process, named by its feed position, in feed order.
    positions = [int(r["id"].removeprefix(f"{ocid}-")) for r in releases]
    assert positions == sorted(positions)
    project_events = await stream_positions(ledger, contract["project_id"])
    contract_events = await stream_positions(ledger, contract["id"])
    assert set(project_events) | set(contract_events) < set(positions)
    assert [r["tag"] for r in releases] == [
        ["planning"],
        ["award"],
        ["contract"],
        ["planningUpdate"],
        ["awardUpdate"],
        ["contractUpdate"],
        *[["implementation"]] * 3,
        *[["implementationUpdate"]] * 3,
        ["implementation"],
        ["implementation"],
        ["implementationUpdate"],
        ["implementation"],
        ["contractTermination"],
        ["planningUpdate"],
    ]
    assert releases[0]["date"] == "2014-04-01T09:00:00+08:00"  # the business time
    assert releases[0]["tender"]["procurementMethod"] == "direct"

    record = await record_of(ledger, contract)
    [entry] = record["records"]
    assert entry["ocid"] == ocid
    assert entry["releases"] == releases
    compiled = entry["compiledRelease"]
    assert compiled["tag"] == ["compiled"]
    assert roles(compiled) == {
        parties.street_office_id: ["buyer", "procuringEntity"],
        WUHOU_FINANCE_ID: ["funder", "payer"],
        parties.provider_id: ["supplier", "payee"],
        parties.community_id: ["community"],
    }
    names = {party["id"]: party["name"] for party in compiled["parties"]}
    assert names[parties.street_office_id].startswith("Cuqiao street office")
    assert names[WUHOU_FINANCE_ID] == WUHOU_FINANCE_ID  # not in the catalog: named by its id
    assert open_codelist_additions(record) == {
        "records/compiledRelease/parties/roles": ["community"],
        "records/releases/parties/roles": ["community"],
    }

    ledger_view = ok(await ledger.get(f"/contracts/{contract['id']}", headers=AUDITOR), 200)
    assert compiled["tender"]["status"] == "complete"
    [award] = compiled["awards"]
    assert (award["status"], award["value"]) == (
        "active",
        {"amount": Decimal("360000.00"), "currency": "CNY"},
    )
    assert [s["id"] for s in award["suppliers"]] == [parties.provider_id]
    # Completion gave back what was not accepted: the budget keeps what the contract spent.
    reserved = compiled["planning"]["budget"]["amount"]["amount"]
    assert reserved == Decimal(ledger_view["committed"]["amount"]) == Decimal("50000.00")
    [terms] = compiled["contracts"]
    assert (terms["id"], terms["awardID"], terms["status"]) == (
        contract["id"],
        award["id"],
        "terminated",
    )
    assert terms["value"]["amount"] == Decimal(ledger_view["value"]["amount"])
    assert terms["dateSigned"] == "2014-04-14T10:00:00+08:00"
    transactions = terms["implementation"]["transactions"]
    assert [t["id"] for t in transactions] == [
        "payment:GK-2014-06-0001",
        "payment:GK-2014-07-0002",
        "reversal:GK-2014-07-0002",
        "payment:GK-2014-07-0003",
    ]
    paid = sum(t["value"]["amount"] for t in transactions)
    assert paid == Decimal(ledger_view["paid"]["amount"]) == Decimal("50000.00")
    assert {(t["payer"]["id"], t["payee"]["id"]) for t in transactions} == {
        (WUHOU_FINANCE_ID, parties.provider_id)
    }
    milestones = {m["id"]: m for m in terms["implementation"]["milestones"]}
    assert [milestones[d["id"]]["status"] for d in deliveries] == ["met", "partiallyMet", "notMet"]
    assert {m["type"] for m in milestones.values()} == {"delivery"}
    assert milestones[deliveries[0]["id"]]["dateMet"] == "2014-06-05T10:00:00+08:00"
    # Amounts travel as JSON numbers written from the exact decimal, never through a float.
    raw = await ledger.get(f"/audit/ocds/contracts/{contract['id']}/record", headers=AUDITOR)
    assert '"value":{"amount":360000.00,"currency":"CNY"}' in raw.text


async def open_call(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> tuple[dict[str, Any], list[str]]:
    """An open call with three applicants, awarded, objected to, answered, then contracted."""
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
    street = parties.street
    project = await post(
        ledger,
        "/projects",
        {
            "reference": f"WH-2014-P-{uuid4().hex[:6]}",
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
            "occurred_at": "2014-03-31T09:00:00+08:00",
        },
        street,
    )
    pid = project["id"]
    await post(
        ledger, f"/projects/{pid}/publication", {"occurred_at": "2014-03-31T10:00:00+08:00"}, street
    )
    applicants = [parties.provider_id, another_provider(catalog_url), another_provider(catalog_url)]
    applications = []
    for day, (applicant, price) in enumerate(
        zip(applicants, ("380000.00", "360000.00", "300000.00"), strict=True), start=3
    ):
        body = {
            "provider_id": applicant,
            "price": cny(price),
            "proposal_sha256": "c" * 64,
            "occurred_at": f"2014-04-{day:02d}T10:00:00+08:00",
        }
        applications.append(
            await post(
                ledger, f"/projects/{pid}/applications", body, acting(Role.PROVIDER, applicant)
            )
        )
    await post(
        ledger, f"/projects/{pid}/closure", {"occurred_at": "2014-04-10T17:00:00+08:00"}, street
    )
    scores = [(92, True), (85, True), (40, False)]
    await post(
        ledger,
        f"/projects/{pid}/evaluation",
        {
            "panel": ["Civil affairs bureau", "Street office", "Social work expert"],
            "scores": [
                {"application_id": a["id"], "score": s, "acceptable": ok_, "reason": "reasons"}
                for a, (s, ok_) in zip(applications, scores, strict=True)
            ],
            "occurred_at": "2014-04-11T10:00:00+08:00",
        },
        street,
    )
    awarded = await post(
        ledger,
        f"/projects/{pid}/award",
        {
            "application_id": applications[0]["id"],
            "publicity_ends_at": "2014-04-13T17:00:00+08:00",
            "occurred_at": "2014-04-11T12:00:00+08:00",
        },
        street,
    )
    objected = await post(
        ledger,
        f"/projects/{pid}/objections",
        {
            "provider_id": applicants[2],
            "text": "the lowest price should have won",
            "occurred_at": "2014-04-12T09:00:00+08:00",
        },
        acting(Role.PROVIDER, applicants[2]),
    )
    [objection] = objected["objections"]
    await post(
        ledger,
        f"/projects/{pid}/objections/{objection['id']}/answer",
        {"answer": "too low to staff the service", "occurred_at": "2014-04-13T09:00:00+08:00"},
        street,
    )
    body = contract_body(budget["id"], allocation, "380000.00", parties, awarded)
    contract = await post(ledger, "/contracts", body, street)
    return contract, applicants


@pytest.mark.asyncio
async def test_an_open_call_shows_its_tenderers_award_and_objection(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    contract, applicants = await open_call(ledger, parties, catalog_url)
    activation = {"occurred_at": "2014-04-15T09:00:00+08:00"}
    await post(ledger, f"/contracts/{contract['id']}/activation", activation, street_of(contract))
    delivery = await deliver(ledger, contract, "40000.00")
    await decide(ledger, contract, delivery, "acceptance", occurred_at="2014-06-05T10:00:00+08:00")
    await pay(ledger, contract, "GK-2014-06-0101", "40000.00", "2014-06-06")
    june = await deliver(
        ledger,
        contract,
        "20000.00",
        period_start="2014-06-01",
        period_end="2014-06-30",
        occurred_at="2014-07-02T10:00:00+08:00",
    )
    await decide(ledger, contract, june, "acceptance", occurred_at="2014-07-05T10:00:00+08:00")
    await decide(
        ledger,
        contract,
        june,
        "acceptance-reversal",
        reason="accepted by mistake",
        occurred_at="2014-07-06T10:00:00+08:00",
    )

    package = await releases_of(ledger, contract)
    releases = package["releases"]
    tags = [tag for release in releases for tag in release["tag"]]
    assert tags[:2] == ["planning", "tender"]
    assert tags.count("tenderUpdate") == 5  # three applications, the closing, the evaluation
    assert tags.index("award") < tags.index("contract")
    # No release before the award shows any applicant's price: sealed, then only disclosed.
    award_at = tags.index("award")
    for release in releases[:award_at]:
        text = json.dumps(release, default=str)
        assert not any(price in text for price in ("380000", "360000", "300000")), release["tag"]

    [entry] = (await record_of(ledger, contract))["records"]
    compiled = entry["compiledRelease"]
    tender = compiled["tender"]
    assert (tender["procurementMethod"], tender["status"]) == ("open", "complete")
    assert tender["numberOfTenderers"] == 3
    assert [t["id"] for t in tender["tenderers"]] == applicants
    assert tender["tenderPeriod"] == {
        "startDate": "2014-04-01T09:00:00+08:00",
        "endDate": "2014-04-10T17:00:00+08:00",
    }
    [objection] = tender["milestones"]
    assert (objection["type"], objection["status"]) == ("assessment", "met")
    assert "too low to staff the service" in objection["description"]
    [award] = compiled["awards"]
    assert award["status"] == "active"
    assert award["value"]["amount"] == Decimal("380000.00")
    assert award["date"] == "2014-04-11T12:00:00+08:00"
    assert roles(compiled) == {
        parties.street_office_id: ["buyer", "procuringEntity"],
        WUHOU_FINANCE_ID: ["funder", "payer"],
        parties.provider_id: ["tenderer", "supplier", "payee"],
        applicants[1]: ["tenderer"],
        applicants[2]: ["tenderer"],
        parties.community_id: ["community"],
    }
    [terms] = compiled["contracts"]
    assert terms["awardID"] == award["id"]
    met, reversed_ = terms["implementation"]["milestones"]
    assert (met["id"], met["status"], met["dateMet"]) == (
        delivery["id"],
        "met",
        "2014-06-05T10:00:00+08:00",
    )
    # A reversed acceptance is not met, and its release takes the date met away again.
    assert (reversed_["id"], reversed_["status"]) == (june["id"], "notMet")
    assert "dateMet" not in reversed_
    [payment] = terms["implementation"]["transactions"]
    assert payment["value"] == {"amount": Decimal("40000.00"), "currency": "CNY"}
    # The payment keeps its business time (the ledger refuses one dated before the acceptance
    # it pays for), and merging by date, as every OCDS tool does, gives the ledger's own record.
    assert payment["date"] == "2014-06-06T10:00:00+08:00"
    paid_in = next(r for r in releases if "transactions" in str(r.get("contracts")))
    assert paid_in["date"] == "2014-06-06T10:00:00+08:00"
    merged = Merger(merge_rules=standard_merge_rules()).create_compiled_release(releases)
    assert merged == compiled


@pytest.mark.asyncio
async def test_only_overseers_read_ocds_and_unknown_contracts_are_not_found(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
    paths = [
        f"/audit/ocds/contracts/{contract['id']}/releases",
        f"/audit/ocds/contracts/{contract['id']}/record",
        "/audit/ocds/releases",
    ]
    # Even the contract's own parties are refused: the export is for overseers.
    for caller in (parties.street, parties.community, parties.provider):
        for path in paths:
            refused = await ledger.get(path, headers=caller)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
    for caller in (AUDITOR, FINANCE, SERVICE):
        for path in paths:
            assert (await ledger.get(path, headers=caller)).status_code == 200
    unknown = uuid4()
    for path in (
        f"/audit/ocds/contracts/{unknown}/releases",
        f"/audit/ocds/contracts/{unknown}/record",
    ):
        missing = await ledger.get(path, headers=AUDITOR)
        assert missing.status_code == 404, missing.text
        assert missing.headers["content-type"] == "application/problem+json"
        # A project is not a contract either.
        other = await ledger.get(
            path.replace(str(unknown), contract["project_id"]), headers=AUDITOR
        )
        assert other.status_code == 404
        assert (await ledger.get(path, headers=parties.street)).status_code == 403
    assert (await ledger.get("/audit/ocds/contracts/x/record", headers=AUDITOR)).status_code == 422


@pytest.mark.asyncio
async def test_releases_are_listed_across_contracts_by_budget_page_by_page(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
    first = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
    second = await sign_contract(ledger, budget["id"], allocation, "200000.00", parties)
    elsewhere = await open_budget(ledger)
    other = await allocate(ledger, elsewhere["id"], "500000.00", parties.street_office_id)
    await sign_contract(ledger, elsewhere["id"], other, "100000.00", parties)

    ocids = []
    url: str | None = f"/audit/ocds/releases?budget_id={budget['id']}&limit=1"
    while url is not None:
        response = await ledger.get(url, headers=AUDITOR)
        package = exact(response)
        assert ocds_errors(response.json()) == []
        ocids.append(sorted({r["ocid"] for r in package["releases"]}))
        link = response.headers.get("link")
        url = link.partition(">")[0].removeprefix("<") if link else None
    assert ocids == [[f"{PREFIX}-{first['project_id']}"], [f"{PREFIX}-{second['project_id']}"]]

    everything = exact(await ledger.get("/audit/ocds/releases", headers=AUDITOR))
    assert len({r["ocid"] for r in everything["releases"]}) == 3
    # OCDS has no empty release package: a page without contracts is not found.
    empty = await ledger.get(f"/audit/ocds/releases?budget_id={uuid4()}", headers=AUDITOR)
    assert empty.status_code == 404
    assert empty.headers["content-type"] == "application/problem+json"


@pytest.mark.asyncio
async def test_export_writes_a_release_and_a_record_package_per_contract(
    ledger: httpx.AsyncClient, ledger_app: FastAPI, parties: Parties, tmp_path: Path
) -> None:
    contract, _ = await entrusted_and_paid(ledger, parties)
    written = await asyncio.to_thread(export_ocds, ledger_app.state.ledger, tmp_path / "ocds")
    ocid = f"{PREFIX}-{contract['project_id']}"
    assert sorted(p.name for p in written) == [f"{ocid}.record.json", f"{ocid}.releases.json"]
    for path in written:
        assert ocds_errors(json.loads(path.read_text())) == []
    on_file = json.loads((tmp_path / "ocds" / f"{ocid}.record.json").read_text())
    served = await ledger.get(f"/audit/ocds/contracts/{contract['id']}/record", headers=AUDITOR)
    assert on_file["records"] == served.json()["records"]
    assert on_file["uri"] == (tmp_path / "ocds" / f"{ocid}.record.json").resolve().as_uri()
    assert on_file["publishedDate"] == served.json()["publishedDate"]

    renamed = await asyncio.to_thread(
        export_ocds, ledger_app.state.ledger, tmp_path / "wuhou", prefix="ocds-a1b2c3-wuhou"
    )
    assert {p.name.split(".")[0] for p in renamed} == {
        f"ocds-a1b2c3-wuhou-{contract['project_id']}"
    }


def test_the_merge_rules_are_those_of_ocds_1_1_5() -> None:
    assert standard_merge_rules() == MERGE_RULES


@pytest.mark.parametrize(
    "prefix", ["ocds-abc", "OCDS-ABCDEF", "ocds-abcdef/..", "community-ledger"]
)
def test_an_ocid_prefix_must_have_the_form_ocds_gives_it(prefix: str) -> None:
    with pytest.raises(ValueError, match="is not `ocds-`"):
        check_prefix(prefix)
    with pytest.raises(ValueError, match="is not `ocds-`"):
        audit_ocds.ocds_router(prefix)
