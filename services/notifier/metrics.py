"""The notifier's own metrics: feed positions and lag, webhook attempts, the queue's depth.

Positions and the queue are read from the database at each scrape, so every replica reports
them; heads, and so lag, only the replica whose worker follows the feeds knows (the lease
holder), and attempts are counted by the replica that made them.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.observability import Metrics
from services.notifier.retries import AttemptResult, Outcome
from services.notifier.store.tables import deliveries, feed_positions
from services.notifier.worker import Worker

FEEDS = ("ledger", "catalog")


def count_attempts(metrics: Metrics) -> AttemptCounter:
    """The counter of webhook attempts by outcome, on the app's registry."""
    return AttemptCounter(metrics)


class AttemptCounter:
    """Counts each webhook attempt as delivered, retry (failed, to be tried again) or gone."""

    def __init__(self, metrics: Metrics) -> None:
        self._attempts = metrics.counter(
            "notifier_webhook_attempts",
            "Webhook delivery attempts by outcome: delivered (a 2xx in time), retry (failed, "
            "tried again later unless the schedule is spent), gone (410: the subscription ends)",
            ("outcome",),
        )
        for outcome in Outcome:
            self._attempts.labels(outcome=outcome.value)  # every series present from the start

    def __call__(self, result: AttemptResult) -> None:
        """Count one attempt."""
        self._attempts.labels(outcome=result.outcome.value).inc()


def observe_notifier(metrics: Metrics, engine: AsyncEngine, worker: Worker | None) -> None:
    """Register the notifier's gauges on the app's registry, refreshed at each scrape."""
    position = metrics.gauge(
        "notifier_feed_position",
        "The last position of each feed whose events are queued",
        ("feed",),
    )
    head = metrics.gauge(
        "notifier_feed_head_position",
        "Each feed's head as its last page read said (only on the replica that follows)",
        ("feed",),
    )
    lag = metrics.gauge(
        "notifier_feed_lag_entries",
        "Entries of each feed not yet queued (only on the replica that follows)",
        ("feed",),
    )
    queued = metrics.gauge(
        "notifier_webhook_queue_depth", "Deliveries waiting to be attempted, or attempted again"
    )

    @metrics.on_scrape
    async def refresh_notifier() -> None:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(feed_positions.c.feed, feed_positions.c.position)
            )
            stored: dict[str, int] = {row.feed: row.position for row in rows}
            waiting = await connection.scalar(
                select(func.count()).select_from(deliveries).where(deliveries.c.state == "pending")
            )
        queued.set(waiting or 0)
        for feed in FEEDS:
            position.labels(feed=feed).set(stored.get(feed, 0))
        for follower in worker.followers if worker is not None else []:
            if follower.last_head is not None:
                head.labels(feed=follower.feed).set(follower.last_head)
                lag.labels(feed=follower.feed).set(
                    max(follower.last_head - stored.get(follower.feed, 0), 0)
                )
