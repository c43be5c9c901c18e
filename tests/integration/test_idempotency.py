"""Idempotency-Key on a real database of each backend: replays, refusals, races and expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from services.common.idempotency import (
    IdempotencyMiddleware,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    Started,
    create_table,
    idempotency_keys,
)
from services.common.problems import problem_response
from services.common.sql import async_engine

pytestmark = pytest.mark.asyncio

TTL = timedelta(hours=24)
LEASE = timedelta(minutes=5)
PROBLEM = "urn:community-ledger:problem:"


class Clock:
    """The store's idea of now, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Things:
    """An app that makes things: each run of its POST is a write the test can count."""

    made: list[dict[str, Any]] = field(default_factory=list)
    # Holds the next request to enter, until the test sets the event.
    hold: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    refuse_next: bool = False
    crash_next: bool = False

    async def make(self, request: Request) -> Response:
        payload = await request.json()
        hold, self.hold = self.hold, None
        self.entered.set()
        if hold is not None:
            await hold.wait()
        if self.refuse_next:
            self.refuse_next = False
            return problem_response(409, "Conflict", "no", kind="conflict", instance="/things")
        if self.crash_next:
            self.crash_next = False
            raise RuntimeError("the app failed")
        thing = {"id": len(self.made) + 1, **payload}
        self.made.append(thing)
        return JSONResponse(thing, status_code=201, headers={"Location": f"/things/{thing['id']}"})


