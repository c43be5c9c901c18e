"""The collector held off while a large answer is built or a pass takes in a page, and always
given back afterwards; and what a service made as it started, left out of its collections."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import UUID

import pytest
from fastapi import FastAPI

from proto.feed import FeedEntry
from services.common.collector import collector_paused, freeze_once_started
from services.ledger.audit.reconcile import reconcile
from services.ledger.audit.reconcile_replay import Item
from tests.support.inprocess import client_for


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_the_block_and_back_on_after() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failure_inside_the_block_still_gives_the_collector_back() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the read failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_before_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_end_when_the_last_one_does() -> None:
    gc.enable()
    first_in = threading.Event()
    first_may_leave = threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector_paused():
            first_in.set()
            first_may_leave.wait(timeout=10)
        seen["after first left"] = gc.isenabled()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(timeout=10)
    with collector_paused():
        first_may_leave.set()
        thread.join(timeout=10)
        # The other thread's pause ended, but this one still holds the collector off.
        assert seen == {"after first left": False}
        assert not gc.isenabled()
    assert gc.isenabled()


def test_reconciliation_holds_the_collector_off_a_page_at_a_time() -> None:
    gc.enable()
    contract = UUID("00000000-0000-4000-8000-00000000c0de")
    entries: list[Item] = [
        FeedEntry(
            position=n,
            stream_id=contract,
            stream_type="contract",
            stream_version=n,
            event_type="contract.activated",
            occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
            recorded_at=datetime(2026, 3, 1, tzinfo=UTC),
            caused_by=None,
            payload={},
        )
        for n in range(1, 6)
    ]
    reading: list[bool] = []

    def read(after: int, limit: int) -> list[Item]:
        reading.append(gc.isenabled())
        return entries[after : after + limit]

    report = reconcile(read, head=len(entries), page_size=2)
    assert report.events_checked == len(entries)
    assert reading == [False, False, False]  # every page read, and replayed, with it off
    assert gc.isenabled()  # and on between pages and after


def test_a_reconciliation_that_fails_gives_the_collector_back() -> None:
    gc.enable()

    def read(after: int, limit: int) -> list[Item]:
        raise ConnectionError("the database went away")

    with pytest.raises(ConnectionError):
        reconcile(read, head=3)
    assert gc.isenabled()


class Made:
    """An object the collector tracks, with room for a reference to itself."""

    itself: Made | None = None


def collected(made: Made) -> bool:
    """Whether a collection would walk `made`."""
    return any(held is made for held in gc.get_objects())


@pytest.mark.asyncio
async def test_what_a_service_made_as_it_started_is_left_out_of_collections() -> None:
    made: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.kept = made["kept"] = Made()
        cycle = Made()
        cycle.itself = cycle
        made["garbage"] = weakref.ref(cycle)
        del cycle
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/made")
    def make() -> dict[str, bool]:
        app.state.later = Made()
        return {"collected": collected(app.state.later)}

    freeze_once_started(app)
    try:
        async with client_for(app) as client:
            kept = made["kept"]
            assert isinstance(kept, Made)
            assert gc.is_tracked(kept)
            assert not collected(kept)
            # Garbage made as it started was collected, not kept for good.
            garbage = made["garbage"]
            assert isinstance(garbage, weakref.ref)
            assert garbage() is None
            # What it makes afterwards is collected as usual.
            assert (await client.get("/made")).json() == {"collected": True}
    finally:
        gc.unfreeze()
    assert collected(kept)
