"""The load generator: N concurrent HTTP clients in a process of their own, pinned to one core.

On a two-core machine a load generator sharing the server's core takes CPU from it and makes
the server look slower than it is. So the clients run in a separate process (spawned, not
forked: it inherits no threads or connections), pinned with `sched_setaffinity` to the core
the services are not pinned to. Each client keeps one keep-alive connection (aiohttp) and sends
its requests one after another: a closed loop, so N clients means at most N requests in flight.

The process measures its own CPU time over the measured window: near 100% of its core, the
generator itself was the limit and the figure is a floor of what the server can do.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.stats import percentile

T = TypeVar("T")
# Replaced in each request body by `<tag>-<client>-<n>`: references never repeat.
MARK = "@@N@@"
_TIMEOUT_SECONDS = 30.0
_SLOW_TIMEOUT_SECONDS = 300.0  # one as-of read over a large flow may take this long


@dataclass(frozen=True)
class Client:
    """One client's requests: sent one after another, cycling through `targets`.

    A target is a path and the headers for it (each contract is written by its own parties,
    so each has its own bearer token).
    """

    method: str
    targets: tuple[tuple[str, dict[str, str]], ...]
    body: str | None = None


@dataclass(frozen=True)
class Change:
    """A write sent before each read, its answer awaited and not timed: `MARK` in the body is
    replaced so that each one is new."""

    url: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Load:
    """What to send, from how many clients, for how long; `tag` is unique per run."""

    base_url: str
    clients: tuple[Client, ...]
    warmup_seconds: float
    measure_seconds: float
    tag: str


@dataclass(frozen=True)
class Outcome:
    """What one run of a load measured, over its measured window only."""

    clients: int
    seconds: float
    answered: int
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_share: float
    statuses: dict[int, int] = field(default_factory=dict)
    first_error: str = ""

    @property
    def rate(self) -> float:
        """Successful (2xx) answers per second."""
        return self.answered / self.seconds if self.seconds > 0 else 0.0


def pin_self(cpus: frozenset[int]) -> None:
    """Keep this process (and the threads it starts from now on) on `cpus`."""
    # Runs first in the child: everything it does from then on stays on these cores.
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


async def _drive(load: Load) -> Outcome:
    import aiohttp  # imported in the child only: the parent never needs it

    connector = aiohttp.TCPConnector(limit=len(load.clients), force_close=False)
    timeout = aiohttp.ClientTimeout(total=_TIMEOUT_SECONDS)
    started = time.perf_counter()
    window_start = started + load.warmup_seconds
    window_end = window_start + load.measure_seconds
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    first_error: list[str] = []
    cpu: dict[str, float] = {}

    async def clock() -> None:
        # The generator's own CPU time, read at both ends of the measured window.
        await asyncio.sleep(max(window_start - time.perf_counter(), 0))
        cpu["start"] = time.process_time()
        await asyncio.sleep(max(window_end - time.perf_counter(), 0))
        cpu["end"] = time.process_time()

    async def client(index: int, spec: Client, session: aiohttp.ClientSession) -> None:
        n = 0
        while (now := time.perf_counter()) < window_end:
            n += 1
            path, headers = spec.targets[n % len(spec.targets)]
            body = None
            if spec.body is not None:
                body = spec.body.replace(MARK, f"{load.tag}-{index}-{n}").encode()
            try:
                async with session.request(
                    spec.method, load.base_url + path, data=body, headers=headers
                ) as response:
                    text = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, text = -1, f"{type(exc).__name__}: {exc}".encode()
            done = time.perf_counter()
            if window_start <= done <= window_end:
                statuses[status] += 1
                if 200 <= status < 300:
                    latencies.append((done - now) * 1000)
                elif not first_error:
                    first_error.append(f"{status} {path}: {text[:300]!r}")

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(
            clock(), *(client(i, spec, session) for i, spec in enumerate(load.clients))
        )
    answered = len(latencies)
    cpu_seconds = cpu.get("end", 0.0) - cpu.get("start", 0.0)
    return Outcome(
        clients=len(load.clients),
        seconds=load.measure_seconds,
        answered=answered,
        errors=sum(statuses.values()) - answered,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        mean_ms=sum(latencies) / answered if answered else float("nan"),
        cpu_share=cpu_seconds / load.measure_seconds,
        statuses={s: c for s, c in statuses.items() if not 200 <= s < 300},
        first_error=first_error[0] if first_error else "",
    )


@dataclass(frozen=True)
class Paged:
    """A feed read from start to end: entries, pages, wall seconds, the reader's CPU share."""

    entries: int
    pages: int
    seconds: float
    cpu_share: float
    page_p50_ms: float
    page_p99_ms: float

    @property
    def rate(self) -> float:
        """Entries per second."""
        return self.entries / self.seconds if self.seconds > 0 else 0.0


