"""Sends due deliveries as signed Standard Webhooks POSTs, and records what came of each attempt.

One attempt: re-check the target against the allow-list, sign the stored body with the
subscription's secret (and the previous one while it is still valid), POST it without following
redirects, then log the attempt and move the delivery on: delivered, retried later,
dead-lettered, or — on 410 Gone or failing for too long — the subscription disabled, its other
deliveries cancelled and that fact itself notified. Attempts that end close together are logged
in one short transaction; should it fail, each is logged alone, so one cannot lose the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import Connection, func, select, update
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from services.common.sql import Database, now_utc
from services.notifier.messages import Message, active_subscriptions, enqueue
from services.notifier.retries import AttemptResult, Outcome, retry_delay
from services.notifier.secrets import SecretBox
from services.notifier.settings import NotifierSettings
from services.notifier.store.tables import attempts, deliveries, messages, subscriptions
from services.notifier.targets import AllowList, TargetRefused, check_target

EXCERPT_CHARS = 500
# UTF-8 takes at most 4 bytes a character: this many bytes always hold EXCERPT_CHARS of them,
# and reading no further keeps a receiver's huge (or endless) answer out of memory.
_EXCERPT_BYTES = 4 * EXCERPT_CHARS
_ERROR_CHARS = 500  # the width of notifier_attempts.error
_REASON_CHARS = 500  # the width of notifier_subscriptions.disabled_reason
NOTIFIER_FEED = "notifier"
DISABLED_EVENT = "subscription.disabled"


@dataclass(frozen=True)
class _Due:
    """A pending delivery with what sending it needs."""

    id: str
    subscription_id: str
    message_id: str
    attempts: int
    url: str
    body: str
    secret: bytes
    previous_secret: bytes | None
    previous_secret_expires_at: datetime | None


def _clean(text: str, width: int) -> str:
    # PostgreSQL text cannot hold NUL, and a receiver's answer may contain anything.
    return text.replace("\x00", "\ufffd")[:width]


def _describe(exc: Exception) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {detail}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the receiver broke the HTTP exchange: {detail}"
    return f"{type(exc).__name__}: {detail}"


def _settle(logged: asyncio.Future[None], error: Exception | None = None) -> None:
    # Whoever waited may have been cancelled meanwhile (a shutdown); the log stands anyway.
    if logged.done():
        return
    if error is None:
        logged.set_result(None)
    else:
        logged.set_exception(error)


async def _read_excerpt(response: httpx.Response) -> str:
    received = bytearray()
    # Raw bytes: decoding a compressed answer chunk by chunk could still balloon in memory.
    async for chunk in response.aiter_raw():
        received += chunk
        if len(received) >= _EXCERPT_BYTES:
            break
    text = bytes(received[:_EXCERPT_BYTES]).decode("utf-8", errors="replace")
    return _clean(text, EXCERPT_CHARS)


class Dispatcher:
    """Delivers what is due; one per process holding the delivery lease."""

    def __init__(
        self,
        database: Database,
        settings: NotifierSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = now_utc,
        rng: random.Random | None = None,
        on_attempt: Callable[[AttemptResult], None] = lambda _: None,
    ) -> None:
        self._database = database
        self._on_attempt = on_attempt
        self._settings = settings
        self._timeout = settings.delivery_timeout_seconds
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            # Proxies and .netrc from the environment have no say over where webhooks go.
            trust_env=False,
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.delivery_concurrency),
        )
        self._clock = clock
        # Jitter only spreads retries in time; it guards no secret, so no CSPRNG is needed.
        self._rng = rng or random.Random()  # noqa: S311
        self._box = SecretBox(settings.encryption_key.get_secret_value())
        self._allowed = AllowList.parse(settings.allowed_targets)
        # Writes are serialized in the process: SQLite allows one writer at a time anyway, and
        # numbering `subscription.disabled` messages reads the highest number so far.
        self._writing = asyncio.Lock()
        # Two overlapping rounds would pick, and send, the same due deliveries twice.
        self._round = asyncio.Lock()
        # Attempts waiting to be logged, and the task logging them (while there are any).
        self._unlogged: list[tuple[_Due, AttemptResult, asyncio.Future[None]]] = []
        self._logging: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Finish logging the attempts made; close the HTTP client unless it was given."""
        if self._logging is not None:
            await asyncio.gather(self._logging, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    async def deliver_due(self, limit: int = 100) -> int:
        """Attempt up to `limit` due deliveries, oldest first; how many were attempted."""
        async with self._round:
            due = await self._take_due(limit)
            gate = asyncio.Semaphore(self._settings.delivery_concurrency)

            async def deliver(delivery: _Due) -> None:
                async with gate:
                    result = await self._attempt(delivery)
                self._on_attempt(result)
                await self._record(delivery, result)

            # Every attempt is recorded even if recording another failed; then the first
            # failure is raised (a delivery left unrecorded stays due and is sent again).
            outcomes = await asyncio.gather(*map(deliver, due), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            return len(due)

    async def _take_due(self, limit: int) -> list[_Due]:
        async with self._writing:
            return await self._database.write(lambda c: self._due(c, limit))

    def _due(self, connection: Connection, limit: int) -> list[_Due]:
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
            _Due(
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

    def _signature(self, delivery: _Due, timestamp: datetime) -> str:
        secrets = [self._box.open(delivery.secret)]
        expires = delivery.previous_secret_expires_at
        if delivery.previous_secret is not None and expires is not None and expires > timestamp:
            # During a rotation receivers may still know only the old secret: sign with both.
            secrets.append(self._box.open(delivery.previous_secret))
        return " ".join(
            Webhook(secret).sign(delivery.message_id, timestamp, delivery.body)
            for secret in secrets
        )

    async def _attempt(self, delivery: _Due) -> AttemptResult:
        attempted_at = self._clock()
        started = time.monotonic()

        def failed(error: str, **answer: Any) -> AttemptResult:
            latency = round((time.monotonic() - started) * 1000)
            return AttemptResult(attempted_at, latency, error=_clean(error, _ERROR_CHARS), **answer)

        # The signed timestamp is whole seconds, as sent in webhook-timestamp.
        timestamp = attempted_at.replace(microsecond=0)
        try:
            # Checked again now: the name may point somewhere else than when subscribed.
            await check_target(delivery.url, self._allowed)
        except (TargetRefused, ValueError) as exc:  # ValueError: a name IDNA cannot encode
            return failed(f"not sent: {exc}")
        try:
            signature = self._signature(delivery, timestamp)
        except (ValueError, EmptyWebhookSecretError) as exc:
            return failed(f"not sent: the signing secret is unusable: {exc}")
        headers = {
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
            # Raw excerpts stay readable when the receiver does not compress.
            "accept-encoding": "identity",
            "user-agent": "community-services-notifier",
        }
        status: int | None = None
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange.
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "POST",
                    delivery.url,
                    content=delivery.body.encode(),
                    headers=headers,
                    follow_redirects=False,
                    timeout=self._timeout,
                ) as response:
                    status = response.status_code
                    excerpt = await _read_excerpt(response)
        except (TimeoutError, httpx.TimeoutException):
            return failed(f"no complete answer within {self._timeout:g} s", status=status)
        except Exception as exc:
            # Whatever else the exchange raises fails this attempt, not the round: a delivery
            # raising every time would otherwise be neither logged nor ever dead-lettered.
            return failed(_describe(exc), status=status)
        retry_after = response.headers.get("retry-after")
        if response.is_redirect:
            location = response.headers.get("location", "")
            return failed(
                f"answered {status} redirecting to {location!r}; redirects are not followed",
                status=status,
                excerpt=excerpt,
            )
        latency = round((time.monotonic() - started) * 1000)
        return AttemptResult(attempted_at, latency, status, None, excerpt, retry_after)

    async def _record(self, delivery: _Due, result: AttemptResult) -> None:
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
        self, batch: list[tuple[_Due, AttemptResult, asyncio.Future[None]]]
    ) -> None:
        def log_all(connection: Connection) -> None:
            for delivery, result, _ in batch:
                self._log(connection, delivery, result)

        try:
            await self._database.write(log_all)
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

    def _log(self, connection: Connection, delivery: _Due, result: AttemptResult) -> None:
        """Log one attempt and move its delivery (and perhaps its subscription) on."""
        now = self._clock()
        connection.execute(
            attempts.insert().values(
                delivery_id=delivery.id,
                attempted_at=result.attempted_at,
                status=result.status,
                error=result.error,
                latency_ms=result.latency_ms,
                response_excerpt=result.excerpt,
            )
        )
        count = delivery.attempts + 1
        this = deliveries.c.id == delivery.id
        pending = deliveries.c.state == "pending"
        outcome = result.outcome
        if outcome is Outcome.DELIVERED:
            # Arrived is arrived, even if the subscription was disabled meanwhile.
            connection.execute(
                update(deliveries)
                .where(this, deliveries.c.state.in_(("pending", "cancelled")))
                .values(state="delivered", attempts=count, next_attempt_at=None, finished_at=now)
            )
            connection.execute(
                update(subscriptions)
                .where(subscriptions.c.id == delivery.subscription_id)
                .values(failing_since=None)
            )
            return
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
        reason = _clean(reason, _REASON_CHARS)
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
