"""Stored changes as the wire shows them: in a record's history and in the feed."""

from __future__ import annotations

from proto.catalog import Change
from proto.feed import FeedEntry
from services.catalog.store.changes import StoredChange


def changes(stored: list[StoredChange]) -> list[Change]:
    """A record's versions."""
    return [
        Change(
            position=c.position,
            version=c.stream_version,
            event_type=c.event_type,
            occurred_at=c.occurred_at,
            recorded_at=c.recorded_at,
            record=c.record,
        )
        for c in stored
    ]


def feed_entry(change: StoredChange) -> FeedEntry:
    """A change as an entry of the catalog's feed: the same envelope as the ledger's."""
    return FeedEntry(
        position=change.position,
        stream_id=change.stream_id,
        stream_type=change.stream_type,
        stream_version=change.stream_version,
        event_type=change.event_type,
        occurred_at=change.occurred_at,
        recorded_at=change.recorded_at,
        caused_by=change.caused_by,
        payload=change.record,
    )
