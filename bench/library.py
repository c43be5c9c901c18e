"""Yardstick (b): the `eventsourcing` library on its own, saving events one save per event.

No HTTP, no auth, no feed table: a plain `eventsourcing.application.Application` on PostgreSQL
(its own recorder, which also numbers notifications under a table lock, as the ledger's does),
with a small aggregate whose event carries what a delivery report carries. Each thread calls
the aggregate's event method and saves, over and over, for a fixed time. It runs in a spawned
process pinned to the services' cores, so it has the CPU a service has.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.loadgen import pin_self
from bench.stats import percentile
from services.ledger.store.config import eventsourcing_env


class Tally(Aggregate):
    """An aggregate whose one event looks like a delivery report."""

    @event("Registered")
    def __init__(self, reference: str) -> None:
        self.reference = reference
        self.count = 0

    @event("DeliveryReported")
    def report(
        self,
        *,
        reference: str,
        period_start: str,
        period_end: str,
        quantity: int,
        unit: str,
        amount_fen: int,
        description: str,
        occurred_at: datetime,
    ) -> None:
        self.count += 1


class Tallies(Application[UUID]):
    """The library's application, nothing added."""

    name = "BenchLibrary"


@dataclass(frozen=True)
class LibraryOutcome:
    """Events saved per second by `threads` threads, and the latency of one save."""

    threads: int
    events: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """Saves (one event each) per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _env(database_url: str) -> dict[str, str]:
    env = eventsourcing_env(database_url)
    # The library's own recorder, not the ledger's (which also writes the feed).
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    env["POSTGRES_POOL_SIZE"] = "20"
    return env


def _saving(database_url: str, threads: int, warmup: float, seconds: float) -> LibraryOutcome:
    app = Tallies(env=_env(database_url))
    started = time.perf_counter()
    window = (started + warmup, started + warmup + seconds)
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def work(index: int) -> None:
        tally = Tally(reference=f"T-{index}-{started}")
        app.save(tally)
        n = 0
        while (now := time.perf_counter()) < window[1]:
            n += 1
            tally.report(**_payload(n))
            app.save(tally)
            done = time.perf_counter()
            if window[0] <= done <= window[1]:
                latencies[index].append((done - now) * 1000)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    app.close()
    measured = [latency for each in latencies for latency in each]
    return LibraryOutcome(
        threads, len(measured), seconds, percentile(measured, 50), percentile(measured, 99)
    )


def _payload(n: int) -> dict[str, Any]:
    return {
        "reference": f"D-{n}",
        "period_start": "2014-10-01",
        "period_end": "2014-10-31",
        "quantity": 1,
        "unit": "person-times",
        "amount_fen": 100,
        "description": "home visits delivered as agreed, with attendance sheets",
        "occurred_at": datetime(2014, 11, 5, 2, tzinfo=UTC),
    }


class Library:
    """A spawned process, pinned to `cpus`, that runs the library's saves; close it after."""

    def __init__(self, cpus: frozenset[int]) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=pin_self,
            initargs=(cpus,),
        )

    def run(self, database_url: str, threads: int, warmup: float, seconds: float) -> LibraryOutcome:
        """Save for `warmup` + `seconds` with `threads` threads; what the measured part did."""
        return self._pool.submit(_saving, database_url, threads, warmup, seconds).result()

    def close(self) -> None:
        """Stop the process."""
        self._pool.shutdown(wait=True)
