"""The two clocks: what was true at a business time, and what the ledger knew at a record time."""

from __future__ import annotations

import httpx
import pytest

from tests.support.actors import AUDITOR, FINANCE
from tests.support.ledger_api import allocate, cny, ok, open_budget

pytestmark = pytest.mark.asyncio


async def test_as_of_business_time(ledger: httpx.AsyncClient) -> None:
    budget = await open_budget(ledger)  # opened 2014-01-01
    await allocate(ledger, budget["id"], "1000000.00", occurred_at="2014-03-31T09:00:00+08:00")
    # Recorded after the June allocation below, but true since February: a late entry.
    late = await allocate(
        ledger, budget["id"], "200000.00", occurred_at="2014-06-01T09:00:00+08:00"
    )
    await allocate(ledger, budget["id"], "50000.00", occurred_at="2014-02-15T09:00:00+08:00")
    url = f"/budgets/{budget['id']}"

    april = ok(
        await ledger.get(url, params={"as_of": "2014-04-01T00:00:00+08:00"}, headers=FINANCE), 200
    )
    assert april["allocated"] == cny("1050000.00")
    assert late["id"] not in [a["id"] for a in april["allocations"]]
    march = ok(
        await ledger.get(url, params={"as_of": "2014-03-01T00:00:00+08:00"}, headers=FINANCE), 200
    )
    assert march["allocated"] == cny("50000.00")
    now = ok(await ledger.get(url, headers=FINANCE), 200)
    assert now["allocated"] == cny("1250000.00")
    # The ledger keeps the budget as it is now in memory; a past date still reads the past.
    again = await ledger.get(url, params={"as_of": "2014-04-01T00:00:00+08:00"}, headers=FINANCE)
    assert ok(again, 200) == april
    before_opening = await ledger.get(
        url, params={"as_of": "2013-12-31T00:00:00+08:00"}, headers=FINANCE
    )
    assert before_opening.status_code == 404
    assert "as of 2013-12-31" in before_opening.json()["detail"]


async def test_known_at_position_and_record_time(ledger: httpx.AsyncClient) -> None:
    budget = await open_budget(ledger)
    await allocate(ledger, budget["id"], "1000.00")
    feed = ok(await ledger.get("/events", headers=AUDITOR), 200)
    position, recorded_at = feed["head"], feed["entries"][-1]["recorded_at"]
    await allocate(ledger, budget["id"], "2000.00")
    url = f"/budgets/{budget['id']}"

    at_position = ok(
        await ledger.get(url, params={"known_at": str(position)}, headers=FINANCE), 200
    )
    assert (at_position["allocated"], at_position["version"]) == (cny("1000.00"), 2)
    at_time = ok(await ledger.get(url, params={"known_at": recorded_at}, headers=FINANCE), 200)
    assert at_time["allocated"] == cny("1000.00")
    at_opening = ok(await ledger.get(url, params={"known_at": "1"}, headers=FINANCE), 200)
    assert at_opening["allocated"] == cny("0.00")
    unknown = await ledger.get(
        url, params={"known_at": "2000-01-01T00:00:00+00:00"}, headers=FINANCE
    )
    assert unknown.status_code == 404
    both = ok(
        await ledger.get(
            url,
            params={"known_at": str(position), "as_of": "2014-01-02T00:00:00+08:00"},
            headers=FINANCE,
        ),
        200,
    )
    assert both["allocated"] == cny("0.00")
