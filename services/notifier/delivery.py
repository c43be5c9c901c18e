"""Takes due deliveries, has them sent (sending.py), and records what came of each attempt.

After an attempt, it is logged and its delivery moved on: delivered, retried later,
dead-lettered, or — on 410 Gone or failing for too long — the subscription disabled, its other
deliveries cancelled and that fact itself notified. Attempts that end close together are logged
in one short transaction; should it fail, each is logged alone, so one cannot lose the others.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select, update

from services.common.sql import Database, now_utc
from services.notifier.messages import Message, active_subscriptions, enqueue
from services.notifier.retries import AttemptResult, Outcome, retry_delay
from services.notifier.sending import Due, Sender, clean
from services.notifier.settings import NotifierSettings
from services.notifier.store.tables import attempts, deliveries, messages, subscriptions

_REASON_CHARS = 500  # the width of notifier_subscriptions.disabled_reason
NOTIFIER_FEED = "notifier"
DISABLED_EVENT = "subscription.disabled"


def _settle(logged: asyncio.Future[None], error: Exception | None = None) -> None:
    # Whoever waited may have been cancelled meanwhile (a shutdown); the log stands anyway.
    if logged.done():
        return
    if error is None:
        logged.set_result(None)
    else:
        logged.set_exception(error)


def _attempt_row(delivery: Due, result: AttemptResult) -> dict[str, Any]:
    return {
        "delivery_id": delivery.id,
        "attempted_at": result.attempted_at,
        "status": result.status,
        "error": result.error,
        "latency_ms": result.latency_ms,
        "response_excerpt": result.excerpt,
    }


class Dispatcher:
    """Delivers what is due; one per process holding the delivery lease."""

    def __init__(
        self,
        database: Database,
        settings: NotifierSettings,
        *,
        clock: Callable[[], datetime] = now_utc,
        rng: random.Random | None = None,
        on_attempt: Callable[[AttemptResult], None] = lambda _: None,
    ) -> None:
        self._database = database
        self._on_attempt = on_attempt
        self._settings = settings
        self._sender = Sender(settings, clock)
        self._clock = clock
        # Jitter only spreads retries in time; it guards no secret, so no CSPRNG is needed.
        self._rng = rng or random.Random()  # noqa: S311
        # Writes are serialized in the process: SQLite allows one writer at a time anyway, and
        # numbering `subscription.disabled` messages reads the highest number so far.
        self._writing = asyncio.Lock()
        # Two overlapping rounds would pick, and send, the same due deliveries twice.
        self._round = asyncio.Lock()
        # Attempts waiting to be logged, and the task logging them (while there are any).
        self._unlogged: list[tuple[Due, AttemptResult, asyncio.Future[None]]] = []
        self._logging: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Finish logging the attempts made; close the connections to receivers."""
        if self._logging is not None:
            await asyncio.gather(self._logging, return_exceptions=True)
        await self._sender.aclose()

    async def deliver_due(self, limit: int = 100) -> int:
        """Attempt up to `limit` due deliveries, oldest first; how many were attempted."""
        async with self._round:
            due = await self._take_due(limit)
            gate = asyncio.Semaphore(self._settings.delivery_concurrency)

            async def deliver(delivery: Due) -> None:
                async with gate:
                    result = await self._sender.attempt(delivery)
                self._on_attempt(result)
                await self._record(delivery, result)

            # Every attempt is recorded even if recording another failed; then the first
            # failure is raised (a delivery left unrecorded stays due and is sent again).
            outcomes = await asyncio.gather(*map(deliver, due), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            return len(due)

    async def _take_due(self, limit: int) -> list[Due]:
        async with self._writing:
            return await self._database.write(lambda c: self._due(c, limit))

    def _due(self, connection: Connection, limit: int) -> list[Due]:
        now = self._clock()
        rows = connection.execute(
            select(
                deliveries.c.id,
                deliveries.c.subscription_id,
                deliveries.c.message_id,
                deliveries.c.attempts,
                subscriptions.c.state.label("subscription_state"),
                subscriptions.c.url,
                subscriptions.c.secret,
                subscriptions.c.previous_secret,
                subscriptions.c.previous_secret_expires_at,
                messages.c.body,
            )
            .select_from(
                deliveries.outerjoin(
                    subscriptions, subscriptions.c.id == deliveries.c.subscription_id
                ).outerjoin(messages, messages.c.id == deliveries.c.message_id)
            )
            .where(deliveries.c.state == "pending", deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.next_attempt_at, deliveries.c.created_at, deliveries.c.id)
            .limit(limit)
        ).all()
        # A disabled (or deleted) subscription gets nothing more: its deliveries end here.
        stale = [r.id for r in rows if r.subscription_state != "active" or r.body is None]
        if stale:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(stale), deliveries.c.state == "pending")
                .values(state="cancelled", next_attempt_at=None, finished_at=now)
            )
        return [
            Due(
                id=r.id,
                subscription_id=r.subscription_id,
                message_id=r.message_id,
                attempts=r.attempts,
                url=r.url,
                body=r.body,
                secret=r.secret,
                previous_secret=r.previous_secret,
                previous_secret_expires_at=r.previous_secret_expires_at,
            )
            for r in rows
            if r.id not in stale
        ]

    async def _record(self, delivery: Due, result: AttemptResult) -> None:
        """Log an attempt; returns once its transaction has committed."""
        logged = asyncio.get_running_loop().create_future()
        self._unlogged.append((delivery, result, logged))
        if self._logging is None:
            self._logging = asyncio.create_task(self._log_unlogged())
        await logged

    async def _log_unlogged(self) -> None:
        # Attempts that end while a transaction is logging others wait for the next one, and
        # it takes them all: one commit for many, as a round's answers come in close together.
        try:
            while self._unlogged:
                async with self._writing:
                    # Taken once the log is free, so it holds all that ended while it was busy.
                    batch, self._unlogged = self._unlogged, []
                    await self._log_together(batch)
        finally:
            self._logging = None

    async def _log_together(
        self, batch: list[tuple[Due, AttemptResult, asyncio.Future[None]]]
    ) -> None:
        try:
            await self._database.write(partial(self._log_all, batch=[(d, r) for d, r, _ in batch]))
        except Exception:
            # One attempt that cannot be logged must not lose the others: log each alone.
            for delivery, result, logged in batch:
                try:
                    await self._database.write(partial(self._log, delivery=delivery, result=result))
                except Exception as exc:
                    _settle(logged, exc)
                else:
                    _settle(logged)
            return
        for _, _, logged in batch:
            _settle(logged)

    def _log_all(self, connection: Connection, batch: list[tuple[Due, AttemptResult]]) -> None:
        """Log attempts in the order they ended; each run of arrivals in three statements."""
        arrived: list[tuple[Due, AttemptResult]] = []
        for delivery, result in batch:
            if result.outcome is Outcome.DELIVERED:
                arrived.append((delivery, result))
                continue
            # Logged in order: a failure after an arrival marks its subscription failing again.
            self._log_arrived(connection, arrived)
            arrived = []
            self._log(connection, delivery, result)
        self._log_arrived(connection, arrived)

    def _log_arrived(
        self, connection: Connection, arrived: list[tuple[Due, AttemptResult]]
    ) -> None:
        """Log attempts that delivered, and mark their deliveries done and subscriptions well."""
        if not arrived:
            return
        now = self._clock()
        connection.execute(attempts.insert(), [_attempt_row(d, r) for d, r in arrived])
        # Arrived is arrived, even if the subscription was disabled meanwhile. The lease holder
        # alone attempts deliveries, so the count read when they were taken still stands.
        connection.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_([delivery.id for delivery, _ in arrived]),
                deliveries.c.state.in_(("pending", "cancelled")),
            )
            .values(
                state="delivered",
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=None,
                finished_at=now,
            )
        )
        # Only those that were failing: rewriting a row to the same value still costs a write.
        connection.execute(
            update(subscriptions)
            .where(
                subscriptions.c.id.in_(
                    sorted({delivery.subscription_id for delivery, _ in arrived})
                ),
                subscriptions.c.failing_since.is_not(None),
            )
            .values(failing_since=None)
        )

    def _log(self, connection: Connection, delivery: Due, result: AttemptResult) -> None:
        """Log one attempt and move its delivery (and perhaps its subscription) on."""
        outcome = result.outcome
        if outcome is Outcome.DELIVERED:
            self._log_arrived(connection, [(delivery, result)])
            return
        now = self._clock()
        connection.execute(attempts.insert().values(**_attempt_row(delivery, result)))
        count = delivery.attempts + 1
        this = deliveries.c.id == delivery.id
        pending = deliveries.c.state == "pending"
        if outcome is Outcome.GONE:
            connection.execute(
                update(deliveries)
                .where(this, pending)
                .values(state="dead", attempts=count, next_attempt_at=None, finished_at=now)
            )
            reason = f"the target answered {result.status} Gone: it no longer wants deliveries"
            self._disable(connection, delivery.subscription_id, reason, now)
            return
        delay = retry_delay(
            self._settings.retry_schedule_seconds,
            count,
            self._settings.retry_jitter,
            self._rng,
            result.asked_wait(now),
        )
        values: dict[str, Any] = (
            {"state": "dead", "next_attempt_at": None, "finished_at": now}
            if delay is None
            else {"next_attempt_at": now + timedelta(seconds=delay)}
        )
        connection.execute(update(deliveries).where(this, pending).values(attempts=count, **values))
        self._note_failure(connection, delivery.subscription_id, result, now)

    def _note_failure(
        self,
        connection: Connection,
        subscription_id: str,
        result: AttemptResult,
        now: datetime,
    ) -> None:
        one = subscriptions.c.id == subscription_id
        connection.execute(
            update(subscriptions)
            .where(one, subscriptions.c.failing_since.is_(None))
            .values(failing_since=result.attempted_at)
        )
        since = connection.scalar(select(subscriptions.c.failing_since).where(one))
        limit = self._settings.disable_after_seconds
        if since is None or (now - since).total_seconds() < limit:
            return
        reason = (
            f"every delivery failed since {since:%Y-%m-%dT%H:%M:%SZ}, for more than {limit} "
            f"seconds; the last attempt: {result.error or f'HTTP {result.status}'}"
        )
        self._disable(connection, subscription_id, reason, now)

    def _disable(
        self, connection: Connection, subscription_id: str, reason: str, now: datetime
    ) -> None:
        reason = clean(reason, _REASON_CHARS)
        one = subscriptions.c.id == subscription_id
        changed = connection.execute(
            update(subscriptions)
            .where(one, subscriptions.c.state == "active")
            .values(state="disabled", disabled_reason=reason, updated_at=now)
        )
        if changed.rowcount != 1:
            return  # disabled already (and notified then): nothing to add
        connection.execute(
            update(deliveries)
            .where(deliveries.c.subscription_id == subscription_id, deliveries.c.state == "pending")
            .values(state="cancelled", next_attempt_at=None, finished_at=now)
        )
        row = (
            connection.execute(
                select(subscriptions.c.url, subscriptions.c.owner_organization).where(one)
            )
        ).one()
        message = Message(
            feed=NOTIFIER_FEED,
            position=self._next_position(connection, now),
            event_type=DISABLED_EVENT,
            timestamp=now,
            data={
                "subscription_id": subscription_id,
                "url": row.url,
                "reason": reason,
                "owner_organization_id": row.owner_organization,
            },
            # Subscriptions filtered on an organization hear only of their organization's own.
            organization_ids=frozenset({row.owner_organization}),
        )
        wanted = active_subscriptions(connection)
        enqueue(connection, message, wanted, now, exclude=[subscription_id])

    def _next_position(self, connection: Connection, now: datetime) -> int:
        # Milliseconds since the epoch, but always past the last one: two disabled in the same
        # millisecond, or a clock set back, must not make the same message id twice.
        highest = connection.scalar(
            select(func.max(messages.c.position)).where(messages.c.feed == NOTIFIER_FEED)
        )
        return max(int(now.timestamp() * 1000), int(highest or 0) + 1)
