"""The notifier's use cases: subscriptions, their secrets, their deliveries and re-sending.

Finance bureaus and services subscribe; a subscription belongs to the caller's organization, and
another organization's is answered as missing. Auditors read every subscription, delivery and
attempt, and write nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from proto.actor import Actor, Role
from services.common.errors import NotFound, RuleViolation
from services.common.permissions import require_role
from services.notifier.secrets import SecretBox, new_secret
from services.notifier.settings import NotifierSettings
from services.notifier.store.tables import attempts, deliveries, messages, subscriptions
from services.notifier.targets import AllowList, check_target

# The roles that may read the whole ledger feed may have it pushed to them.
WRITERS = frozenset({Role.FINANCE, Role.SERVICE})
READERS = WRITERS | {Role.AUDITOR}
State = Literal["active", "disabled"]
DeliveryState = Literal["pending", "delivered", "dead", "cancelled"]
CHANGEABLE = frozenset(
    {"url", "event_types", "organization_id", "budget_id", "description", "state"}
)


@dataclass(frozen=True)
class Subscription:
    """A subscription as callers see it: never its secrets."""

    id: UUID
    owner_role: str
    owner_organization_id: UUID
    owner_subject: str
    url: str
    description: str
    event_types: list[str]
    organization_id: UUID | None
    budget_id: UUID | None
    state: State
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Delivery:
    """One message for one subscription, where it stands."""

    id: UUID
    subscription_id: UUID
    webhook_id: str
    event_type: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    body: str


@dataclass(frozen=True)
class Attempt:
    """One try at delivering: what answered, or why nothing did."""

    attempted_at: datetime
    status: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None


def _optional_uuid(value: str | None) -> UUID | None:
    return None if value is None else UUID(value)


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=UUID(row.id),
        owner_role=row.owner_role,
        owner_organization_id=UUID(row.owner_organization),
        owner_subject=row.owner_subject,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        organization_id=_optional_uuid(row.organization_id),
        budget_id=_optional_uuid(row.budget_id),
        state=row.state,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=UUID(row.id),
        subscription_id=UUID(row.subscription_id),
        webhook_id=row.message_id,
        event_type=row.event_type,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        finished_at=row.finished_at,
        body=row.body,
    )


def _deliveries() -> Select[Any]:
    columns = (*deliveries.c, messages.c.event_type, messages.c.body)
    return select(*columns).join(messages, messages.c.id == deliveries.c.message_id)


class Subscriptions:
    """Subscriptions and their deliveries in the notifier's database."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: NotifierSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._box = SecretBox(settings.encryption_key.get_secret_value())
        self._allowed = AllowList.parse(settings.allowed_targets)
        self._overlap = timedelta(seconds=settings.secret_overlap_seconds)
        self._clock = clock

    # --- subscriptions ------------------------------------------------------------------------

    async def create(
        self,
        *,
        url: str,
        event_types: Sequence[str],
        organization_id: UUID | None,
        budget_id: UUID | None,
        description: str,
        by: Actor,
    ) -> tuple[Subscription, str]:
        """A new active subscription and its secret, which is never shown again."""
        require_role(by, WRITERS, "subscribe to webhooks")
        await self._check_target(url)
        secret, subscription_id, now = new_secret(), str(uuid.uuid4()), self._clock()
        values = {
            "id": subscription_id,
            "owner_role": by.role.value,
            "owner_organization": str(by.organization_id),
            "owner_subject": by.subject,
            "url": url,
            "description": description,
            "event_types": list(event_types),
            "organization_id": None if organization_id is None else str(organization_id),
            "budget_id": None if budget_id is None else str(budget_id),
            "state": "active",
            "secret": self._box.seal(secret),
            "created_at": now,
            "updated_at": now,
        }
        async with self._engine.begin() as connection:
            await connection.execute(subscriptions.insert().values(**values))
            row = await self._row(connection, subscription_id, by)
        return _subscription(row), secret

    async def find(
        self, *, by: Actor, limit: int, cursor: int
    ) -> tuple[list[Subscription], int | None]:
        """The caller's organization's subscriptions (for an auditor, all), oldest first; and
        the offset of the next page, None at the end."""
        require_role(by, READERS, "read webhook subscriptions")
        query = select(subscriptions)
        if by.role != Role.AUDITOR:
            query = query.where(subscriptions.c.owner_organization == str(by.organization_id))
        query = query.order_by(subscriptions.c.created_at, subscriptions.c.id)
        async with self._engine.connect() as connection:
            rows = list(await connection.execute(query.offset(cursor).limit(limit + 1)))
        more = len(rows) > limit
        return [_subscription(r) for r in rows[:limit]], cursor + limit if more else None

    async def get(self, subscription_id: UUID, *, by: Actor) -> Subscription:
        """One subscription the caller may see."""
        require_role(by, READERS, "read webhook subscriptions")
        async with self._engine.connect() as connection:
            return _subscription(await self._row(connection, str(subscription_id), by))

    async def update(
        self, subscription_id: UUID, changes: Mapping[str, Any], *, by: Actor
    ) -> Subscription:
        """Set what `changes` names (of CHANGEABLE); re-enabling clears the failures."""
        require_role(by, WRITERS, "change webhook subscriptions")
        if unknown := set(changes) - CHANGEABLE:
            raise ValueError(f"subscriptions have no changeable {', '.join(sorted(unknown))}")
        if "url" in changes:
            async with self._engine.connect() as connection:
                await self._row(connection, str(subscription_id), by)
            await self._check_target(changes["url"])
        values = {k: str(v) if isinstance(v, UUID) else v for k, v in changes.items()}
        state = values.pop("state", None)
        async with self._engine.begin() as connection:
            row = await self._row(connection, str(subscription_id), by, lock=True)
            if state == "active" and row.state != "active":
                values.update(state="active", failing_since=None, disabled_reason=None)
            elif state == "disabled" and row.state != "disabled":
                reason = f"disabled by {by.subject} ({by.role})"
                values.update(state="disabled", disabled_reason=reason[:500])
                await self._cancel_pending(connection, row.id)
            await connection.execute(
                subscriptions.update()
                .where(subscriptions.c.id == row.id)
                .values(**values, updated_at=self._clock())
            )
            return _subscription(await self._row(connection, row.id, by))

    async def delete(self, subscription_id: UUID, *, by: Actor) -> None:
        """Remove a subscription; what it still had to deliver is cancelled, the log kept."""
        require_role(by, WRITERS, "delete webhook subscriptions")
        async with self._engine.begin() as connection:
            row = await self._row(connection, str(subscription_id), by, lock=True)
            await self._cancel_pending(connection, row.id)
            await connection.execute(subscriptions.delete().where(subscriptions.c.id == row.id))

    async def rotate_secret(self, subscription_id: UUID, *, by: Actor) -> tuple[Subscription, str]:
        """A new secret, shown once; the current one keeps signing too for the overlap period."""
        require_role(by, WRITERS, "rotate webhook secrets")
        secret = new_secret()
        now = self._clock()
        async with self._engine.begin() as connection:
            row = await self._row(connection, str(subscription_id), by, lock=True)
            await connection.execute(
                subscriptions.update()
                .where(subscriptions.c.id == row.id)
                .values(
                    secret=self._box.seal(secret),
                    previous_secret=row.secret,
                    previous_secret_expires_at=now + self._overlap,
                    updated_at=now,
                )
            )
            return _subscription(await self._row(connection, row.id, by)), secret

    # --- deliveries ---------------------------------------------------------------------------

    async def list_deliveries(
        self,
        subscription_id: UUID,
        *,
        state: DeliveryState | None,
        since: datetime | None,
        by: Actor,
        limit: int,
        cursor: int,
    ) -> tuple[list[Delivery], int | None]:
        """A subscription's deliveries, oldest first, by state and made at or after `since`."""
        require_role(by, READERS, "read webhook deliveries")
        async with self._engine.connect() as connection:
            row = await self._row(connection, str(subscription_id), by)
            query = _deliveries().where(deliveries.c.subscription_id == row.id)
            if state is not None:
                query = query.where(deliveries.c.state == state)
            if since is not None:
                query = query.where(deliveries.c.created_at >= since)
            query = query.order_by(deliveries.c.created_at, deliveries.c.id)
            rows = list(await connection.execute(query.offset(cursor).limit(limit + 1)))
        more = len(rows) > limit
        return [_delivery(r) for r in rows[:limit]], cursor + limit if more else None

    async def get_delivery(self, delivery_id: UUID, *, by: Actor) -> Delivery:
        """One delivery of a subscription the caller may see."""
        require_role(by, READERS, "read webhook deliveries")
        async with self._engine.connect() as connection:
            _, row = await self._delivery_row(connection, delivery_id, by)
        return _delivery(row)

    async def list_attempts(
        self, delivery_id: UUID, *, by: Actor, limit: int, cursor: int
    ) -> tuple[list[Attempt], int | None]:
        """A delivery's attempts, oldest first, every one since it was first queued."""
        require_role(by, READERS, "read webhook delivery attempts")
        async with self._engine.connect() as connection:
            await self._delivery_row(connection, delivery_id, by)
            query = (
                select(attempts)
                .where(attempts.c.delivery_id == str(delivery_id))
                .order_by(attempts.c.attempted_at, attempts.c.id)
            )
            rows = list(await connection.execute(query.offset(cursor).limit(limit + 1)))
        more = len(rows) > limit
        found = [
            Attempt(r.attempted_at, r.status, r.error, r.latency_ms, r.response_excerpt)
            for r in rows[:limit]
        ]
        return found, cursor + limit if more else None

    async def resend(self, delivery_id: UUID, *, by: Actor) -> Delivery:
        """Queue a dead delivery again, due now, with a fresh retry schedule."""
        require_role(by, WRITERS, "re-send webhooks")
        async with self._engine.begin() as connection:
            subscription, row = await self._delivery_row(connection, delivery_id, by, lock=True)
            self._require_active(subscription)
            if row.state != "dead":
                raise RuleViolation(
                    f"delivery {delivery_id} is {row.state}: only a dead delivery can be re-sent"
                )
            await self._requeue(connection, [row.id])
            _, row = await self._delivery_row(connection, delivery_id, by)
        return _delivery(row)

    async def resend_since(self, subscription_id: UUID, since: datetime, *, by: Actor) -> int:
        """Queue again every dead delivery of a subscription made at or after `since`; how many."""
        require_role(by, WRITERS, "re-send webhooks")
        async with self._engine.begin() as connection:
            row = await self._row(connection, str(subscription_id), by, lock=True)
            self._require_active(row)
            found = await connection.execute(
                select(deliveries.c.id)
                .where(
                    deliveries.c.subscription_id == row.id,
                    deliveries.c.state == "dead",
                    deliveries.c.created_at >= since,
                )
                .with_for_update()
            )
            ids = [r.id for r in found]
            await self._requeue(connection, ids)
        return len(ids)

    # --- helpers ------------------------------------------------------------------------------

    async def _check_target(self, url: str) -> None:
        await check_target(url, self._allowed)

    async def _cancel_pending(self, connection: AsyncConnection, subscription_id: str) -> None:
        await connection.execute(
            deliveries.update()
            .where(deliveries.c.subscription_id == subscription_id, deliveries.c.state == "pending")
            .values(state="cancelled", next_attempt_at=None, finished_at=self._clock())
        )

    async def _requeue(self, connection: AsyncConnection, ids: Sequence[str]) -> None:
        if not ids:
            return
        await connection.execute(
            deliveries.update()
            .where(deliveries.c.id.in_(ids), deliveries.c.state == "dead")
            .values(state="pending", attempts=0, next_attempt_at=self._clock(), finished_at=None)
        )

    @staticmethod
    def _require_active(row: Any) -> None:
        if row.state != "active":
            raise RuleViolation(
                f"subscription {row.id} is disabled ({row.disabled_reason}): re-enable it "
                '(PATCH {"state": "active"}) before re-sending to it'
            )

    @staticmethod
    async def _row(
        connection: AsyncConnection, subscription_id: str, by: Actor, *, lock: bool = False
    ) -> Any:
        """The subscription's row, if the caller may see it; NotFound otherwise."""
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        if by.role != Role.AUDITOR:
            query = query.where(subscriptions.c.owner_organization == str(by.organization_id))
        row = (await connection.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            raise NotFound(f"no webhook subscription {subscription_id}")
        return row

    async def _delivery_row(
        self, connection: AsyncConnection, delivery_id: UUID, by: Actor, *, lock: bool = False
    ) -> tuple[Any, Any]:
        """The delivery's subscription and row, if the caller may see it; NotFound otherwise."""
        missing = NotFound(f"no webhook delivery {delivery_id}")
        owner = select(deliveries.c.subscription_id).where(deliveries.c.id == str(delivery_id))
        found = (await connection.execute(owner)).first()
        if found is None:
            raise missing
        try:
            subscription = await self._row(connection, found.subscription_id, by, lock=lock)
        except NotFound:
            raise missing from None
        query = _deliveries().where(deliveries.c.id == str(delivery_id))
        row = await connection.execute(query.with_for_update(of=deliveries) if lock else query)
        delivery = row.first()
        if delivery is None:
            raise missing
        return subscription, delivery
