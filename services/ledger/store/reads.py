"""Reads of the feed, the references and the stream index, on SQLite or PostgreSQL.

The SQL is written once with `?` placeholders; the PostgreSQL variant swaps in `%s` and its
schema, and joins on the events table's `notification_id` where SQLite uses its `rowid`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from proto.actor import Actor, Role
from services.ledger.store.recorders import (
    FEED_TABLE,
    REFERENCES_TABLE,
    STREAM_FACTS,
    STREAMS_TABLE,
    TAGS_TABLE,
)


@dataclass(frozen=True)
class FeedRow:
    """A stored event with its dense position, record time and the actor who caused it."""

    position: int
    recorded_at: datetime
    caused_by: Actor
    event: StoredEvent


def _micros_to_datetime(micros: int) -> datetime:
    seconds, micro = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro)


def _datetime_to_micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class LedgerReads:
    """Queries over the ledger's own tables, beside the event store."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        events = recorder.events_table_name  # type: ignore[attr-defined]
        if isinstance(recorder, PostgresApplicationRecorder):
            schema = recorder.datastore.schema
            self._prefix = f'"{schema}".'
            self._events = f'"{schema}"."{events}"'
            self._event_key = "notification_id"
            self._placeholder = "%s"
            self._uuid_param: Any = lambda u: u
            self._convert_id: Any = lambda i: i
        elif isinstance(recorder, SQLiteApplicationRecorder):
            self._prefix = ""
            self._events = events
            self._event_key = "rowid"
            self._placeholder = "?"
            self._uuid_param = lambda u: u.hex
            self._convert_id = recorder.convert_originator_id
        else:
            raise TypeError(f"no ledger reads for {type(recorder).__name__}")
        self._datastore = recorder.datastore

    def _table(self, name: str) -> str:
        return self._prefix + name

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._datastore.transaction(commit=False) as cursor:
            yield cursor

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._cursor() as cursor:
            cursor.execute(sql.replace("?", self._placeholder), list(params))
            return list(cursor.fetchall())

    def _feed_select(self) -> str:
        return (
            "SELECT f.position, f.recorded_at, f.actor_role, f.actor_organization, "
            "f.actor_subject, e.originator_id, e.originator_version, "
            f"e.topic, e.state FROM {self._table(FEED_TABLE)} f "
            f"JOIN {self._events} e ON e.{self._event_key} = f.notification_id "
        )

    def _feed_row(self, row: Any) -> FeedRow:
        return FeedRow(
            position=row["position"],
            recorded_at=_micros_to_datetime(row["recorded_at"]),
            caused_by=Actor(
                role=Role(row["actor_role"]),
                organization_id=UUID(row["actor_organization"]),
                subject=row["actor_subject"],
            ),
            event=StoredEvent(
                originator_id=self._convert_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            ),
        )

    # --- the feed -------------------------------------------------------------------------

    def head(self) -> int:
        """The last position stored, 0 when the ledger is empty."""
        rows = self._rows(
            f"SELECT position FROM {self._table(FEED_TABLE)} ORDER BY position DESC LIMIT 1"
        )
        return int(rows[0]["position"]) if rows else 0

    def feed(self, after: int, limit: int) -> list[FeedRow]:
        """Entries after a position, in order."""
        rows = self._rows(
            self._feed_select() + "WHERE f.position > ? ORDER BY f.position LIMIT ?",
            (after, limit),
        )
        return [self._feed_row(r) for r in rows]

    def stream(self, stream_id: UUID) -> list[FeedRow]:
        """One stream's entries, in version order."""
        rows = self._rows(
            self._feed_select() + "WHERE e.originator_id = ? ORDER BY e.originator_version",
            (self._uuid_param(stream_id),),
        )
        return [self._feed_row(r) for r in rows]

    def position_known_at(self, moment: datetime) -> int:
        """The last position recorded at or before a moment (record times never decrease)."""
        rows = self._rows(
            f"SELECT position FROM {self._table(FEED_TABLE)} WHERE recorded_at <= ? "
            "ORDER BY position DESC LIMIT 1",
            (_datetime_to_micros(moment),),
        )
        return int(rows[0]["position"]) if rows else 0

    def stream_version_at(self, stream_id: UUID, position: int) -> int | None:
        """The version a stream had reached when the feed stood at a position."""
        rows = self._rows(
            f"SELECT MAX(e.originator_version) AS version FROM {self._table(FEED_TABLE)} f "
            f"JOIN {self._events} e ON e.{self._event_key} = f.notification_id "
            "WHERE e.originator_id = ? AND f.position <= ?",
            (self._uuid_param(stream_id), position),
        )
        version = rows[0]["version"] if rows else None
        return int(version) if version is not None else None

    # --- references and the stream index ---------------------------------------------------

    def referenced_stream(self, scope: str, reference: str) -> UUID | None:
        """The stream a caller's reference was claimed for, if any."""
        rows = self._rows(
            f"SELECT stream_id FROM {self._table(REFERENCES_TABLE)} "
            "WHERE scope = ? AND reference = ?",
            (scope, reference),
        )
        return UUID(rows[0]["stream_id"]) if rows else None

    def streams(
        self,
        stream_type: str,
        facts: dict[str, str | int],
        after: int,
        limit: int,
        tags: Sequence[str] = (),
    ) -> list[tuple[int, UUID]]:
        """(cursor, stream id) of streams of a type with every given fact and tag, oldest first."""
        unknown = set(facts) - set(STREAM_FACTS)
        if unknown:
            raise ValueError(f"not an indexed fact: {sorted(unknown)}")
        where = "".join(f" AND {name} = ?" for name in facts)
        where += (
            f" AND stream_id IN (SELECT stream_id FROM {self._table(TAGS_TABLE)} WHERE tag = ?)"
            * len(tags)
        )
        rows = self._rows(
            f"SELECT seq, stream_id FROM {self._table(STREAMS_TABLE)} "
            f"WHERE stream_type = ? AND seq > ?{where} ORDER BY seq LIMIT ?",
            (stream_type, after, *facts.values(), *tags, limit),
        )
        return [(int(r["seq"]), UUID(r["stream_id"])) for r in rows]
