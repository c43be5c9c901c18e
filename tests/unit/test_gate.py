"""The gate on large reads: never more holders than slots; a waiter gets in when one leaves, or
is refused, with when to come back, once its wait is up."""

from __future__ import annotations

import asyncio

import pytest

from services.common.gate import Gate, TooBusy


@pytest.mark.asyncio
async def test_never_more_at_once_than_its_slots() -> None:
    gate = Gate(2, wait_seconds=5)
    inside: list[int] = []

    async def read() -> None:
        async with gate.slot("a read"):
            inside.append(gate.holding)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(read() for _ in range(7)))
    assert len(inside) == 7
    assert max(inside) == 2
    assert gate.holding == 0


@pytest.mark.asyncio
async def test_a_waiter_gets_the_slot_its_holder_leaves() -> None:
    gate = Gate(1, wait_seconds=5)
    leave = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with gate.slot("the first"):
            order.append("first in")
            await leave.wait()
        order.append("first out")

    async def second() -> None:
        async with gate.slot("the second"):
            order.append("second in")

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(second())
    await asyncio.sleep(0.01)
    assert order == ["first in"]
    leave.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first in", "first out", "second in"]


@pytest.mark.asyncio
@pytest.mark.parametrize("wait", [0, 0.05])
async def test_past_its_wait_a_caller_is_refused_with_when_to_retry(wait: float) -> None:
    gate = Gate(1, wait_seconds=wait)
    async with gate.slot("the first"):
        with pytest.raises(TooBusy, match=r"already building 1 large answer .* for a flow") as busy:
            async with gate.slot("a flow"):
                pytest.fail("two holders of one slot")
    assert busy.value.retry_after == 1
    # The refused caller took nothing: the slot is free again once its holder leaves.
    async with gate.slot("the next"):
        assert gate.holding == 1


@pytest.mark.asyncio
async def test_a_holder_that_fails_frees_its_slot() -> None:
    gate = Gate(1, wait_seconds=0)
    with pytest.raises(RuntimeError):
        async with gate.slot("a read that fails"):
            raise RuntimeError("the read failed")
    async with gate.slot("the next"):
        assert gate.holding == 1


def test_a_gate_has_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        Gate(0, wait_seconds=1)
