"""One process at a time follows and delivers: the lease, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.sql import Database
from services.notifier.lease import Lease
from services.notifier.store.tables import leases

pytestmark = pytest.mark.asyncio

DURATION = timedelta(seconds=15)


class Clock:
    """A clock the test moves by hand, shared by every contender."""

    def __init__(self) -> None:
        self.now = datetime(2014, 4, 14, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


async def lease_row(engine: AsyncEngine, name: str) -> Row[Any]:
    """The lease as the database has it: its holder and when it expires."""
    async with engine.connect() as connection:
        return (await connection.execute(select(leases).where(leases.c.name == name))).one()


@pytest.mark.parametrize("previously", ["never held", "held by a replica that died"])
async def test_of_two_racing_replicas_exactly_one_holds(
    engine: AsyncEngine, database: Database, previously: str
) -> None:
    clock = Clock()
    for round_ in range(5):
        name = f"following-{round_}"
        if previously != "never held":
            assert await Lease(database, name, "replica-dead", DURATION, clock).hold()
            clock.advance(DURATION + timedelta(seconds=1))
        first = Lease(database, name, "replica-a", DURATION, clock)
        second = Lease(database, name, "replica-b", DURATION, clock)
        results = list(
            await asyncio.gather(first.hold(), second.hold(), first.hold(), second.hold())
        )
        # Each replica asks twice: the winner renews, the loser is refused both times.
        assert results.count(True) == 2, results
        winner = "replica-a" if results[0] else "replica-b"
        assert results in ([True, False, True, False], [False, True, False, True])
        assert (await lease_row(engine, name)).holder == winner


async def test_another_replica_takes_over_only_after_expiry(
    engine: AsyncEngine, database: Database
) -> None:
    clock = Clock()
    first = Lease(database, "following", "replica-a", DURATION, clock)
    second = Lease(database, "following", "replica-b", DURATION, clock)
    assert await first.hold()
    clock.advance(DURATION - timedelta(seconds=1))
    assert not await second.hold()
    # Renewing pushes the expiry on from now: the full duration again.
    assert await first.hold()
    clock.advance(DURATION - timedelta(seconds=1))
    assert not await second.hold()
    # The holder stopped renewing (it died): once expired, the other replica takes over.
    clock.advance(timedelta(seconds=2))
    assert await second.hold()
    assert not await first.hold()
    assert (await lease_row(engine, "following")).holder == "replica-b"


async def test_release_frees_the_lease_at_once(database: Database) -> None:
    clock = Clock()
    first = Lease(database, "following", "replica-a", DURATION, clock)
    second = Lease(database, "following", "replica-b", DURATION, clock)
    assert await first.hold()
    assert not await second.hold()
    # Releasing someone else's lease does nothing.
    await second.release()
    assert not await second.hold()
    await first.release()
    assert await second.hold()
    assert not await first.hold()


async def test_leases_of_different_names_are_independent(database: Database) -> None:
    clock = Clock()
    assert await Lease(database, "following", "replica-a", DURATION, clock).hold()
    assert await Lease(database, "delivering", "replica-b", DURATION, clock).hold()
    assert not await Lease(database, "following", "replica-b", DURATION, clock).hold()


async def test_a_holder_writes_its_lease_again_once_a_third_of_it_has_passed(
    engine: AsyncEngine, database: Database
) -> None:
    clock = Clock()
    holder = Lease(database, "following", "replica-a", DURATION, clock)
    other = Lease(database, "following", "replica-b", DURATION, clock)
    assert await holder.hold()
    taken = (await lease_row(engine, "following")).expires_at
    assert taken == clock.now + DURATION
    # Asked again and again within the first third: still held, nothing written.
    for _ in range(3):
        clock.advance(DURATION / 3 / 4)
        assert await holder.hold()
    assert (await lease_row(engine, "following")).expires_at == taken
    assert not await other.hold()
    # Past it: renewed from now, the full duration again.
    clock.advance(DURATION / 3 / 4 + timedelta(seconds=1))
    assert await holder.hold()
    assert (await lease_row(engine, "following")).expires_at == clock.now + DURATION
