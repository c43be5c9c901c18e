"""A bound on how many large answers a service builds at once; callers past it wait, then are told
to come back.

Some reads build their whole answer in memory: a budget's flow down to every payment holds about
150 MB while it is built from 50,000 nodes, a reconciliation a few hundred. Nothing else bounds
how many run at once, so a handful arriving together would take a service past its container's
memory limit and have it killed, with every request it was serving. Callers past the bound wait
in the event loop, holding no worker thread, and after `wait_seconds` get a 503 with
`Retry-After` rather than an answer that never comes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.common.errors import Unavailable


class TooBusy(Unavailable):
    """As many large answers are being built as the service allows; retry after a pause (503)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Gate:
    """At most `slots` holders at once; a caller waits up to `wait_seconds` for a slot."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._free = asyncio.Semaphore(slots)
        self._holding = 0

    @property
    def holding(self) -> int:
        """How many slots are taken now."""
        return self._holding

    @asynccontextmanager
    async def slot(self, what: str) -> AsyncIterator[None]:
        """Hold a slot through the block, or raise TooBusy naming `what` if none frees in time."""
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._free.acquire()
        except TimeoutError:
            raise TooBusy(
                f"the service is already building {self.slots} large "
                f"answer{'s' if self.slots > 1 else ''} and no slot freed within "
                f"{self.wait_seconds:g} s for {what}; nothing was changed, ask again shortly",
                retry_after=max(1, math.ceil(self.wait_seconds)),
            ) from None
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            self._free.release()
