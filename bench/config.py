"""How big and how long: the full run's sizes, and the quick smoke test's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Every size and duration the run uses."""

    # Contracts in the appends' world: half take deliveries, half payments (one budget).
    contracts: int = 128
    clients: tuple[int, ...] = (1, 16, 64)
    repetitions: int = 3
    warmup_seconds: float = 0.5
    measure_seconds: float = 2.5
    library_threads: tuple[int, ...] = (1, 16)
    # Events behind the budget whose flow is read as of a date.
    flow_events: int = 100_000
    # Entries the feed and verification read: the as-of seeding's, and as many more as it takes
    # (seeded on a second budget, in the same ledger); 0 for the as-of seeding's alone.
    feed_entries: int = 1_000_000
    # As-of reads: each of `repetitions` runs is at least `as_of_least` and at most
    # `as_of_requests` requests, else `measure_seconds` of them (a large flow takes seconds).
    as_of_least: int = 3
    as_of_requests: int = 100
    # Webhooks: subscriptions, and payments made at `payments_per_second` to feed them.
    subscriptions: int = 100
    webhook_contracts: int = 8
    webhook_payments: int = 10
    payments_per_second: float = 5.0

    @property
    def pool(self) -> int:
        """Contracts each kind of append writes to (each client has its own share)."""
        return self.contracts // 2


FULL = Sizes()
QUICK = Sizes(
    contracts=32,
    clients=(1, 4, 16),
    repetitions=1,
    warmup_seconds=0.5,
    measure_seconds=1.5,
    flow_events=3_000,
    feed_entries=0,
    as_of_requests=20,
    subscriptions=10,
    webhook_contracts=4,
    webhook_payments=10,
)
