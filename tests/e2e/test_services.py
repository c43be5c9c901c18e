"""The services as real processes over real HTTP: health, the ledger's story, restarts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.actors import FINANCE
from tests.support.catalog import seed_parties
from tests.support.feeds import read_whole_feed
from tests.support.ledger_api import (
    allocate,
    cny,
    deliver,
    ok,
    open_budget,
    provider_of,
    sign_contract,
    street_of,
)
from tests.support.metrics import sample
from tests.support.processes import (
    GRACEFUL_EXIT_CODE,
    SERVICES,
    RunningService,
    running_services,
    sqlite_url,
)

# The events one story writes, in commit order: signing writes three in one transaction.
STORY_EVENTS = [
    "budget.opened",
    "allocation.made",
    "project.opened",
    "project.awarded",
    "contract.signed",
    "commitment.made",
    "project.contracted",
    "contract.activated",
    "delivery.reported",
    "delivery.accepted",
    "payment.recorded",
]


@dataclass(frozen=True)
class Story:
    """What one run of the story created."""

    budget_id: str
    contract_id: str
    provider: dict[str, str]


def client(service: RunningService) -> httpx.AsyncClient:
    """An HTTP client for one service."""
    # Loopback must never go through an HTTP proxy configured in the environment.
    return httpx.AsyncClient(base_url=service.url, trust_env=False)


async def tell_story(ledger: httpx.AsyncClient, catalog: RunningService) -> Story:
    """Budget, allocation, contract, activation, delivery, acceptance, payment of 30,000.00."""
    parties = seed_parties(catalog.url)
    budget = await open_budget(ledger)
    allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
    contract = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
    cid, street = contract["id"], street_of(contract)
    ok(await ledger.post(f"/contracts/{cid}/activation", json={}, headers=street))
    delivery = await deliver(ledger, contract, "30000.00")
    acceptance = f"/contracts/{cid}/deliveries/{delivery['id']}/acceptance"
    ok(await ledger.post(acceptance, json={}, headers=street))
    payment = ok(
        await ledger.post(
            f"/contracts/{cid}/payments",
            json={"reference": "TREASURY-2014-000123", "amount": cny("30000.00")},
            headers=street,
        )
    )
    assert payment["amount"] == cny("30000.00")
    return Story(budget_id=budget["id"], contract_id=cid, provider=provider_of(contract))


async def check_story(ledger: httpx.AsyncClient, story: Story, earlier_events: int) -> None:
    """The feed is dense and ends with the story's events; the contract shows the payment."""
    feed = await read_whole_feed(ledger)
    assert [e.position for e in feed] == list(range(1, len(feed) + 1))
    told = feed[earlier_events:]
    assert [e.event_type for e in told] == STORY_EVENTS
    assert str(told[0].stream_id) == story.budget_id
    assert str(told[-1].stream_id) == story.contract_id
    assert told[-1].payload["amount"] == cny("30000.00")
    # Each event names who caused it: finance opened the budget, the street office paid.
    assert told[0].caused_by is not None
    assert told[0].caused_by.role == "finance"
    assert told[-1].caused_by is not None
    assert told[-1].caused_by.role == "street"

    # The provider, a party to the contract, reads it as its own.
    contract = ok(await ledger.get(f"/contracts/{story.contract_id}", headers=story.provider), 200)
    assert contract["state"] == "active"
    assert (contract["accepted"], contract["paid"], contract["unpaid_accepted"]) == (
        cny("30000.00"),
        cny("30000.00"),
        cny("0.00"),
    )


@pytest.mark.asyncio
async def test_each_service_is_healthy_ready_and_keeps_its_own_sqlite_file(
    services: dict[str, RunningService], services_dir: Path
) -> None:
    assert sorted(services) == sorted(SERVICES)
    for name, service in services.items():
        async with client(service) as http:
            for path in ("/healthz", "/readyz"):
                response = await http.get(path)
                assert response.status_code == 200, (name, path, response.text)
                assert response.json()["service"] == name

    databases = sorted(services_dir.glob("*.sqlite3"))
    assert [p.name for p in databases] == ["catalog.sqlite3", "ledger.sqlite3", "notifier.sqlite3"]
    assert sorted(s.database_url for s in services.values()) == [sqlite_url(p) for p in databases]


