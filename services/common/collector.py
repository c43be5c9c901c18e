"""Holding off CPython's cyclic garbage collector while a large answer is built, or a long pass
takes a stretch of the feed in.

Building tens of thousands of objects that live until the answer is sent (a whole budget's
funding flow) makes the collector run full collections as the heap grows, each walking every
object the process holds: on a 50,000-node flow, more than half the time spent building it.
The passes over the feed (the read model following it, reconciliation replaying it) do the same
a page at a time beside a large state they keep: a fifth of the read model's rebuild, a seventh
of a reconciliation. Those objects form trees, not cycles, so reference counting frees them and
the collector loses nothing by waiting. The pause is process-wide: the collector comes back once
the last of any overlapping pauses (threads serving other requests) ends, and cycles made
meanwhile are collected then; so a pass pauses it a page (or one stream's replay) at a time, never
for the whole pass.

Most objects a service holds are made as it starts (modules, classes, functions, the schemas
pydantic and FastAPI build) and live as long as it does: about 180,000 in the ledger, where a
full collection walking them took 90-120 ms, a stall for whichever request was being served.
Once the service has started they are moved where the collector never looks again
(`gc.freeze`), and a full collection walks only what was made since: 2-3 ms.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from starlette.applications import Starlette

_lock = threading.Lock()
_pauses = 0
_enabled_before = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection until the block (and any overlapping one) has ended."""
    global _pauses, _enabled_before
    with _lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()


def freeze_once_started(app: Starlette) -> None:
    """Have `app`, once started, leave what the process holds then out of every collection
    after (see above)."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with started(app) as state:
            # Garbage first, so that none of it is kept for good.
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
