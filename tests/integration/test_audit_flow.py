"""The auditor's funding-flow view of a budget, as JSON and CSV, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import pytest

from proto.actor import Role
from tests.support.actors import AUDITOR, CIVIL_AFFAIRS, FINANCE, acting
from tests.support.catalog import Parties, seed_parties
from tests.support.grants_api import award_grant, disburse, report_use
from tests.support.ledger_api import (
    allocate,
    cny,
    community_of,
    deliver,
    ok,
    open_budget,
    provider_of,
    sign_contract,
    street_of,
)

pytestmark = pytest.mark.asyncio

# The figures every node may carry, as an auditor's spreadsheet expects them, in this order.
FIGURES = (
    "amount",
    "appropriated",
    "allocated",
    "committed",
    "released",
    "accepted",
    "paid",
    "remaining",
    "overdrawn",
)

HOSTILE_PURPOSE = '=HYPERLINK("https://example.invalid/x","report") elderly mutual help'


@dataclass(frozen=True)
class Story:
    """Ids of what the story recorded, and the feed position before its second half."""

    budget_id: str
    allocation_a: str
    allocation_b: str
    contract_a: str
    contract_b: str
    grant_id: str
    deliveries: tuple[str, str, str]
    position: int


async def post(client: httpx.AsyncClient, path: str, headers: dict[str, str], **body: Any) -> Any:
    """A write that must be created."""
    return ok(await client.post(path, json=body, headers=headers))


async def tell_story(ledger: httpx.AsyncClient, a: Parties, b: Parties) -> Story:
    """Two street offices' allocations, a contract each, a grant; paid, reversed, completed."""
    budget = await open_budget(ledger, "500000.00")
    bid = budget["id"]
    allocation_a = await allocate(ledger, bid, "200000.00", a.street_office_id)
    allocation_b = await allocate(ledger, bid, "100000.00", b.street_office_id)
    contract_a = await sign_contract(ledger, bid, allocation_a, "120000.00", a)
    contract_b = await sign_contract(ledger, bid, allocation_b, "80000.00", b)
    ca, cb = f"/contracts/{contract_a['id']}", f"/contracts/{contract_b['id']}"
    for contract in (contract_a, contract_b):
        await post(
            ledger,
            f"/contracts/{contract['id']}/activation",
            street_of(contract),
            occurred_at="2014-04-15T09:00:00+08:00",
        )
    partly = await deliver(ledger, contract_a, "30000.00")
    await post(
        ledger,
        f"{ca}/deliveries/{partly['id']}/acceptance",
        street_of(contract_a),
        amount=cny("29000.00"),
        note="two visits short",
        occurred_at="2014-06-05T10:00:00+08:00",
    )
    pending = await deliver(
        ledger,
        contract_a,
        "20000.00",
        period_start="2014-06-01",
        period_end="2014-06-30",
        occurred_at="2014-07-02T10:00:00+08:00",
    )
    whole = await deliver(ledger, contract_b, "40000.00")
    await post(
        ledger,
        f"{cb}/deliveries/{whole['id']}/acceptance",
        street_of(contract_b),
        occurred_at="2014-06-05T10:00:00+08:00",
    )
    await post(
        ledger,
        f"{ca}/payments",
        street_of(contract_a),
        reference="GK-A-1",
        amount=cny("20000.00"),
        occurred_at="2014-06-10T10:00:00+08:00",
    )
    position = ok(await ledger.get("/events", params={"limit": 1}, headers=AUDITOR), 200)["head"]

    # Recorded after `position`, though the award and its tranche occurred in May.
    grant = await award_grant(ledger, bid, allocation_a, "50000.00", a, purpose=HOSTILE_PURPOSE)
    await disburse(ledger, grant, "GK-G-1", "30000.00")
    await report_use(ledger, grant, "12000.00")
    await post(
        ledger,
        f"{ca}/payments",
        street_of(contract_a),
        reference="GK-A-2",
        amount=cny("9000.00"),
        occurred_at="2014-07-10T10:00:00+08:00",
    )
    await post(
        ledger,
        f"{ca}/payments/GK-A-2/reversal",
        street_of(contract_a),
        reason="returned by the bank",
        occurred_at="2014-07-20T10:00:00+08:00",
    )
    await post(
        ledger,
        f"{cb}/payments",
        street_of(contract_b),
        reference="GK-B-1",
        amount=cny("40000.00"),
        occurred_at="2014-08-01T10:00:00+08:00",
    )
    # Completion releases the 40,000.00 of contract B's value that was never delivered.
    await post(
        ledger, f"{cb}/completion", street_of(contract_b), occurred_at="2014-09-30T17:00:00+08:00"
    )
    return Story(
        budget_id=bid,
        allocation_a=allocation_a["id"],
        allocation_b=allocation_b["id"],
        contract_a=contract_a["id"],
        contract_b=contract_b["id"],
        grant_id=grant["id"],
        deliveries=(partly["id"], pending["id"], whole["id"]),
        position=position,
    )


