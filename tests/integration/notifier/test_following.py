"""Following the feeds over HTTP: every event and alert queued once per wanted subscription,
resuming where it stopped, and nothing written when anything fails (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import AuthSettings, ServiceToken
from services.common.sql import Database
from services.ledger.main import create_app as create_ledger_app
from services.ledger.settings import LedgerSettings
from services.notifier.following import FeedFollower, FeedUnavailable
from services.notifier.messages import Message
from services.notifier.settings import NotifierSettings
from services.notifier.store.tables import deliveries, messages, subscriptions
from tests.support.actors import AUDITOR, FINANCE, WUHOU_FINANCE_ID
from tests.support.catalog import Parties, catalog_client, propose_item
from tests.support.inprocess import served
from tests.support.ledger_api import (
    allocate,
    cny,
    deliver,
    ok,
    open_budget,
    sign_contract,
    street_of,
)
from tests.support.processes import free_ports

pytestmark = pytest.mark.asyncio

NOTIFIER = ServiceToken(AuthSettings(), UUID(int=3), "notifier-under-test")
Follower = Callable[..., FeedFollower]


@pytest.fixture
def ledger_url(tmp_path: Path, catalog_url: str) -> Iterator[str]:
    """A ledger served over real HTTP; its own store is beside the point, so SQLite."""
    settings = LedgerSettings(
        database_url=f"sqlite:///{tmp_path}/ledger.sqlite3", catalog_url=catalog_url
    )
    with served(create_ledger_app(settings)) as url:
        yield url


@pytest_asyncio.fixture
async def ledger(ledger_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ledger_url, trust_env=False, timeout=30) as client:
        yield client


@pytest_asyncio.fixture
async def follower(database: Database, ledger_url: str) -> AsyncIterator[Follower]:
    """Makes followers of the ledger's feed (or another), closing them afterwards."""
    made: list[FeedFollower] = []

    def make(page_size: int = 100, **options: Any) -> FeedFollower:
        options = {"feed": "ledger", "base_url": ledger_url, "token": NOTIFIER, **options}
        made.append(
            FeedFollower(database, page_size=page_size, settings=NotifierSettings(), **options)
        )
        return made[-1]

    yield make
    for each in made:
        await each.aclose()


async def subscribe(
    engine: AsyncEngine,
    *event_types: str,
    organization_id: str | None = None,
    budget_id: str | None = None,
    state: str = "active",
) -> str:
    """A subscription row, as the notifier's API would store it (its secret is a dummy)."""
    now = datetime.now(UTC)
    subscription_id = str(uuid4())
    async with engine.begin() as connection:
        await connection.execute(
            insert(subscriptions).values(
                id=subscription_id,
                owner_role="auditor",
                owner_organization=str(uuid4()),
                owner_subject="auditor-clerk",
                url="https://receiver.example/hooks",
                description="",
                event_types=list(event_types),
                organization_id=organization_id,
                budget_id=budget_id,
                state=state,
                secret=b"sealed-dummy-secret",
                created_at=now,
                updated_at=now,
            )
        )
    return subscription_id


async def queued(engine: AsyncEngine, subscription_id: str) -> list[tuple[int, str]]:
    """(position, type) of every message queued for one subscription, in feed order."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(messages.c.position, messages.c.event_type)
            .join(deliveries, deliveries.c.message_id == messages.c.id)
            .where(deliveries.c.subscription_id == subscription_id)
            .order_by(messages.c.position, messages.c.event_type)
        )
        return [(r.position, r.event_type) for r in rows]


async def events_queued(engine: AsyncEngine, subscription_id: str) -> list[tuple[int, str]]:
    """Like `queued`, without the alerts: the feed's own events."""
    return [(p, t) for p, t in await queued(engine, subscription_id) if not t.startswith("alert.")]


async def count(engine: AsyncEngine) -> tuple[int, int]:
    """How many messages and deliveries are stored."""
    async with engine.connect() as connection:
        stored = await connection.scalar(select(func.count()).select_from(messages))
        queued = await connection.scalar(select(func.count()).select_from(deliveries))
    return int(stored or 0), int(queued or 0)


