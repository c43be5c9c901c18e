"""Messages and who wants them: an event (or alert) queued once for every matching subscription."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from services.notifier.store.tables import deliveries, messages, subscriptions

# The namespace of message ids: the same source always gives the same `webhook-id`.
_MESSAGE_NAMESPACE = uuid.UUID("8f6d3c1e-2a4b-5c6d-8e9f-0a1b2c3d4e5f")


@dataclass(frozen=True)
class Message:
    """Something to deliver: a feed event or an alert derived from one.

    `organization_ids` and `budget_id` are what subscription filters match against.
    """

    feed: str
    position: int
    event_type: str
    timestamp: datetime
    data: dict[str, Any]
    organization_ids: frozenset[str] = frozenset()
    budget_id: str | None = None

    @property
    def id(self) -> str:
        """`msg_…`, derived from where the message came from, stable across replays."""
        name = f"{self.feed}:{self.position}:{self.event_type}"
        return "msg_" + uuid.uuid5(_MESSAGE_NAMESPACE, name).hex

    def body(self) -> str:
        """The JSON sent: Standard Webhooks' `type`, `timestamp` and `data`."""
        document = {
            "type": self.event_type,
            "timestamp": self.timestamp.isoformat(),
            "data": self.data,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Wanted:
    """What an active subscription asks for."""

    id: str
    event_types: tuple[str, ...]
    organization_id: str | None
    budget_id: str | None

    def wants(self, message: Message) -> bool:
        """Whether the message's type matches a pattern and it passes both filters."""
        return (
            any(type_matches(pattern, message.event_type) for pattern in self.event_types)
            and (self.organization_id is None or self.organization_id in message.organization_ids)
            and (self.budget_id is None or self.budget_id == message.budget_id)
        )


def type_matches(pattern: str, event_type: str) -> bool:
    """`*` matches everything; `payment.*` every type starting `payment.`; else exact."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def active_subscriptions(connection: Connection) -> list[Wanted]:
    """Every active subscription, as what it wants."""
    rows = connection.execute(
        select(
            subscriptions.c.id,
            subscriptions.c.event_types,
            subscriptions.c.organization_id,
            subscriptions.c.budget_id,
        ).where(subscriptions.c.state == "active")
    )
    return [Wanted(r.id, tuple(r.event_types), r.organization_id, r.budget_id) for r in rows]


def enqueue(
    connection: Connection,
    message: Message,
    wanted: Iterable[Wanted],
    now: datetime,
    *,
    exclude: Sequence[str] = (),
) -> int:
    """Store the message and a pending delivery per subscription that wants it; their count.

    Runs inside the caller's transaction, with the feed position it came from, so a message is
    queued exactly once. A message nobody wants is not stored.
    """
    targets = [w.id for w in wanted if w.id not in exclude and w.wants(message)]
    if not targets:
        return 0
    connection.execute(
        messages.insert().values(
            id=message.id,
            feed=message.feed,
            position=message.position,
            event_type=message.event_type,
            body=message.body(),
            created_at=now,
        )
    )
    connection.execute(
        deliveries.insert(),
        [
            {
                "id": str(uuid.uuid4()),
                "subscription_id": subscription_id,
                "message_id": message.id,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for subscription_id in targets
        ],
    )
    return len(targets)
