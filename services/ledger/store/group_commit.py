"""Group commit: writes that arrive together are appended in one transaction.

Every write to the ledger serializes on one lock (the feed's dense positions need it) and ends
in a commit the database must make durable. Under load, requests queue for that lock one by
one. Here they queue for one committer thread instead, which appends everything waiting in one
transaction: one lock, one durable commit, many writes.

What each caller sees is unchanged:
- its write returns only after the transaction holding it committed;
- its invariants were checked against its own aggregates before it was submitted, and the
  database's unique versions and references still refuse a write made on stale state;
- a write refused in a batch takes nobody down with it: the batch rolls back and each of its
  writes is tried again alone, so each caller gets its own answer.

Two writes touching the same aggregate or claiming the same reference never share a batch (one
of them would fail the other); the later one waits for the next.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

logger = logging.getLogger(__name__)

NotificationIds = Sequence[int] | None
# A write as the recorder takes it: stored events and the recorder's keyword arguments
# (references, streams, caused_by).
Write = tuple[Sequence[StoredEvent], dict[str, Any]]
WriteBatch = Callable[[Sequence[Write]], list[NotificationIds]]
WriteOne = Callable[[Sequence[StoredEvent], dict[str, Any]], NotificationIds]

# Enough to amortize a commit, few enough that one rolled-back batch is cheap to redo alone.
MAX_BATCH = 256


@dataclass
class _Pending:
    events: Sequence[StoredEvent]
    kwargs: dict[str, Any]
    keys: frozenset[Hashable]
    done: Future[NotificationIds] = field(default_factory=Future)


def _keys(events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> frozenset[Hashable]:
    """What a write claims: its aggregates and its references."""
    claimed: set[Hashable] = {("stream", str(e.originator_id)) for e in events}
    claimed.update(("reference", r.scope, r.reference) for r in kwargs.get("references", ()))
    claimed.update(("stream", str(s.stream_id)) for s in kwargs.get("streams", ()))
    return frozenset(claimed)


@dataclass
class GroupCommitStats:
    """Counts since start, for metrics: transactions committed and writes they held."""

    batches: int = 0
    writes: int = 0
    retried_alone: int = 0


class GroupCommitter:
    """A thread appending queued writes in shared transactions; callers block until theirs."""

    def __init__(
        self,
        write_batch: WriteBatch,
        write_one: WriteOne,
        *,
        window_seconds: float,
        name: str = "ledger-group-commit",
    ) -> None:
        self._write_batch = write_batch
        self._write_one = write_one
        self._window = window_seconds
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self.stats = GroupCommitStats()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write(self, events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> NotificationIds:
        """Append one write with whatever else is waiting; returns once it is committed."""
        pending = _Pending(events, kwargs, _keys(events, kwargs))
        with self._close_lock:
            if self._closed:
                raise RuntimeError("the ledger is closing; no more writes are taken")
            self._queue.put(pending)
        return pending.done.result()

    def queued(self) -> int:
        """Writes waiting for the committer (approximate: others may be adding)."""
        return self._queue.qsize()

    def close(self) -> None:
        """Commit what was submitted, then stop the thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        deferred: deque[_Pending] = deque()
        stopping = False
        last_size = 0
        while not (stopping and not deferred):
            batch, stopping = self._gather(deferred, stopping, wait=last_size > 1)
            if batch:
                self._commit(batch)
            last_size = len(batch)

    def _gather(
        self, deferred: deque[_Pending], stopping: bool, *, wait: bool
    ) -> tuple[list[_Pending], bool]:
        """The next batch: deferred writes first, then queued ones, none claiming alike.

        Waiting up to the window for more only pays when writes have been arriving together
        (the last batch held several); a lone writer is committed at once.
        """
        batch: list[_Pending] = []
        claimed: set[Hashable] = set()
        later: deque[_Pending] = deque()

        def take(pending: _Pending) -> None:
            if pending.keys & claimed:
                later.append(pending)
            else:
                batch.append(pending)
                claimed.update(pending.keys)

        while deferred and len(batch) < MAX_BATCH:
            take(deferred.popleft())
        deadline = time.monotonic() + (self._window if wait else 0.0)
        while not stopping and len(batch) < MAX_BATCH:
            if batch or later:
                timeout = deadline - time.monotonic()
                try:
                    pending = (
                        self._queue.get(timeout=timeout)
                        if timeout > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            else:
                pending = self._queue.get()
            if pending is None:
                stopping = True
            else:
                take(pending)
        deferred.extendleft(reversed(later))
        return batch, stopping

    def _commit(self, batch: list[_Pending]) -> None:
        if len(batch) > 1:
            try:
                results = self._write_batch([(p.events, p.kwargs) for p in batch])
            except Exception:  # each write is tried again alone, below
                logger.debug("a batch of %d writes rolled back; each is tried alone", len(batch))
                self.stats.retried_alone += len(batch)
            else:
                self.stats.batches += 1
                self.stats.writes += len(batch)
                for pending, result in zip(batch, results, strict=True):
                    pending.done.set_result(result)
                return
        for pending in batch:
            try:
                result = self._write_one(pending.events, pending.kwargs)
            except BaseException as error:  # the caller gets it, as its own
                pending.done.set_exception(error)
            else:
                self.stats.batches += 1
                self.stats.writes += 1
                pending.done.set_result(result)


class GroupCommitting(ApplicationRecorder):
    """A recorder that can hand its writes to a group committer; each database says how a
    batch is written in one transaction (`_insert_together`)."""

    group_commit: GroupCommitter | None = None

    def start_group_commit(self, window_seconds: float) -> None:
        """From now on, writes arriving together share one transaction."""
        self.group_commit = GroupCommitter(
            self._insert_together, self._insert_alone, window_seconds=window_seconds
        )

    def stop_group_commit(self) -> None:
        """Commit what was submitted and stop taking writes (at shutdown)."""
        if self.group_commit is not None:
            self.group_commit.close()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.group_commit is None or not stored_events:
            # The concrete recorder follows this mixin in the method order.
            return super().insert_events(stored_events, **kwargs)  # type: ignore[safe-super]
        return self.group_commit.write(stored_events, kwargs)

    def _insert_alone(
        self, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]
    ) -> NotificationIds:
        return super().insert_events(stored_events, **kwargs)  # type: ignore[safe-super]

    def _insert_together(self, writes: Sequence[Write]) -> list[NotificationIds]:
        raise NotImplementedError
