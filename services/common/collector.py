"""Holding off CPython's cyclic garbage collector while a large answer is built.

Building tens of thousands of objects that live until the answer is sent (a whole budget's
funding flow) makes the collector run full collections as the heap grows, each walking every
object the process holds: on a 50,000-node flow, more than half the time spent building it.
Those objects form a tree, not cycles, so reference counting frees them and the collector loses
nothing by waiting. The pause is process-wide: the collector comes back once the last of any
overlapping pauses (threads serving other requests) ends, and cycles made meanwhile are
collected then.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