async def story_of(ledger: httpx.AsyncClient, parties: Parties, catalog_url: str) -> Story:
    """The story, with a second street office, community, provider and item in the catalog."""
    return await tell_story(ledger, parties, seed_parties(catalog_url))


async def flow(ledger: httpx.AsyncClient, story: Story, **params: str) -> dict[str, Any]:
    """The flow JSON, read by an auditor."""
    url = f"/audit/budgets/{story.budget_id}/flow"
    result: dict[str, Any] = ok(await ledger.get(url, params=params, headers=AUDITOR), 200)
    return result


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node, root first, depth first."""
    yield node
    for child in node["children"]:
        yield from walk(child)


def by_id(root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Nodes by id (payments and tranches by their treasury reference)."""
    return {node["id"]: node for node in walk(root)}


def figures(node: dict[str, Any], *names: str) -> tuple[str | None, ...]:
    """The named figures as decimal strings, None where null."""
    return tuple(node[n]["amount"] if node[n] is not None else None for n in names)


def fen(money: dict[str, str] | None) -> Decimal:
    """An amount as an exact decimal; a null figure counts as nothing."""
    return Decimal(money["amount"]) if money is not None else Decimal(0)


def total(children: list[dict[str, Any]], figure: str, kind: str | None = None) -> Decimal:
    """The sum of a figure over children (of one kind)."""
    return sum((fen(c[figure]) for c in children if kind in (None, c["kind"])), Decimal(0))


def check_consistency(node: dict[str, Any]) -> None:
    """Every parent's figures are its children's sums, and every remaining is as defined."""
    kids = node["children"]
    if node["kind"] in ("budget", "allocation"):
        for figure in ("committed", "released", "accepted", "paid"):
            assert fen(node[figure]) == total(kids, figure), (node["id"], figure)
    if node["kind"] == "budget":
        assert fen(node["allocated"]) == total(kids, "allocated")
        assert fen(node["remaining"]) == fen(node["appropriated"]) - fen(node["committed"])
        unallocated = fen(node["appropriated"]) - fen(node["allocated"])
        assert fen(node["remaining"]) == unallocated + total(kids, "remaining")
    if node["kind"] == "allocation":
        assert fen(node["remaining"]) == fen(node["allocated"]) - fen(node["committed"])
    if node["kind"] in ("contract", "grant"):
        assert fen(node["committed"]) + fen(node["released"]) == fen(node["amount"])
        assert fen(node["remaining"]) == fen(node["committed"]) - fen(node["paid"])
        assert fen(node["paid"]) == total(kids, "paid")
    if node["kind"] == "contract":
        assert fen(node["accepted"]) == total(kids, "accepted", "delivery")
    for child in kids:
        assert child["level"] == node["level"] + 1
        check_consistency(child)


