"""Flow answers kept in memory, written once and answered again while their budget is unchanged.

A whole flow takes about a second to build from the read model, however it is arranged (see
bench/profile.md), and an auditor's budgets, years closed, do not change between reads. The
answer is a function of the budget, the depth, the business time asked for and the read model's
rows of that budget up to the position it reflects; rows of a budget are only ever added, each
at the feed position of the event that made it. So the JSON written for one position serves
every later position until the budget's next row, or the model's next rebuild: that is the key.
A caller who trusts no copy asks with `Cache-Control: no-cache` and gets one built afresh. The
same key, as an entity tag, lets a caller that kept an earlier answer ask whether it still holds
(`If-None-Match`, answered 304).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID


class AnswerKey(NamedTuple):
    """What a written flow depends on."""

    budget_id: UUID
    depth: str
    as_of: datetime | None
    last_change: int
    rebuilds: int


def entity_tag(key: AnswerKey) -> str:
    """A weak HTTP entity tag shared by the answers on `key`, which differ only in the position
    each reflects; the same on every replica, being made of what the database holds."""
    as_of = key.as_of.astimezone(UTC).isoformat() if key.as_of else ""
    terms = f"{key.budget_id}|{key.depth}|{as_of}|{key.last_change}|{key.rebuilds}"
    return f'W/"{hashlib.sha256(terms.encode()).hexdigest()[:32]}"'


class KeptAnswers:
    """Written flows by key, at most `max_bytes` of them; the least recently used go first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._kept: OrderedDict[AnswerKey, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        """The bytes kept now."""
        return self._bytes

    def get(self, key: AnswerKey) -> bytes | None:
        """The answer written for `key`, if still kept."""
        with self._lock:
            written = self._kept.get(key)
            if written is None:
                self.misses += 1
                return None
            self._kept.move_to_end(key)
            self.hits += 1
            return written

    def put(self, key: AnswerKey, written: bytes) -> None:
        """Keep an answer, making room for it; one larger than the whole room is not kept."""
        if len(written) > self.max_bytes:
            return
        with self._lock:
            previous = self._kept.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous)
            self._kept[key] = written
            self._bytes += len(written)
            while self._bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= len(dropped)
