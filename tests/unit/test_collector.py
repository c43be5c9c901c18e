"""The collector held off while a large answer is built, and always given back afterwards."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from services.common.collector import collector_paused


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
