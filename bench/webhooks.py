"""Benchmark 5: webhooks from the notifier to a local receiver with many subscriptions.

Every subscription asks for `payment.recorded` and posts to its own path of one receiver, so
each payment becomes one delivery per subscription. Payments are recorded over HTTP:

- steady: at the rate that offers the notifier the target's deliveries per second, so the
  latency is the one a notifier under that load gives;
- burst: all at once, so the deliveries per second are what the notifier can do.

Event-to-delivery latency is a delivery's arrival at the receiver less the event's `recorded_at`
in the feed (both read from this machine's clock). Deliveries per second count from the first
event's recorded time to the last arrival.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.receiver import Arrival, Receiver
from bench.results import Results
from bench.services import metric
from bench.stats import percentile
from bench.world import ContractRef, payment_body
from demo.api import Api
from proto.actor import Role

_WAIT_SECONDS = 120.0


async def subscribe(api: Api, receiver: Receiver, count: int) -> None:
    """`count` subscriptions to payments, each to its own hook; the receiver gets the secrets."""
    secrets: dict[str, str] = {}

    async def one(n: int) -> None:
        made = await api.post(
            api.notifier,
            "/subscriptions",
            {
                "url": receiver.url(n),
                "event_types": ["payment.recorded"],
                "description": f"bench subscription {n}",
            },
            api.finance,
        )
        secrets[str(n)] = made["secret"]

    await asyncio.gather(*(one(n) for n in range(count)))
    receiver.give_secrets(secrets)


def wait_for_notifier(notifier_url: str, timeout: float = _WAIT_SECONDS) -> float:
    """Wait until the notifier has queued both feeds and sent everything; seconds waited."""
    started = time.monotonic()
    while True:
        try:
            lags = [
                metric(notifier_url, "notifier_feed_lag_entries", f'feed="{feed}"')
                for feed in ("ledger", "catalog")
            ]
            lags.append(metric(notifier_url, "notifier_webhook_queue_depth"))
        except KeyError:  # no page read yet: no lag figure yet
            lags = [1.0]
        if max(lags) == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the notifier still lags ({lags}) after {timeout:.0f} s")
        time.sleep(0.2)


async def pay(
    api: Api, contracts: list[ContractRef], count: int, per_second: float | None, tag: str
) -> None:
    """Record `count` 0.01 CNY payments, spread at `per_second`, or all at once if None."""
    started = time.monotonic()
    gate = asyncio.Semaphore(len(contracts))
    locks = [asyncio.Lock() for _ in contracts]

    async def one(n: int) -> None:
        if per_second is not None:
            await asyncio.sleep(max(started + n / per_second - time.monotonic(), 0))
        index = n % len(contracts)
        contract = contracts[index]
        # One payment at a time per contract: two at once would race (409, retried).
        async with gate, locks[index]:
            await api.post(
                api.ledger,
                f"/contracts/{contract.id}/payments",
                payment_body(f"{tag}-{n}", 1),
                api.as_(Role.STREET, contract.purchaser_id),
            )

    await asyncio.gather(*(one(n) for n in range(count)))


def wait_for_arrivals(receiver: Receiver, expected: int, timeout: float = _WAIT_SECONDS) -> None:
    """Wait until `expected` deliveries arrived in all (or give up after `timeout`)."""
    deadline = time.monotonic() + timeout
    while receiver.arrived() < expected and time.monotonic() < deadline:
        time.sleep(0.2)


@dataclass(frozen=True)
class Delivered:
    """What arrived for one part of the benchmark."""

    deliveries: int
    expected: int
    duplicates: int
    refused: int
    rate: float
    p50_ms: float
    p99_ms: float


def summarize(arrivals: list[Arrival], tag: str, expected: int) -> Delivered:
    """Deliveries of the payments tagged `tag`: rate, latency, duplicates, bad signatures."""
    mine = [a for a in arrivals if a.reference.startswith(f"{tag}-")]
    # One message per event, sent to each subscription: a delivery is a (hook, message) pair.
    distinct = {(a.hook, a.webhook_id) for a in mine}
    latencies = [(a.arrived - a.recorded) * 1000 for a in mine]
    span = max(a.arrived for a in mine) - min(a.recorded for a in mine) if mine else 0.0
    return Delivered(
        deliveries=len(distinct),
        expected=expected,
        duplicates=len(mine) - len(distinct),
        refused=sum(1 for a in mine if not a.verified),
        rate=len(distinct) / span if span > 0 else 0.0,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


def measure_webhooks(
    results: Results,
    api: Api,
    receiver: Receiver,
    contracts: list[ContractRef],
    *,
    subscriptions: int,
    payments: int,
    per_second: float,
    runs: int,
    notifier_cpu: Callable[[], float],
    progress: Callable[[str], None],
) -> None:
    """The steady part, then the burst, each into its row of `results`, `runs` times in turn."""
    parts = [
        (part, f"{prefix}{run}", rate)
        for run in range(runs)
        for part, prefix, rate in (("steady", "HS", per_second), ("burst", "HB", None))
    ]
    for part, tag, rate in parts:
        before = receiver.arrived()
        offered = f"{per_second * subscriptions:,.0f} deliveries/s offered" if rate else "at once"
        progress(f"webhooks, {part}: {payments} payments x {subscriptions} subscriptions")
        cpu, wall = notifier_cpu(), time.perf_counter()
        asyncio.run(_paying(api, contracts, payments, rate, tag))
        expected = payments * subscriptions
        wait_for_arrivals(receiver, before + expected)
        share = (notifier_cpu() - cpu) / (time.perf_counter() - wall)
        done = summarize(receiver.received(), tag, expected)
        name = (
            f"{part}: {payments} payments x {subscriptions} subscriptions ({offered}); "
            "latency event to delivery"
        )
        row = results.row("webhooks", name, "deliveries/s")
        row.add(done.rate, done.p50_ms, done.p99_ms)
        row.server_cpu.append(share)
        row.errors += done.expected - done.deliveries + done.refused
        row.note = (
            "server CPU is the notifier's; "
            f"{done.deliveries} of {done.expected} arrived, {done.duplicates} twice, "
            f"{done.refused} with a signature that did not verify"
        )


async def _paying(
    api: Api, contracts: list[ContractRef], count: int, per_second: float | None, tag: str
) -> None:
    # A fresh client per part: asyncio.run closes its loop, and httpx's pools are bound to one.
    fresh = Api(api.catalog_url, api.ledger_url, api.notifier_url, concurrency=8)
    try:
        await pay(fresh, contracts, count, per_second, tag)
    finally:
        await fresh.aclose()
