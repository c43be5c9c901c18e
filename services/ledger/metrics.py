"""The ledger's own metrics: events appended, how far its followers lag, the checkpoint's age.

Each is read from the database when Prometheus scrapes, so every replica reports the same
figures, whichever of them wrote the events or signed the checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from services.common.observability import Metrics
from services.common.sql import now_utc
from services.ledger.application.base import LedgerBase
from services.ledger.audit.flow_answers import KeptAnswers
from services.ledger.audit.flow_model import FlowModel


@dataclass
class _Reading:
    head: int = 0
    flow_model: int = 0
    checkpointed: int = 0
    checkpoint_taken_at: datetime | None = None


def observe_ledger(
    metrics: Metrics,
    ledger: LedgerBase,
    flow_model: FlowModel,
    flow_answers: KeptAnswers | None = None,
    *,
    clock: Callable[[], datetime] = now_utc,
) -> None:
    """Register the ledger's metrics on the app's registry, read afresh at each scrape."""
    reading = _Reading()

    def read() -> _Reading:
        latest = ledger.reads.latest_checkpoint()
        return _Reading(
            head=ledger.reads.head(),
            flow_model=flow_model.position(),
            checkpointed=latest.tree_size if latest else 0,
            checkpoint_taken_at=latest.taken_at if latest else None,
        )

    @metrics.on_scrape
    async def refresh_ledger() -> None:
        reading.__dict__.update((await asyncio.to_thread(read)).__dict__)

    @metrics.collector
    def ledger_metrics() -> Iterable[Metric]:
        # The feed is dense, so its head counts every event ever appended.
        yield CounterMetricFamily(
            "ledger_events_appended", "Events appended to the ledger", value=reading.head
        )
        yield GaugeMetricFamily(
            "ledger_feed_head_position", "The feed's last position", value=reading.head
        )
        position = GaugeMetricFamily(
            "ledger_follower_position",
            "The last feed position each of the ledger's followers reflects",
            labels=["follower"],
        )
        lag = GaugeMetricFamily(
            "ledger_follower_lag_entries",
            "Feed entries each of the ledger's followers has yet to take in",
            labels=["follower"],
        )
        for follower, reached in (
            ("flow-model", reading.flow_model),
            ("checkpoints", reading.checkpointed),
        ):
            position.add_metric([follower], reached)
            lag.add_metric([follower], max(reading.head - reached, 0))
        yield position
        yield lag
        committer = getattr(ledger.recorder, "group_commit", None)
        if committer is not None:  # this replica's own writes, counted as they commit
            yield CounterMetricFamily(
                "ledger_group_commit_transactions",
                "Transactions this replica committed writes in",
                value=committer.stats.batches,
            )
            yield CounterMetricFamily(
                "ledger_group_commit_writes",
                "Writes this replica committed; over transactions, the mean batch",
                value=committer.stats.writes,
            )
        pages = CounterMetricFamily(
            "ledger_entry_pages",
            "Pages of feed entries this replica served (GET /events, /audit/entries), by who "
            "wrote their JSON: the database, or the ledger where the database could not "
            "(SQLite; on PostgreSQL, entries kept by an older release or changed since written)",
            labels=["written_by"],
        )
        for writer in ("database", "ledger"):
            pages.add_metric([writer], ledger.entry_pages[writer])
        yield pages
        if flow_answers is not None:  # this replica's own, as it answers
            lookups = CounterMetricFamily(
                "ledger_flow_answer_lookups",
                "Flow reads that looked for a kept answer: found (hit) or built (miss)",
                labels=["outcome"],
            )
            parts = CounterMetricFamily(
                "ledger_flow_part_lookups",
                "Whole-flow reads' lookups of the part below a contract or grant: found (hit) "
                "or built (miss)",
                labels=["outcome"],
            )
            for outcome in ("hit", "miss"):
                lookups.add_metric([outcome], flow_answers.lookups["answer", outcome])
                parts.add_metric([outcome], flow_answers.lookups["part", outcome])
            yield lookups
            yield parts
            yield GaugeMetricFamily(
                "ledger_flow_answers_kept_bytes",
                "Bytes of flow answers, and parts of them, this replica keeps between reads",
                value=flow_answers.size,
            )
        if reading.checkpoint_taken_at is not None:  # no age before the first checkpoint
            yield GaugeMetricFamily(
                "ledger_checkpoint_age_seconds",
                "Seconds since the latest signed checkpoint was taken",
                value=(clock() - reading.checkpoint_taken_at).total_seconds(),
            )
