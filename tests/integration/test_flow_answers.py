"""Flow answers kept between reads, on SQLite and PostgreSQL: a kept answer is always the one a
fresh build gives, at every position and date; a change to the budget, or a rebuild of the read
model, puts it aside; a change to another budget does not. The same terms, as an entity tag,
answer a caller's `If-None-Match`. A whole flow is joined from parts kept below each contract
and grant: a change to one contract builds that contract's part again, and the answer is the
whole tree built at once, byte for byte."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI

from proto.actor import Actor, Role
from services.ledger.audit.flow import budget_flow
from services.ledger.audit.flow_answers import KeptAnswers
from tests.support.actors import AUDIT_OFFICE_ID, AUDITOR
from tests.support.catalog import Parties
from tests.support.grants_api import award_grant, disburse
from tests.support.ledger_api import (
    allocate,
    cny,
    deliver,
    feed_head,
    ok,
    open_budget,
    sign_contract,
    street_of,
)

pytestmark = pytest.mark.asyncio

FRESH = {**AUDITOR, "Cache-Control": "no-cache"}
DATES = (None, "2014-05-31T23:59:59+08:00", "2014-12-31T23:59:59+08:00")


async def a_paid_contract(ledger: httpx.AsyncClient, parties: Parties) -> dict[str, Any]:
    """A budget, an allocation and a contract, delivered, accepted and paid; the contract."""
    budget = await open_budget(ledger, "100000.00")
    allocation = await allocate(ledger, budget["id"], "50000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "20000.00", parties)
    path, street = f"/contracts/{contract['id']}", street_of(contract)
    activation = {"occurred_at": "2014-04-15T09:00:00+08:00"}
    ok(await ledger.post(f"{path}/activation", json=activation, headers=street))
    delivered = await deliver(ledger, contract, "3000.00")
    accepted = {"occurred_at": "2014-06-05T10:00:00+08:00"}
    ok(
        await ledger.post(
            f"{path}/deliveries/{delivered['id']}/acceptance", json=accepted, headers=street
        )
    )
    paid = {
        "reference": "GK-1",
        "amount": cny("3000.00"),
        "occurred_at": "2014-06-10T10:00:00+08:00",
    }
    ok(await ledger.post(f"{path}/payments", json=paid, headers=street))
    return contract


async def flow(
    ledger: httpx.AsyncClient, budget_id: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    query = {key: value for key, value in params.items() if value is not None}
    answer: dict[str, Any] = ok(
        await ledger.get(f"/audit/budgets/{budget_id}/flow", params=query, headers=headers), 200
    )
    return answer


def kept_answers(app: FastAPI) -> KeptAnswers:
    kept: KeptAnswers = app.state.flow_answers
    return kept


async def test_a_kept_answer_is_the_fresh_one_at_every_position_date_and_depth(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    contract = await a_paid_contract(ledger, parties)
    budget_id = contract["budget_id"]
    last = await feed_head(ledger)
    for depth in ("all", "contracts"):
        for as_of in DATES:
            # Oldest first: each position's answer is kept, and serves the next positions
            # that changed nothing of the budget.
            for position in range(1, last + 1):
                terms = {"known_at": str(position), "depth": depth}
                if as_of is not None:
                    terms["as_of"] = as_of
                path = f"/audit/budgets/{budget_id}/flow"
                kept = await ledger.get(path, params=terms, headers=AUDITOR)
                fresh = await ledger.get(path, params=terms, headers=FRESH)
                # Not yet recorded at that position, or not yet opened at that date: both 404.
                assert kept.status_code == fresh.status_code, terms
                assert kept.content == fresh.content, terms
                if kept.status_code == 200:
                    assert kept.json()["position"] == position
    assert kept_answers(ledger_app).hits > 0


async def test_a_change_to_the_budget_is_never_answered_with_the_answer_from_before(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    contract = await a_paid_contract(ledger, parties)
    budget_id = contract["budget_id"]
    before = await flow(ledger, budget_id, AUDITOR)
    assert before == await flow(ledger, budget_id, AUDITOR)
    await deliver(ledger, contract, "1000.00")
    after = await flow(ledger, budget_id, AUDITOR)
    assert after == await flow(ledger, budget_id, FRESH)
    deliveries = [
        node
        for allocation in after["budget"]["children"]
        for held in allocation["children"]
        for node in held["children"]
        if node["kind"] == "delivery"
    ]
    assert len(deliveries) == 2
    # Read as the ledger stood before the delivery, the answer is the one from before.
    earlier = await flow(ledger, budget_id, AUDITOR, known_at=str(before["position"]))
    assert earlier == before


async def a_budget_read_once(
    app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> tuple[str, dict[str, Any], KeptAnswers]:
    """The paid contract's budget with its flow read once, so kept: its id, the answer, and
    what is kept."""
    budget_id = (await a_paid_contract(ledger, parties))["budget_id"]
    return budget_id, await flow(ledger, budget_id, AUDITOR), kept_answers(app)


async def test_a_change_to_another_budget_leaves_the_kept_answer_in_use(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget_id, first, kept = await a_budget_read_once(ledger_app, ledger, parties)
    hits = kept.hits
    other = await open_budget(ledger, "500.00")
    await allocate(ledger, other["id"], "100.00")
    again = await flow(ledger, budget_id, AUDITOR)
    assert kept.hits == hits + 1
    assert again["budget"] == first["budget"]
    assert again["position"] == await feed_head(ledger) > first["position"]


async def test_a_rebuilt_read_model_is_read_afresh(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    budget_id, first, kept = await a_budget_read_once(ledger_app, ledger, parties)
    misses = kept.misses
    ledger_app.state.flow_model.rebuild()
    assert await flow(ledger, budget_id, AUDITOR) == first
    assert kept.misses == misses + 1


async def test_a_caller_holding_an_answer_learns_it_still_holds_without_reading_it_again(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    contract = await a_paid_contract(ledger, parties)
    path = f"/audit/budgets/{contract['budget_id']}/flow"
    first = await ledger.get(path, headers=AUDITOR)
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    for named in (tag, f'W/"elsewhere", {tag}', tag.removeprefix("W/"), "*"):
        unchanged = await ledger.get(path, headers={**AUDITOR, "If-None-Match": named})
        assert unchanged.status_code == 304, named
        assert unchanged.content == b""
        assert unchanged.headers["etag"] == tag
    # Another budget's change leaves this one's answer holding; only its position moves on.
    await open_budget(ledger, "500.00")
    assert (await ledger.get(path, headers={**AUDITOR, "If-None-Match": tag})).status_code == 304
    # Another date, or another depth, is another answer.
    for terms in ({"as_of": "2014-05-31T23:59:59+08:00"}, {"depth": "contracts"}):
        another = await ledger.get(path, params=terms, headers={**AUDITOR, "If-None-Match": tag})
        assert another.status_code == 200, terms
        assert another.headers["etag"] != tag
    # A change to the budget: the answer held no longer holds.
    await deliver(ledger, contract, "1000.00")
    changed = await ledger.get(path, headers={**AUDITOR, "If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert changed.json() == await flow(ledger, contract["budget_id"], FRESH)
    # Only overseers learn even that much.
    refused = await ledger.get(path, headers={**street_of(contract), "If-None-Match": "*"})
    assert refused.status_code == 403
    # `*` names any answer there is; a budget never recorded has none.
    missing = await ledger.get(
        f"/audit/budgets/{uuid4()}/flow", headers={**AUDITOR, "If-None-Match": "*"}
    )
    assert missing.status_code == 404


def grown_whole(app: FastAPI, budget_id: str, position: int, as_of: str | None) -> bytes:
    """The whole flow grown at once from the read model, no part kept: what a read must equal."""
    return budget_flow(
        app.state.ledger,
        UUID(budget_id),
        by=Actor(role=Role.AUDITOR, organization_id=UUID(AUDIT_OFFICE_ID), subject="auditor"),
        as_of=None if as_of is None else datetime.fromisoformat(as_of),
        known_at=position,
        model=app.state.flow_model,
        depth="all",
    ).json()


async def two_contracts(ledger: httpx.AsyncClient, parties: Parties) -> list[dict[str, Any]]:
    """The paid contract's budget with a second contract, also delivered, and a grant with a
    tranche paid; both contracts."""
    first = await a_paid_contract(ledger, parties)
    allocation = {"id": first["allocation_id"], "street_office_id": first["purchaser_id"]}
    second = await sign_contract(ledger, first["budget_id"], allocation, "10000.00", parties)
    activation = {"occurred_at": "2014-04-20T09:00:00+08:00"}
    path = f"/contracts/{second['id']}/activation"
    ok(await ledger.post(path, json=activation, headers=street_of(second)))
    await deliver(ledger, second, "500.00")
    grant = await award_grant(ledger, first["budget_id"], allocation, "5000.00", parties)
    await disburse(ledger, grant, "GK-G-1", "2000.00")
    return [first, second]


async def test_a_whole_flow_joined_from_kept_parts_is_the_tree_grown_at_once(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    first, _ = await two_contracts(ledger, parties)
    budget_id = first["budget_id"]
    await deliver(ledger, first, "700.00")
    last = await feed_head(ledger)
    kept = kept_answers(ledger_app)
    for as_of in DATES:
        # Oldest first: each contract's part is kept, and joined into later positions' answers
        # while its contract is unchanged, whatever the other contract or the budget did.
        for position in range(1, last + 1):
            terms = {"known_at": str(position)} | ({"as_of": as_of} if as_of else {})
            read = await ledger.get(
                f"/audit/budgets/{budget_id}/flow", params=terms, headers=AUDITOR
            )
            if read.status_code == 200:
                assert read.content == grown_whole(ledger_app, budget_id, position, as_of), terms
            else:
                assert read.status_code == 404
    assert kept.lookups["part", "hit"] > 0
    assert kept.lookups["part", "miss"] > 0
    whole = (await ledger.get(f"/audit/budgets/{budget_id}/flow", headers=AUDITOR)).json()
    below = [
        n["kind"] for a in whole["budget"]["children"] for h in a["children"] for n in h["children"]
    ]
    assert {"delivery", "payment", "tranche"} <= set(below)


async def read_whole_once(
    app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> tuple[list[dict[str, Any]], KeptAnswers, Counter[tuple[str, str]]]:
    """Two contracts' budget with its whole flow read once, so its parts are kept: the
    contracts, what is kept, and its lookups so far."""
    contracts = await two_contracts(ledger, parties)
    await flow(ledger, contracts[0]["budget_id"], AUDITOR)
    kept = kept_answers(app)
    return contracts, kept, kept.lookups.copy()


async def test_a_change_to_one_contract_builds_that_contracts_part_only(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    (first, second), kept, before = await read_whole_once(ledger_app, ledger, parties)
    budget_id = first["budget_id"]

    await deliver(ledger, second, "250.00")
    after = await ledger.get(f"/audit/budgets/{budget_id}/flow", headers=AUDITOR)

    # The first contract's and the grant's, unchanged.
    assert kept.lookups["part", "hit"] == before["part", "hit"] + 2
    assert kept.lookups["part", "miss"] == before["part", "miss"] + 1  # the second's, changed
    head = await feed_head(ledger)
    assert after.content == grown_whole(ledger_app, budget_id, head, None)
    deliveries = [
        node["amount"]["amount"]
        for allocation in after.json()["budget"]["children"]
        for held in allocation["children"]
        if held["id"] == second["id"]
        for node in held["children"]
        if node["kind"] == "delivery"
    ]
    assert deliveries == ["500.00", "250.00"]


async def test_a_fresh_read_builds_every_part_again(
    ledger_app: FastAPI, ledger: httpx.AsyncClient, parties: Parties
) -> None:
    (first, _), kept, before = await read_whole_once(ledger_app, ledger, parties)
    budget_id = first["budget_id"]

    fresh = await ledger.get(f"/audit/budgets/{budget_id}/flow", headers=FRESH)

    assert kept.lookups == before  # nothing looked up: a fresh read trusts no copy
    assert fresh.content == grown_whole(ledger_app, budget_id, await feed_head(ledger), None)
