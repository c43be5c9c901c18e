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

Any change to a budget sets its whole answers aside, and a budget being written to changes all
day. So the part of a whole flow below each contract and grant (its deliveries, payments or
tranches: nearly all of the nodes) is kept too, under that stream's own last change: the first
read after a change builds the tree down to the contracts and grants, and only the changed
stream's part below it (services/ledger/audit/flow_parts.py).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, overload
from uuid import UUID

from services.ledger.audit.flow_tree import Written


class AnswerKey(NamedTuple):
    """What a written flow depends on."""

    budget_id: UUID
    depth: str
    as_of: datetime | None
    last_change: int
    rebuilds: int


@dataclass(frozen=True, slots=True)
class PartKey:
    """What the written part of a whole flow below one contract or grant depends on."""

    stream_id: UUID
    as_of: datetime | None
    last_change: int
    """The stream's last position, at or before the read's, that changed any of its nodes."""
    rebuilds: int


def entity_tag(key: AnswerKey) -> str:
    """A weak HTTP entity tag shared by the answers on `key`, which differ only in the position
    each reflects; the same on every replica, being made of what the database holds."""
    as_of = key.as_of.astimezone(UTC).isoformat() if key.as_of else ""
    terms = f"{key.budget_id}|{key.depth}|{as_of}|{key.last_change}|{key.rebuilds}"
    return f'W/"{hashlib.sha256(terms.encode()).hexdigest()[:32]}"'


Key = AnswerKey | PartKey
Kept = bytes | Written
"""A part, or a whole answer in pieces (which may be the very parts kept beside it)."""


def _size(kept: Kept) -> int:
    return len(kept) if isinstance(kept, bytes) else sum(map(len, kept))


class KeptAnswers:
    """Written flows and parts of flows by key, at most `max_bytes` of them; the least recently
    used go first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._kept: OrderedDict[Key, Kept] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.lookups: Counter[tuple[str, str]] = Counter()
        """Lookups by what was looked up ("answer" or "part") and how ("hit" or "miss")."""

    @property
    def hits(self) -> int:
        """Lookups of whole answers that found one."""
        return self.lookups["answer", "hit"]

    @property
    def misses(self) -> int:
        """Lookups of whole answers that found none."""
        return self.lookups["answer", "miss"]

    @property
    def size(self) -> int:
        """The bytes kept now."""
        return self._bytes

    @overload
    def get(self, key: AnswerKey) -> Written | None: ...
    @overload
    def get(self, key: PartKey) -> bytes | None: ...
    def get(self, key: Key) -> Kept | None:
        """The answer (in pieces) or part written for `key`, if still kept."""
        what = "part" if isinstance(key, PartKey) else "answer"
        with self._lock:
            written = self._kept.get(key)
            if written is None:
                self.lookups[what, "miss"] += 1
                return None
            self._kept.move_to_end(key)
            self.lookups[what, "hit"] += 1
            return written

    @overload
    def put(self, key: AnswerKey, written: Written) -> None: ...
    @overload
    def put(self, key: PartKey, written: bytes) -> None: ...
    def put(self, key: Key, written: Kept) -> None:
        """Keep an answer or a part, making room for it; one larger than the whole room is not
        kept. An answer's size counts the parts among its pieces again: a bound, not a tally."""
        size = _size(written)
        if size > self.max_bytes:
            return
        with self._lock:
            previous = self._kept.pop(key, None)
            if previous is not None:
                self._bytes -= _size(previous)
            self._kept[key] = written
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= _size(dropped)