@pytest.mark.asyncio
async def test_ledger_story_over_http(services: dict[str, RunningService]) -> None:
    async with client(services["ledger"]) as ledger:
        earlier_events = len(await read_whole_feed(ledger))
        story = await tell_story(ledger, services["catalog"])
        await check_story(ledger, story, earlier_events)


@pytest.mark.asyncio
async def test_a_request_id_follows_a_call_into_the_catalogs_json_logs(tmp_path: Path) -> None:
    with running_services(tmp_path, names=["catalog", "ledger"]) as running:
        traced = {"X-Request-ID": "e2e-signing-0001"}
        async with httpx.AsyncClient(
            base_url=running["ledger"].url, trust_env=False, headers=traced
        ) as ledger:
            await tell_story(ledger, running["catalog"])
            answered = await ledger.get("/healthz")
            assert answered.headers["X-Request-ID"] == "e2e-signing-0001"
            scraped = await ledger.get("/metrics")
        catalog_lines = [json.loads(line) for line in running["catalog"].log_tail(500).splitlines()]

    # Signing asked the catalog about the item and the parties, under the caller's id.
    asked = [line for line in catalog_lines if line.get("request_id") == "e2e-signing-0001"]
    assert asked, running["catalog"].log_tail()
    assert {line["service"] for line in asked} == {"catalog"}
    assert all(line["method"] == "GET" and line["status"] == 200 for line in asked)
    # The ledger counts what it appended and how its followers keep up.
    assert sample(scraped.text, "ledger_events_appended_total") == len(STORY_EVENTS)
    assert sample(scraped.text, "ledger_follower_lag_entries", follower="flow-model") is not None
    posted = sample(
        scraped.text, "http_requests_total", method="POST", route="/budgets", status="201"
    )
    assert posted == 1.0


@pytest.mark.asyncio
async def test_restarted_ledger_keeps_budget_and_feed(tmp_path: Path) -> None:
    with running_services(tmp_path, names=["catalog", "ledger"]) as running:
        ledger = running["ledger"]
        async with client(ledger) as http:
            story = await tell_story(http, running["catalog"])
            budget = ok(await http.get(f"/budgets/{story.budget_id}", headers=FINANCE), 200)
            feed = await read_whole_feed(http)

        assert ledger.stop() == GRACEFUL_EXIT_CODE, ledger.log_tail()
        assert "Application shutdown complete." in ledger.log_tail()

        ledger.restart()
        assert ledger.database_url == sqlite_url(tmp_path / "ledger.sqlite3")
        async with client(ledger) as http:
            again = ok(await http.get(f"/budgets/{story.budget_id}", headers=FINANCE), 200)
            assert again == budget
            assert await read_whole_feed(http) == feed
            await check_story(http, story, earlier_events=0)
            # Writing goes on at the next position, leaving no hole across the restart.
            await allocate(http, story.budget_id, "1000.00")
            positions = [e.position for e in await read_whole_feed(http)]
            assert positions == list(range(1, len(feed) + 2))


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_ledger_process_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    overrides = {"LEDGER_DATABASE_URL": postgres_url}
    with running_services(tmp_path, overrides, names=["catalog", "ledger"]) as running:
        async with client(running["ledger"]) as ledger:
            assert ok(await ledger.get("/readyz"), 200)["status"] == "ready"
            story = await tell_story(ledger, running["catalog"])
            await check_story(ledger, story, earlier_events=0)

    # The events went to PostgreSQL, not to a SQLite file of the ledger's own.
    assert not (tmp_path / "ledger.sqlite3").exists()
    with psycopg.connect(postgres_url) as connection:
        stored = connection.execute("SELECT count(*) FROM ledger_feed").fetchone()
    assert stored == (len(STORY_EVENTS),)
