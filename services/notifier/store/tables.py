"""The notifier's tables: subscriptions, where it is in each feed, and what it must deliver.

A message is one event (or alert) to send, made once however many subscriptions want it; a
delivery is one message for one subscription, with its attempts. Messages, deliveries and the
feed position they came from are written in one transaction, so a crash never skips an event
nor queues one twice (deliveries are unique per subscription and message).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.common.idempotency import idempotency_keys
from services.common.sql import UTCDateTime

metadata = MetaData()

subscriptions = Table(
    "notifier_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    # Who made it: only callers of the same organization manage it.
    Column("owner_role", String(32), nullable=False),
    Column("owner_organization", String(36), nullable=False),
    Column("owner_subject", String(255), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(500), nullable=False, default=""),
    # Patterns such as "payment.*" or "alert.*"; "*" is everything.
    Column("event_types", JSON, nullable=False),
    # Optional filters: only events naming this organization, or this budget.
    Column("organization_id", String(36)),
    Column("budget_id", String(36)),
    Column("state", String(16), nullable=False),  # active | disabled
    Column("disabled_reason", String(500)),
    # Signing secrets, encrypted at rest; the previous one signs too until it expires.
    Column("secret", LargeBinary, nullable=False),
    Column("previous_secret", LargeBinary),
    Column("previous_secret_expires_at", UTCDateTime),
    # When the current run of failures began (null after any success).
    Column("failing_since", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

feed_positions = Table(
    "notifier_feed_positions",
    metadata,
    Column("feed", String(32), primary_key=True),  # ledger | catalog
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

leases = Table(
    "notifier_leases",
    metadata,
    # One row per right that only one process may hold at a time (following and delivering).
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

messages = Table(
    "notifier_messages",
    metadata,
    # "msg_" + a name derived from the source (feed, position, type): the same on every replay,
    # so it is the `webhook-id` receivers de-duplicate on.
    Column("id", String(64), primary_key=True),
    Column("feed", String(32), nullable=False),  # ledger | catalog | notifier
    Column("position", BigInteger, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON sent and signed
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("feed", "position", "event_type", name="uq_notifier_messages_source"),
)

deliveries = Table(
    "notifier_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subscription_id", String(36), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | dead | cancelled
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    UniqueConstraint("subscription_id", "message_id", name="uq_notifier_deliveries_message"),
    Index("ix_notifier_deliveries_due", "state", "next_attempt_at"),
    Index("ix_notifier_deliveries_subscription", "subscription_id", "created_at"),
)

attempts = Table(
    "notifier_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("delivery_id", String(36), nullable=False, index=True),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status", Integer),  # the HTTP status; null when nothing answered
    Column("error", String(500)),  # why, when nothing answered (timeout, refused, …)
    Column("latency_ms", Integer, nullable=False),
    Column("response_excerpt", Text),  # the first characters of the answer
)

# Idempotency-Key answers live in the notifier's database too, under its migrations.
idempotency_keys.to_metadata(metadata)