async def test_every_figure_is_exact_and_children_sum_to_their_parents(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    story = await story_of(ledger, parties, catalog_url)
    answer = await flow(ledger, story)
    head = ok(await ledger.get("/events", params={"limit": 1}, headers=AUDITOR), 200)["head"]
    assert (answer["budget_id"], answer["position"], answer["as_of"]) == (
        story.budget_id,
        head,
        None,
    )
    root = answer["budget"]
    check_consistency(root)
    six = ("appropriated", "allocated", "committed", "released", "accepted", "paid", "remaining")
    assert figures(root, *six) == (
        "500000.00",
        "300000.00",
        "210000.00",
        "40000.00",
        "81000.00",
        "90000.00",
        "290000.00",
    )
    nodes = by_id(root)
    a, b = nodes[story.allocation_a], nodes[story.allocation_b]
    assert [c["id"] for c in root["children"]] == [story.allocation_a, story.allocation_b]
    assert figures(a, *six) == (
        None,
        "200000.00",
        "170000.00",
        "0.00",
        "41000.00",
        "50000.00",
        "30000.00",
    )
    assert figures(b, *six) == (
        None,
        "100000.00",
        "40000.00",
        "40000.00",
        "40000.00",
        "40000.00",
        "60000.00",
    )
    # Allocation A holds the contract, then the grant, in the order they were committed.
    assert [(c["kind"], c["id"]) for c in a["children"]] == [
        ("contract", story.contract_a),
        ("grant", story.grant_id),
    ]
    owed = ("amount", "committed", "released", "accepted", "paid", "remaining")
    contract_a, grant, contract_b = (
        nodes[story.contract_a],
        nodes[story.grant_id],
        nodes[story.contract_b],
    )
    assert figures(contract_a, *owed) == (
        "120000.00",
        "120000.00",
        "0.00",
        "29000.00",
        "20000.00",
        "100000.00",
    )
    assert (contract_a["state"], contract_a["provider_id"]) == ("active", parties.provider_id)
    assert contract_a["item_ids"] == [parties.item_id]
    assert figures(grant, *owed) == (
        "50000.00",
        "50000.00",
        "0.00",
        "12000.00",
        "30000.00",
        "20000.00",
    )
    assert (grant["title"], grant["provider_id"]) == (HOSTILE_PURPOSE, parties.provider_id)
    assert figures(contract_b, *owed) == (
        "80000.00",
        "40000.00",
        "40000.00",
        "40000.00",
        "40000.00",
        "0.00",
    )
    assert contract_b["state"] == "completed"
    partly, pending, whole = (nodes[d] for d in story.deliveries)
    assert (partly["state"], *figures(partly, "amount", "accepted")) == (
        "accepted",
        "30000.00",
        "29000.00",
    )
    assert (pending["state"], *figures(pending, "amount", "accepted")) == (
        "pending",
        "20000.00",
        "0.00",
    )
    assert (whole["state"], *figures(whole, "amount", "accepted")) == (
        "accepted",
        "40000.00",
        "40000.00",
    )
    # The reversed payment stays on record at its amount but counts nothing as paid.
    payments = [(n["id"], n["state"], *figures(n, "amount", "paid")) for n in walk(root)]
    assert [p for p in payments if p[1] in ("paid", "reversed", "disbursed")] == [
        ("GK-A-1", "paid", "20000.00", "20000.00"),
        ("GK-A-2", "reversed", "9000.00", "0.00"),
        ("GK-G-1", "disbursed", "30000.00", "30000.00"),
        ("GK-B-1", "paid", "40000.00", "40000.00"),
    ]
    assert all(n["overdrawn"] is None for n in walk(root))


async def test_as_of_a_business_time_replays_payments_and_reversals(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    story = await story_of(ledger, parties, catalog_url)
    june = await flow(ledger, story, as_of="2014-06-30T23:59:59+08:00")
    assert june["as_of"] == "2014-06-30T23:59:59+08:00"
    root = june["budget"]
    check_consistency(root)
    nodes = by_id(root)
    # B's payment (1 August) and completion (30 September) had not happened yet.
    contract_b = nodes[story.contract_b]
    assert "GK-B-1" not in nodes
    assert contract_b["state"] == "active"
    assert figures(contract_b, "committed", "released", "accepted", "paid", "remaining") == (
        "80000.00",
        "0.00",
        "40000.00",
        "0.00",
        "80000.00",
    )
    # A's second delivery was reported on 2 July, its second payment made on 10 July.
    assert story.deliveries[1] not in nodes
    assert "GK-A-2" not in nodes
    assert figures(nodes[story.contract_a], "accepted", "paid") == ("29000.00", "20000.00")
    # The grant's tranche was paid in May; its report on use came in December.
    assert figures(nodes[story.grant_id], "accepted", "paid") == ("0.00", "30000.00")
    assert figures(root, "committed", "released", "accepted", "paid", "remaining") == (
        "250000.00",
        "0.00",
        "69000.00",
        "50000.00",
        "250000.00",
    )

    # Between its payment (10 July) and its reversal (20 July), GK-A-2 counted as paid.
    mid_july = by_id((await flow(ledger, story, as_of="2014-07-15T00:00:00+08:00"))["budget"])
    assert (mid_july["GK-A-2"]["state"], *figures(mid_july["GK-A-2"], "paid")) == (
        "paid",
        "9000.00",
    )
    assert figures(mid_july[story.contract_a], "paid") == ("29000.00",)


async def test_known_at_a_position_shows_the_ledger_as_it_then_stood(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    story = await story_of(ledger, parties, catalog_url)
    then = await flow(ledger, story, known_at=str(story.position))
    assert then["position"] == story.position
    root = then["budget"]
    check_consistency(root)
    nodes = by_id(root)
    # The grant was recorded later, though dated May: the ledger did not know of it yet.
    assert story.grant_id not in nodes
    assert [c["id"] for c in nodes[story.allocation_a]["children"]] == [story.contract_a]
    assert "GK-A-2" not in nodes
    assert "GK-B-1" not in nodes
    assert figures(nodes[story.contract_b], "committed", "released", "paid") == (
        "80000.00",
        "0.00",
        "0.00",
    )
    assert figures(root, "committed", "accepted", "paid", "remaining") == (
        "200000.00",
        "69000.00",
        "20000.00",
        "300000.00",
    )
    # The same question asked again gives the same answer, whatever was recorded since.
    assert await flow(ledger, story, known_at=str(story.position)) == then
    far_future = await flow(ledger, story, known_at=str(10**15))
    assert far_future == await flow(ledger, story)


async def test_csv_parses_and_matches_the_json(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str
) -> None:
    story = await story_of(ledger, parties, catalog_url)
    params = {"as_of": "2014-12-31T23:59:59+08:00"}
    answer = await flow(ledger, story, **params)
    response = await ledger.get(
        f"/audit/budgets/{story.budget_id}/flow.csv", params=params, headers=AUDITOR
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    position = answer["position"]
    assert response.headers["content-disposition"] == (
        f'attachment; filename="budget-{story.budget_id}-flow-at-{position}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    nodes = list(walk(answer["budget"]))
    assert len(rows) == len(nodes)
    for row, node in zip(rows, nodes, strict=True):
        assert (row["level"], row["kind"]) == (str(node["level"]), node["kind"])
        assert (row["position"], row["as_of"]) == (str(position), "2014-12-31T23:59:59+08:00")
        for figure in FIGURES:
            expected = node[figure]["amount"] if node[figure] is not None else ""
            assert row[figure] == expected, (node["id"], figure)
    # Each row names its ancestors: a payment's row carries its budget, allocation, contract.
    payment = next(r for r in rows if r["entry_id"] == "GK-A-1")
    assert (payment["budget_id"], payment["allocation_id"], payment["commitment_id"]) == (
        story.budget_id,
        story.allocation_a,
        story.contract_a,
    )
    # A purpose a spreadsheet would run as a formula is shown as text instead.
    grant = next(r for r in rows if r["kind"] == "grant")
    assert grant["title"] == "'" + HOSTILE_PURPOSE
    assert (grant["commitment_id"], grant["provider_id"]) == (story.grant_id, parties.provider_id)


async def test_only_overseers_may_read_the_flow(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "500.00", parties)
    service = acting(Role.SERVICE, str(uuid4()))
    for suffix in ("flow", "flow.csv"):
        url = f"/audit/budgets/{budget['id']}/{suffix}"
        # Even the budget's own street office and provider see only their part elsewhere.
        for caller in (
            street_of(contract),
            provider_of(contract),
            community_of(contract),
            CIVIL_AFFAIRS,
        ):
            refused = await ledger.get(url, headers=caller)
            assert refused.status_code == 403, (suffix, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
        for overseer in (FINANCE, AUDITOR, service):
            assert (await ledger.get(url, headers=overseer)).status_code == 200, suffix
        assert (await ledger.get(url)).status_code == 401


async def test_unknown_or_not_yet_existing_budget_is_404(ledger: httpx.AsyncClient) -> None:
    budget = await open_budget(ledger)  # opened 2014-01-01
    for suffix in ("flow", "flow.csv"):
        missing = await ledger.get(f"/audit/budgets/{uuid4()}/{suffix}", headers=AUDITOR)
        assert missing.status_code == 404, missing.text
        assert missing.headers["content-type"] == "application/problem+json"
        url = f"/audit/budgets/{budget['id']}/{suffix}"
        before = await ledger.get(
            url, params={"as_of": "2013-12-31T00:00:00+08:00"}, headers=AUDITOR
        )
        assert before.status_code == 404
        unrecorded = await ledger.get(url, params={"known_at": "0"}, headers=AUDITOR)
        assert unrecorded.status_code == 404


async def test_a_back_dated_cut_shows_as_overdrawn_as_of_then(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "800.00", parties)
    await post(
        ledger,
        f"/contracts/{contract['id']}/termination",
        street_of(contract),
        reason="the provider withdrew",
        occurred_at="2014-06-01T09:00:00+08:00",
    )
    # Allowed now that the 800.00 is released, but dated before the release.
    await post(
        ledger,
        f"/budgets/{budget['id']}/allocations/{allocation['id']}/adjustments",
        FINANCE,
        direction="decrease",
        amount=cny("900.00"),
        reason="reassigned to another street office",
        occurred_at="2014-05-01T09:00:00+08:00",
    )
    url = f"/audit/budgets/{budget['id']}/flow"
    may = ok(
        await ledger.get(url, params={"as_of": "2014-05-15T00:00:00+08:00"}, headers=AUDITOR), 200
    )
    node = by_id(may["budget"])[allocation["id"]]
    assert figures(node, "allocated", "committed", "remaining", "overdrawn") == (
        "100.00",
        "800.00",
        "0.00",
        "700.00",
    )
    now = by_id(ok(await ledger.get(url, headers=AUDITOR), 200)["budget"])[allocation["id"]]
    assert figures(now, "allocated", "committed", "released", "remaining", "overdrawn") == (
        "100.00",
        "0.00",
        "800.00",
        "100.00",
        None,
    )


def pruned(node: dict[str, Any]) -> dict[str, Any]:
    """A node with its deliveries, payments and tranches left out, at any depth."""
    kept = [
        pruned(c) for c in node["children"] if c["kind"] not in ("delivery", "payment", "tranche")
    ]
    return {**node, "children": kept}


@pytest.mark.parametrize("source", ["read-model", "replay"])
async def test_a_flow_read_to_contracts_is_the_whole_flow_less_what_lies_below_them(
    ledger: httpx.AsyncClient, parties: Parties, catalog_url: str, source: str
) -> None:
    story = await story_of(ledger, parties, catalog_url)
    for as_of in ("2014-12-31T23:59:59+08:00", "2014-06-30T23:59:59+08:00"):
        whole = await flow(ledger, story, source=source, as_of=as_of)
        shallow = await flow(ledger, story, source=source, as_of=as_of, depth="contracts")
        assert shallow["budget"] == pruned(whole["budget"])
        assert any(n["kind"] == "delivery" for n in walk(whole["budget"]))
    refused = await ledger.get(
        f"/audit/budgets/{story.budget_id}/flow", params={"depth": "sideways"}, headers=AUDITOR
    )
    assert refused.status_code == 422