async def _page(base_url: str, headers: dict[str, str], limit: int) -> Paged:
    import aiohttp

    entries, pages, after = 0, 0, 0
    latencies: list[float] = []
    timeout = aiohttp.ClientTimeout(total=_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started, cpu = time.perf_counter(), time.process_time()
        while True:
            sent = time.perf_counter()
            async with session.get(
                f"{base_url}/events", params={"after": after, "limit": limit}, headers=headers
            ) as response:
                response.raise_for_status()
                # Parsed, as a follower must, to learn where the next page starts.
                page = await response.json()
            latencies.append((time.perf_counter() - sent) * 1000)
            if not page["entries"]:
                break
            entries += len(page["entries"])
            pages += 1
            after = page["next_after"]
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return Paged(
        entries,
        pages,
        seconds,
        cpu / seconds,
        percentile(latencies, 50),
        percentile(latencies, 99),
    )


async def _repeat(
    url: str,
    headers: dict[str, str],
    requests: int,
    least: int,
    seconds: float,
    change: Change | None,
) -> Outcome:
    import aiohttp

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    first_error = ""
    timeout = aiohttp.ClientTimeout(total=_SLOW_TIMEOUT_SECONDS)
    tag = f"{time.time_ns():x}"
    changed = 0
    untimed = 0.0

    async def write() -> None:
        nonlocal changed
        if change is None:
            return
        changed += 1
        body = change.body.replace(MARK, f"{tag}-{changed}").encode()
        async with session.post(change.url, data=body, headers=change.headers) as response:
            answer = await response.read()
            if not 200 <= response.status < 300:
                raise RuntimeError(f"the change before a read failed: {answer[:300]!r}")

    async with aiohttp.ClientSession(timeout=timeout) as session:
        # One request first, not counted: connection set-up and whatever the server warms.
        await write()
        async with session.get(url, headers=headers) as response:
            await response.read()
        started, cpu = time.perf_counter(), time.process_time()
        while len(latencies) < requests and (
            len(latencies) < least or time.perf_counter() - started - untimed < seconds
        ):
            before = time.perf_counter()
            await write()
            sent = time.perf_counter()
            untimed += sent - before
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                status = response.status
            statuses[status] += 1
            if 200 <= status < 300:
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                first_error = first_error or f"{status}: {body[:300]!r}"
                if statuses[status] >= least:
                    break
        elapsed = time.perf_counter() - started - untimed
        cpu = time.process_time() - cpu
    answered = len(latencies)
    return Outcome(
        clients=1,
        seconds=elapsed,
        answered=answered,
        errors=sum(statuses.values()) - answered,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        mean_ms=sum(latencies) / answered if answered else float("nan"),
        cpu_share=cpu / elapsed if elapsed > 0 else 0.0,
        statuses={s: c for s, c in statuses.items() if not 200 <= s < 300},
        first_error=first_error,
    )


def _in_own_loop(work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """`work(*args)` run to its end in an event loop of its own: the generator process's."""
    return asyncio.run(work(*args))


class LoadGenerator:
    """A spawned process, pinned to `cpus`, that runs loads one at a time; close it after."""

    def __init__(self, cpus: frozenset[int]) -> None:
        self.cpus = cpus
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=pin_self,
            initargs=(cpus,),
        )

    def run(self, load: Load) -> Outcome:
        """Run one load to its end and return what it measured."""
        return self._pool.submit(_in_own_loop, _drive, load).result()

    def repeat(
        self,
        url: str,
        headers: dict[str, str],
        *,
        requests: int,
        least: int,
        seconds: float,
        change: Change | None = None,
    ) -> Outcome:
        """One client GETting `url` over and over, for slow reads: at least `least` requests,
        at most `requests`, else for `seconds` (of reads; a `change` before each is untimed)."""
        submitted = self._pool.submit(
            _in_own_loop, _repeat, url, headers, requests, least, seconds, change
        )
        return submitted.result()

    def page_feed(self, base_url: str, headers: dict[str, str], limit: int) -> Paged:
        """Page through a whole feed from this process; what it read, and how fast."""
        return self._pool.submit(_in_own_loop, _page, base_url, headers, limit).result()

    def close(self) -> None:
        """Stop the generator process."""
        self._pool.shutdown(wait=True)
