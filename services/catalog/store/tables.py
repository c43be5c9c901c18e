"""The catalog's tables: every change, appended once (it is the feed), and each record's head."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from services.common.idempotency import idempotency_keys
from services.common.sql import UTCDateTime

metadata = MetaData()

changes = Table(
    "catalog_changes",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("stream_id", String(36), nullable=False),
    Column("stream_type", String(32), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # What lists filter on, as of this version; copied from the record so history filters too.
    Column("kind", String(32)),
    Column("parent_id", String(36)),
    Column("status", String(32)),
    # The caller's own code for the record (e.g. a unified social credit code), if any.
    Column("code", String(64)),
    Column("record", JSON, nullable=False),
    # Who caused the change, from the caller's verified token; empty only on changes recorded
    # before callers were authenticated (revision 0002 and earlier).
    Column("actor_role", String(32)),
    Column("actor_organization", String(36)),
    Column("actor_subject", String(255)),
    UniqueConstraint("stream_id", "stream_version", name="uq_catalog_changes_stream_version"),
    Index("ix_catalog_changes_type_occurred", "stream_type", "occurred_at"),
    Index("ix_catalog_changes_parent", "parent_id"),
    Index("ix_catalog_changes_type_code", "stream_type", "code"),
)

heads = Table(
    "catalog_heads",
    metadata,
    Column("stream_id", String(36), primary_key=True),
    Column("stream_type", String(32), nullable=False),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Index("ix_catalog_heads_type", "stream_type"),
)

# Idempotency-Key answers live in the catalog's database too, under its migrations (0004).
idempotency_keys.to_metadata(metadata)