async def body_of(engine: AsyncEngine, position: int, event_type: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        body = await connection.scalar(
            select(messages.c.body).where(
                messages.c.position == position, messages.c.event_type == event_type
            )
        )
    document: dict[str, Any] = json.loads(str(body))
    return document


async def feed_of(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The whole feed, as an auditor reads it."""
    page = ok(await client.get("/events", params={"limit": 1000}, headers=AUDITOR), 200)
    entries: list[dict[str, Any]] = page["entries"]
    return entries


async def contract_story(ledger: httpx.AsyncClient, parties: Parties) -> dict[str, Any]:
    """A budget, an allocation, a contract; a delivery accepted and paid, another rejected."""
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "500.00", parties)
    cid, street = contract["id"], street_of(contract)
    ok(await ledger.post(f"/contracts/{cid}/activation", json={}, headers=street))
    paid = await deliver(ledger, contract, "100.00")
    ok(
        await ledger.post(
            f"/contracts/{cid}/deliveries/{paid['id']}/acceptance", json={}, headers=street
        )
    )
    ok(
        await ledger.post(
            f"/contracts/{cid}/payments",
            json={"reference": "T-1", "amount": cny("99.99")},
            headers=street,
        )
    )
    rejected = await deliver(ledger, contract, "120.50")
    ok(
        await ledger.post(
            f"/contracts/{cid}/deliveries/{rejected['id']}/rejection",
            json={"reason": "sign-in sheets missing", "score": 30},
            headers=street,
        )
    )
    return {"budget": budget, "allocation": allocation, "contract": contract}


async def adjust(ledger: httpx.AsyncClient, budget_id: str, direction: str, amount: str) -> None:
    """Raise or cut the budget's appropriation through its district finance source."""
    body = {
        "source_name": "Wuhou district finance",
        "direction": direction,
        "amount": cny(amount),
        "reason": "mid-year revision",
    }
    ok(await ledger.post(f"/budgets/{budget_id}/adjustments", json=body, headers=FINANCE))


async def test_each_event_is_queued_once_for_each_subscription_that_wants_it(
    engine: AsyncEngine, ledger: httpx.AsyncClient, follower: Follower, parties: Parties
) -> None:
    story = await contract_story(ledger, parties)
    budget_id, contract_id = story["budget"]["id"], story["contract"]["id"]
    everything = await subscribe(engine, "*")
    payments = await subscribe(engine, "payment.*")
    alerts = await subscribe(engine, "alert.*")
    provider = await subscribe(engine, "*", organization_id=parties.provider_id)
    of_budget = await subscribe(engine, "contract.*", budget_id=budget_id)
    other_budget = await subscribe(engine, "*", budget_id=str(uuid4()))
    disabled = await subscribe(engine, "*", state="disabled")

    reader = follower(page_size=3)
    await reader.catch_up()

    feed = await feed_of(ledger)
    assert await reader.position() == len(feed) == feed[-1]["position"]
    at = {e["event_type"]: e["position"] for e in feed if e["stream_id"] == contract_id}
    assert await queued(engine, everything) == sorted(
        [(e["position"], e["event_type"]) for e in feed]
        + [
            (at["payment.recorded"], "alert.payment_made"),
            (at["delivery.rejected"], "alert.delivery_rejected"),
        ]
    )
    assert await queued(engine, payments) == [(at["payment.recorded"], "payment.recorded")]
    assert await queued(engine, alerts) == [
        (at["payment.recorded"], "alert.payment_made"),
        (at["delivery.rejected"], "alert.delivery_rejected"),
    ]
    assert await queued(engine, of_budget) == [
        (at["contract.signed"], "contract.signed"),
        (at["contract.activated"], "contract.activated"),
    ]
    # The provider is named only when the contract is signed and the project awarded; later
    # contract events concern it too, though they do not repeat its id.
    provider_wants = [e for e in feed if e["stream_id"] == contract_id] + [
        e for e in feed if e["event_type"] == "project.awarded"
    ]
    assert await queued(engine, provider) == sorted(
        [(e["position"], e["event_type"]) for e in provider_wants]
        + [
            (at["payment.recorded"], "alert.payment_made"),
            (at["delivery.rejected"], "alert.delivery_rejected"),
        ]
    )
    assert await queued(engine, other_budget) == []
    assert await queued(engine, disabled) == []
    # What subscribers get is the feed entry itself.
    signed = next(e for e in feed if e["event_type"] == "contract.signed")
    assert (await body_of(engine, signed["position"], "contract.signed"))["data"] == signed

    # Caught up: polling again queues nothing.
    before = await count(engine)
    assert await reader.poll_once() == 0
    assert await count(engine) == before


async def test_a_follower_killed_between_pages_resumes_without_gaps_or_duplicates(
    engine: AsyncEngine, ledger: httpx.AsyncClient, follower: Follower, parties: Parties
) -> None:
    story = await contract_story(ledger, parties)
    everything = await subscribe(engine, "*")
    provider = await subscribe(engine, "*", organization_id=parties.provider_id)
    first = follower(page_size=4)
    assert await first.poll_once() == 4
    assert await first.poll_once() == 4
    await first.aclose()  # killed: all it knew in memory is gone

    # More happens while no one follows.
    await open_budget(ledger)
    restarted = follower(page_size=4)
    assert await restarted.position() == 8
    await restarted.catch_up()

    feed = await feed_of(ledger)
    assert await events_queued(engine, everything) == [
        (e["position"], e["event_type"]) for e in feed
    ]
    assert await restarted.position() == feed[-1]["position"]
    # The restarted follower never saw the contract signed, yet knows whom its events concern.
    provider_events = [
        (e["position"], e["event_type"])
        for e in feed
        if e["stream_id"] == story["contract"]["id"] or e["event_type"] == "project.awarded"
    ]
    assert max(p for p, _ in provider_events) > 8
    assert await events_queued(engine, provider) == provider_events


async def test_two_followers_racing_despite_the_lease_queue_each_event_once(
    engine: AsyncEngine, ledger: httpx.AsyncClient, follower: Follower, parties: Parties
) -> None:
    await contract_story(ledger, parties)
    everything = await subscribe(engine, "*")
    one, other = follower(page_size=5), follower(page_size=5)
    # The one that stores its page first wins; the other finds the position moved, writes
    # nothing, and reads on from there.
    while sum(await asyncio.gather(one.poll_once(), other.poll_once())):
        pass
    feed = await feed_of(ledger)
    assert await events_queued(engine, everything) == [
        (e["position"], e["event_type"]) for e in feed
    ]


async def test_a_failure_mid_transaction_leaves_position_and_deliveries_unchanged(
    engine: AsyncEngine, ledger: httpx.AsyncClient, follower: Follower, parties: Parties
) -> None:
    await contract_story(ledger, parties)
    everything = await subscribe(engine, "*")
    reader = follower(page_size=3)
    assert await reader.poll_once() == 3
    done = await count(engine)

    # A row already holding the id of position 5's message makes its insert fail, midway
    # through the page of positions 4 to 6.
    feed = await feed_of(ledger)
    fifth = feed[4]
    blocker = Message("ledger", 5, fifth["event_type"], datetime.now(UTC), {})
    async with engine.begin() as connection:
        await connection.execute(
            insert(messages).values(
                id=blocker.id,
                feed="ledger",
                position=0,
                event_type="blocker",
                body="{}",
                created_at=datetime.now(UTC),
            )
        )
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await reader.poll_once()
    assert await reader.position() == 3
    assert await count(engine) == (done[0] + 1, done[1])  # only the blocker was added

    async with engine.begin() as connection:
        await connection.execute(delete(messages).where(messages.c.id == blocker.id))
    await reader.catch_up()
    assert [p for p, _ in await queued(engine, everything) if p <= 6] == [1, 2, 3, 4, 5, 6]


async def test_when_the_feed_or_the_ledger_does_not_answer_nothing_moves(
    engine: AsyncEngine, ledger: httpx.AsyncClient, ledger_url: str, follower: Follower
) -> None:
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000.00")
    # An adjustment: the follower reads the budget before and after it, for the share alerts.
    await adjust(ledger, budget["id"], "increase", "1000.00")
    street = await subscribe(engine, "*", organization_id=allocation["street_office_id"])
    finance = await subscribe(engine, "*", organization_id=WUHOU_FINANCE_ID)
    [closed_port] = free_ports(1)
    with pytest.raises(FeedUnavailable):
        await follower(base_url=f"http://127.0.0.1:{closed_port}").poll_once()
    with pytest.raises(FeedUnavailable, match="401"):
        await follower(token=lambda: "not-a-token").poll_once()

    # The feed answers, but the ledger goes away before the budget can be read.
    class FeedOnly(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path != "/events":
                raise httpx.ConnectError("the ledger went away", request=request)
            return await super().handle_async_request(request)

    async with httpx.AsyncClient(transport=FeedOnly(), trust_env=False) as client:
        with pytest.raises(FeedUnavailable, match="went away"):
            await follower(client=client).poll_once()
    assert await count(engine) == (0, 0)

    assert await follower().position() == 0

    # Once all answer again, the same page is read from the start, with the budget's parties.
    reader = follower()
    assert await reader.poll_once() == 3
    assert await reader.position() == 3
    assert await queued(engine, finance) == [
        (1, "budget.opened"),
        (2, "allocation.made"),
        (3, "budget.adjusted"),
    ]
    assert await queued(engine, street) == [(2, "allocation.made")]


async def test_alerts_carry_exact_figures_and_fire_once(
    engine: AsyncEngine, ledger: httpx.AsyncClient, follower: Follower, parties: Parties
) -> None:
    street_id = parties.street_office_id
    to_street = await subscribe(engine, "alert.*", organization_id=street_id)
    to_finance = await subscribe(engine, "alert.*", organization_id=WUHOU_FINANCE_ID)
    story = await contract_story(ledger, parties)
    budget_id, allocation = story["budget"]["id"], story["allocation"]
    # 500.00 then 400.00 of the allocation's 1000.00: exactly 90% committed.
    crossing = await sign_contract(ledger, budget_id, allocation, "400.00", parties)
    await sign_contract(ledger, budget_id, allocation, "50.00", parties)  # further above
    # The appropriation cut to 1000.00 puts 950.00 committed, 95%, over the budget's line.
    await adjust(ledger, budget_id, "decrease", "30849000.00")
    await follower(page_size=5).catch_up()

    feed = await feed_of(ledger)
    committed = next(
        e
        for e in feed
        if e["event_type"] == "commitment.made" and e["payload"]["commitment_id"] == crossing["id"]
    )
    cut = next(e for e in feed if e["event_type"] == "budget.adjusted")
    at = {e["event_type"]: e["position"] for e in feed if e["stream_id"] == story["contract"]["id"]}
    assert await queued(engine, to_street) == [
        (at["payment.recorded"], "alert.payment_made"),
        (at["delivery.rejected"], "alert.delivery_rejected"),
        (committed["position"], "alert.allocation_committed_share"),
    ]
    assert await queued(engine, to_finance) == [
        (committed["position"], "alert.allocation_committed_share"),
        (cut["position"], "alert.budget_committed_share"),
    ]

    share = await body_of(engine, committed["position"], "alert.allocation_committed_share")
    assert share["type"] == "alert.allocation_committed_share"
    assert {k: share["data"][k] for k in ("amount", "committed", "available")} == {
        "amount": cny("1000.00"),
        "committed": cny("900.00"),
        "available": cny("100.00"),
    }
    assert (share["data"]["committed_share"], share["data"]["threshold"]) == ("0.9000", "0.9")
    assert share["data"]["allocation_id"] == allocation["id"]
    assert share["data"]["source"]["position"] == committed["position"]
    whole = await body_of(engine, cut["position"], "alert.budget_committed_share")
    assert (whole["data"]["appropriation"], whole["data"]["committed"]) == (
        cny("1000.00"),
        cny("950.00"),
    )
    paid = await body_of(engine, at["payment.recorded"], "alert.payment_made")
    assert (paid["data"]["amount"], paid["data"]["paid"]) == (cny("99.99"), cny("99.99"))
    assert paid["data"]["unpaid_accepted"] == cny("0.01")
    rejected = await body_of(engine, at["delivery.rejected"], "alert.delivery_rejected")
    assert (rejected["data"]["claimed"], rejected["data"]["reason"]) == (
        cny("120.50"),
        "sign-in sheets missing",
    )


async def test_a_proposed_item_raises_an_alert_from_the_catalog_feed(
    engine: AsyncEngine, catalog_url: str, follower: Follower
) -> None:
    with catalog_client(catalog_url) as client:
        bureau = client.post(
            "/organizations",
            json={"kind": "district_bureau", "name": f"Civil affairs bureau {uuid4().hex[:6]}"},
        ).json()
        item = propose_item(client, bureau["id"], name="Meal delivery to elderly people")
    alerts = await subscribe(engine, "alert.item_proposed", organization_id=bureau["id"])
    items = await subscribe(engine, "item.*", organization_id=bureau["id"])
    reader = follower(feed="catalog", base_url=catalog_url)
    await reader.catch_up()

    with catalog_client(catalog_url) as client:
        head = client.get("/events", params={"after": 0, "limit": 1}).json()["head"]
    assert await reader.position() == head
    [(position, _)] = await queued(engine, alerts)
    assert await queued(engine, items) == [(position, "item.proposed")]
    alert = await body_of(engine, position, "alert.item_proposed")
    assert alert["data"]["item_id"] == item["id"]
    assert alert["data"]["name"] == "Meal delivery to elderly people"
    assert alert["data"]["proposed_by"] == bureau["id"]
    assert alert["data"]["source"] == {
        "feed": "catalog",
        "position": position,
        "event_type": "item.proposed",
        "stream_id": item["id"],
    }
