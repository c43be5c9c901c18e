"""Work the ledger repeats in the background while it serves: checkpoints, read models."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import TypeVar

logger = logging.getLogger("services.ledger.audit")
T = TypeVar("T")


async def repeat(
    work: Callable[[], T],
    *,
    every: float,
    stop: asyncio.Event,
    failing: str,
    done: Callable[[T], None] = lambda _: None,
) -> None:
    """Run blocking `work` in a thread every `every` seconds until `stop` is set."""
    last_error = ""
    while not stop.is_set():
        try:
            done(await asyncio.to_thread(work))
            last_error = ""
        except Exception as exc:
            # Said once per distinct trouble, not every round; retried until it goes away.
            if str(exc) != last_error:
                logger.exception("%s; retrying", failing)
                last_error = str(exc)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


@asynccontextmanager
async def in_background(
    name: str,
    work: Callable[[], T],
    *,
    every: float,
    failing: str,
    done: Callable[[T], None] = lambda _: None,
) -> AsyncIterator[None]:
    """Repeat `work` for the duration of the block; its last round ends before the block does."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        repeat(work, every=every, stop=stop, failing=failing, done=done), name=name
    )
    try:
        yield
    finally:
        stop.set()
        await task
