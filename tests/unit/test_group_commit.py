"""The group committer: writes waiting together share a transaction; each gets its own answer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from services.ledger.store.group_commit import GroupCommitter, NotificationIds, Write
from services.ledger.store.recorders import ReferenceClaim


def event(stream: UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(originator_id=stream, originator_version=version, topic="t", state=b"{}")


class FakeStore:
    """Records what was committed how; the first write is held until the test lets it go."""

    def __init__(self, *, refuse: set[UUID] | None = None) -> None:
        self.transactions: list[list[UUID]] = []
        self.refuse = refuse or set()
        self.release_first = threading.Event()
        self.first_started = threading.Event()
        self._next_id = 0
        self._lock = threading.Lock()

    def _ids(self, events: Sequence[StoredEvent]) -> list[int]:
        with self._lock:
            start = self._next_id
            self._next_id += len(events)
        return list(range(start + 1, start + len(events) + 1))

    def _hold_the_first(self) -> None:
        if not self.first_started.is_set():
            self.first_started.set()
            assert self.release_first.wait(10)

    def together(self, writes: Sequence[Write]) -> list[NotificationIds]:
        self._hold_the_first()
        streams = [UUID(str(events[0].originator_id)) for events, _ in writes]
        if self.refuse & set(streams):
            raise IntegrityError("a stale version")
        self.transactions.append(streams)
        return [self._ids(events) for events, _ in writes]

    def alone(self, events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> NotificationIds:
        self._hold_the_first()
        stream = UUID(str(events[0].originator_id))
        if stream in self.refuse:
            raise IntegrityError("a stale version")
        self.transactions.append([stream])
        return self._ids(events)


def queue_behind_a_held_write(
    store: FakeStore, committer: GroupCommitter, writes: list[tuple[UUID, dict[str, Any]]]
) -> list[Any]:
    """Submit one write and hold it in its commit, queue `writes` meanwhile, then let go.

    Everything queued while the committer is busy is waiting together when it comes back, so
    what shares a transaction does not depend on thread timing.
    """
    with ThreadPoolExecutor(max_workers=len(writes) + 1) as pool:
        first = pool.submit(committer.write, [event(uuid4())], {})
        assert store.first_started.wait(10)
        futures = [pool.submit(committer.write, [event(s)], kw) for s, kw in writes]
        while committer.queued() < len(writes):
            threading.Event().wait(0.001)
        store.release_first.set()
        first.result(10)
        return [f.exception(10) or f.result(10) for f in futures]


def test_writes_waiting_together_are_committed_in_one_transaction() -> None:
    store = FakeStore()
    committer = GroupCommitter(store.together, store.alone, window_seconds=0.0)
    streams = [uuid4() for _ in range(10)]
    answers = queue_behind_a_held_write(store, committer, [(s, {}) for s in streams])
    committer.close()
    assert store.transactions[1] == streams
    # Each caller got the notification ids of its own write, in commit order.
    assert answers == [[i] for i in range(2, 12)]
    assert committer.stats.batches == 2
    assert committer.stats.writes == 11


def test_two_writes_to_one_aggregate_never_share_a_transaction() -> None:
    store = FakeStore()
    committer = GroupCommitter(store.together, store.alone, window_seconds=0.0)
    a, b = uuid4(), uuid4()
    queue_behind_a_held_write(store, committer, [(a, {}), (b, {}), (a, {})])
    committer.close()
    assert store.transactions[1:] == [[a, b], [a]]


def test_two_writes_claiming_one_reference_never_share_a_transaction() -> None:
    store = FakeStore()
    committer = GroupCommitter(store.together, store.alone, window_seconds=0.0)
    a, b, c = uuid4(), uuid4(), uuid4()
    claim = {"references": [ReferenceClaim("treasury", "PAY-1", a)]}
    other = {"references": [ReferenceClaim("treasury", "PAY-1", b)]}
    queue_behind_a_held_write(store, committer, [(a, claim), (b, other), (c, {})])
    committer.close()
    assert store.transactions[1:] == [[a, c], [b]]


def test_a_refused_write_fails_alone_and_the_rest_of_its_batch_commits() -> None:
    stale = uuid4()
    store = FakeStore(refuse={stale})
    committer = GroupCommitter(store.together, store.alone, window_seconds=0.0)
    good = [uuid4(), uuid4()]
    answers = queue_behind_a_held_write(
        store, committer, [(good[0], {}), (stale, {}), (good[1], {})]
    )
    committer.close()
    assert isinstance(answers[1], IntegrityError)
    assert answers[0] == [2]
    assert answers[2] == [3]
    assert store.transactions[1:] == [[good[0]], [good[1]]]
    assert committer.stats.retried_alone == 3


def test_closing_commits_what_was_submitted_and_refuses_the_rest() -> None:
    store = FakeStore()
    store.release_first.set()
    committer = GroupCommitter(store.together, store.alone, window_seconds=0.002)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(committer.write, [event(uuid4())], {}) for _ in range(8)]
        results = [f.result(10) for f in futures]
    committer.close()
    assert sorted(i for r in results for i in r or []) == list(range(1, 9))
    with pytest.raises(RuntimeError, match="closing"):
        committer.write([event(uuid4())], {})