def caller_of(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"x-caller":
            return "member:org-1:" + value.decode()
    return None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = async_engine(database_url)
    await create_table(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(engine, ttl=TTL, lease=LEASE, clock=clock)


@pytest.fixture
def things() -> Things:
    return Things()


def client_for(things: Things, store: IdempotencyStore, **options: Any) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/things", things.make, methods=["POST"])])
    wrapped = IdempotencyMiddleware(app, store=lambda: store, identify=caller_of, **options)
    # A crash must reach the client as a 500, as the server would answer it.
    transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest_asyncio.fixture
async def client(things: Things, store: IdempotencyStore) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(things, store) as client:
        yield client


async def make(
    client: httpx.AsyncClient,
    key: str | None,
    body: dict[str, Any],
    caller: str | None = "alice",
    path: str = "/things",
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    if caller is not None:
        headers["X-Caller"] = caller
    return await client.post(path, json=body, headers=headers)


def replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("idempotent-replayed") == "true")


async def test_a_retry_gets_the_first_response_again_without_a_second_write(
    client: httpx.AsyncClient, things: Things
) -> None:
    first = await make(client, "k-1", {"name": "meals"})
    again = await make(client, "k-1", {"name": "meals"})
    assert first.status_code == 201
    assert not replayed(first)
    assert first.json() == {"id": 1, "name": "meals"}
    assert first.headers["location"] == "/things/1"
    assert again.status_code == 201
    assert replayed(again)
    assert again.content == first.content
    assert again.headers["location"] == "/things/1"
    assert again.headers["content-type"] == "application/json"
    assert again.headers["content-length"] == str(len(first.content))
    assert things.made == [{"id": 1, "name": "meals"}]


@pytest.mark.parametrize(
    ("body", "path"),
    [({"name": "rides"}, "/things"), ({"name": "meals"}, "/things?draft=1")],
    ids=["another body", "another query"],
)
async def test_the_same_key_for_a_different_request_is_422_and_nothing_runs(
    client: httpx.AsyncClient, things: Things, body: dict[str, Any], path: str
) -> None:
    await make(client, "k-1", {"name": "meals"})
    response = await make(client, "k-1", body, path=path)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM + "idempotency-key-reused"
    assert problem["title"] == "Idempotency key reused"
    assert "use a new key" in problem["detail"]
    assert problem["instance"] == "/things"
    assert len(things.made) == 1


async def test_repeats_while_the_first_runs_are_409_then_replay_its_answer(
    client: httpx.AsyncClient, things: Things
) -> None:
    things.hold = release = asyncio.Event()
    first = asyncio.create_task(make(client, "k-1", {"name": "meals"}))
    await asyncio.wait_for(things.entered.wait(), 10)
    repeats = await asyncio.gather(*(make(client, "k-1", {"name": "meals"}) for _ in range(9)))
    assert [r.status_code for r in repeats] == [409] * 9
    for repeat in repeats:
        assert repeat.headers["retry-after"] == "1"
        assert repeat.json()["type"] == PROBLEM + "request-in-progress"
        assert repeat.json()["title"] == "Request in progress"
    release.set()
    assert (await first).status_code == 201
    later = await make(client, "k-1", {"name": "meals"})
    assert replayed(later)
    assert later.json() == {"id": 1, "name": "meals"}
    assert len(things.made) == 1


async def test_simultaneous_identical_requests_write_once(
    client: httpx.AsyncClient, things: Things
) -> None:
    answers = await asyncio.gather(*(make(client, "k-1", {"name": "meals"}) for _ in range(10)))
    assert len(things.made) == 1
    ran = [a for a in answers if a.status_code == 201 and not replayed(a)]
    assert len(ran) == 1
    for answer in answers:
        assert answer.status_code == 409 or answer.json() == {"id": 1, "name": "meals"}


async def test_concurrent_claims_on_one_key_start_exactly_one(store: IdempotencyStore) -> None:
    outcomes = await asyncio.gather(*(store.begin("c", "k", "f" * 64) for _ in range(10)))
    assert sum(isinstance(o, Started) for o in outcomes) == 1
    assert sum(isinstance(o, InFlight) for o in outcomes) == 9


async def test_a_refused_request_frees_its_key_for_a_corrected_retry(
    client: httpx.AsyncClient, things: Things
) -> None:
    things.refuse_next = True
    refused = await make(client, "k-1", {"name": "meals"})
    assert refused.status_code == 409
    assert refused.json()["type"] == PROBLEM + "conflict"
    corrected = await make(client, "k-1", {"name": "meals, corrected"})
    assert corrected.status_code == 201
    assert not replayed(corrected)
    assert things.made == [{"id": 1, "name": "meals, corrected"}]


async def test_a_crashed_request_frees_its_key(client: httpx.AsyncClient, things: Things) -> None:
    things.crash_next = True
    crashed = await make(client, "k-1", {"name": "meals"})
    assert crashed.status_code == 500
    retry = await make(client, "k-1", {"name": "meals"})
    assert retry.status_code == 201
    assert not replayed(retry)
    assert len(things.made) == 1


async def test_keys_belong_to_their_caller(client: httpx.AsyncClient, things: Things) -> None:
    alice = await make(client, "shared", {"name": "meals"}, caller="alice")
    bob = await make(client, "shared", {"name": "meals"}, caller="bob")
    assert not replayed(alice)
    assert not replayed(bob)
    assert [alice.json()["id"], bob.json()["id"]] == [1, 2]
    assert (await make(client, "shared", {"name": "meals"}, caller="bob")).json()["id"] == 2
    assert (await make(client, "shared", {"name": "meals"}, caller="alice")).json()["id"] == 1
    assert len(things.made) == 2


async def test_without_a_key_or_a_caller_every_request_runs(
    client: httpx.AsyncClient, things: Things
) -> None:
    answers = [
        await make(client, None, {"name": "meals"}),
        await make(client, None, {"name": "meals"}),
        await make(client, "k-1", {"name": "meals"}, caller=None),
        await make(client, "k-1", {"name": "meals"}, caller=None),
    ]
    assert [a.status_code for a in answers] == [201] * 4
    assert not any(replayed(a) for a in answers)
    assert len(things.made) == 4


async def test_the_longest_key_is_accepted(client: httpx.AsyncClient, things: Things) -> None:
    key = "~" * 255
    assert (await make(client, key, {"name": "meals"})).status_code == 201
    assert replayed(await make(client, key, {"name": "meals"}))
    assert len(things.made) == 1


async def test_a_key_past_its_time_to_live_is_a_new_key(
    client: httpx.AsyncClient, things: Things, clock: Clock
) -> None:
    await make(client, "k-1", {"name": "meals"})
    clock.advance(TTL - timedelta(seconds=1))
    assert replayed(await make(client, "k-1", {"name": "meals"}))
    clock.advance(timedelta(seconds=2))
    reused = await make(client, "k-1", {"name": "rides"})
    assert reused.status_code == 201
    assert not replayed(reused)
    # The key now stands for the new request.
    assert (await make(client, "k-1", {"name": "meals"})).status_code == 422
    assert [t["name"] for t in things.made] == ["meals", "rides"]


async def test_an_unfinished_request_past_its_lease_is_taken_over(
    client: httpx.AsyncClient, things: Things, clock: Clock
) -> None:
    things.hold = release = asyncio.Event()
    stuck = asyncio.create_task(make(client, "k-1", {"name": "meals"}))
    await asyncio.wait_for(things.entered.wait(), 10)
    clock.advance(LEASE - timedelta(seconds=1))
    assert (await make(client, "k-1", {"name": "meals"})).status_code == 409
    clock.advance(timedelta(seconds=2))
    takeover = await make(client, "k-1", {"name": "meals"})
    assert takeover.status_code == 201
    assert not replayed(takeover)
    # The first run, had it been alive after all, cannot overwrite the answer kept for the key.
    release.set()
    assert (await stuck).json()["id"] == 2
    later = await make(client, "k-1", {"name": "meals"})
    assert replayed(later)
    assert later.json() == takeover.json()


async def test_expired_keys_are_purged(
    things: Things, store: IdempotencyStore, engine: AsyncEngine, clock: Clock
) -> None:
    async with client_for(things, store, purge_every=timedelta(0)) as client:
        await make(client, "old", {"name": "meals"})
        clock.advance(TTL + timedelta(seconds=1))
        await make(client, "new", {"name": "meals"})
    async with engine.connect() as connection:
        keys = (await connection.execute(sa.select(idempotency_keys.c.key))).scalars().all()
    assert keys == ["new"]


async def test_the_store_keeps_a_response_byte_for_byte(store: IdempotencyStore) -> None:
    started = await store.begin("c", "k", "a" * 64)
    assert isinstance(started, Started)
    assert isinstance(await store.begin("c", "k", "a" * 64), InFlight)
    body = bytes(range(256))
    headers = [("content-type", "application/octet-stream"), ("x-note", "é")]
    await store.finish("c", "k", 202, headers, body, token=started.token)
    assert await store.begin("c", "k", "a" * 64) == Replay(202, headers, body)
    assert isinstance(await store.begin("c", "k", "b" * 64), Mismatch)
    assert await store.purge_expired() == 0
