"""Event recorders that keep the ledger's own tables (services/ledger/store/tables.py) in the
same transaction as the events, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor, Rollback
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from proto.actor import Actor
from services.ledger.store.entries import KEPT_ENTRY, WRITTEN_IN, event_digest
from services.ledger.store.group_commit import GroupCommitting, NotificationIds, Write
from services.ledger.store.tables import (
    CHECKPOINTS_TABLE,
    ENTRIES_TABLE,
    FEED_COLUMNS,
    FEED_TABLE,
    FLOW_INDEXES,
    FLOW_TABLES,
    LEAVES_TABLE,
    READ_MODELS_TABLE,
    REFERENCES_TABLE,
    STREAM_COLUMNS,
    STREAM_FACTS,
    STREAMS_TABLE,
    TAGS_TABLE,
)


@dataclass(frozen=True)
class ReferenceClaim:
    """A caller's reference, claimed for a stream within a scope (e.g. a payment's treasury id)."""

    scope: str
    reference: str
    stream_id: UUID


@dataclass(frozen=True)
class StreamEntry:
    """A new stream, with the facts lists filter on."""

    stream_id: UUID
    stream_type: str
    facts: dict[str, str | int | None]
    tags: Sequence[str] = ()


def _now_us() -> int:
    return time.time_ns() // 1000


def _caller(caused_by: Actor | None) -> tuple[str, str, str]:
    if caused_by is None:
        # Every write names its caller: an event nobody answers for must not be stored.
        raise ValueError("events are saved only with the actor who caused them")
    return (caused_by.role.value, str(caused_by.organization_id), caused_by.subject)


def _reference_rows(references: Sequence[ReferenceClaim]) -> list[tuple[str, str, str]]:
    return [(r.scope, r.reference, str(r.stream_id)) for r in references]


def _stream_rows(streams: Sequence[StreamEntry]) -> list[tuple[Any, ...]]:
    return [
        (str(s.stream_id), s.stream_type, *(s.facts.get(name) for name in STREAM_FACTS))
        for s in streams
    ]


def _tag_rows(streams: Sequence[StreamEntry]) -> list[tuple[str, str]]:
    return [(tag, str(s.stream_id)) for s in streams for tag in s.tags]


EntryRow = tuple[int, bytes, str]


def _entry_rows(
    ids: Sequence[int], events: Sequence[StoredEvent], entries: Sequence[str] | None
) -> list[EntryRow]:
    # A write saved without entries (by a tool below the application) is served computed.
    if entries is None:
        return []
    return [
        (nid, event_digest(event), body)
        for nid, event, body in zip(ids, events, entries, strict=True)
    ]


def _binary_parameters(statement: Composed) -> Composed:
    """The library's statement with its parameters sent in binary (`%b` for `%s`): its array of
    stored events costs about 30 µs an event to write as text, and 6 in binary."""
    return Composed(
        [
            SQL(part.as_string().replace("%s", "%b")) if isinstance(part, SQL) else part
            for part in statement
        ]
    )


def _per_write(ids: Sequence[int], writes: Sequence[Write]) -> list[list[int]]:
    """A batch's notification ids, cut back into each write's own, in order."""
    cut: list[list[int]] = []
    start = 0
    for stored, _ in writes:
        cut.append(list(ids[start : start + len(stored)]))
        start += len(stored)
    return cut


class SQLiteLedgerRecorder(GroupCommitting, SQLiteApplicationRecorder):
    """SQLite recorder keeping the feed, references and stream index with the events."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {FEED_TABLE} ("
            "position INTEGER PRIMARY KEY, "
            "notification_id INTEGER NOT NULL UNIQUE, "
            "recorded_at INTEGER NOT NULL, "
            "actor_role TEXT NOT NULL, actor_organization TEXT NOT NULL, "
            "actor_subject TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {ENTRIES_TABLE} ("
            "notification_id INTEGER PRIMARY KEY, digest BLOB NOT NULL, body TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {REFERENCES_TABLE} ("
            "scope TEXT NOT NULL, reference TEXT NOT NULL, stream_id TEXT NOT NULL, "
            "PRIMARY KEY (scope, reference))",
            f"CREATE TABLE IF NOT EXISTS {STREAMS_TABLE} ("
            "seq INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL UNIQUE, "
            "stream_type TEXT NOT NULL, year INTEGER, purpose TEXT, budget_id TEXT, "
            "purchaser_id TEXT, implementer_id TEXT, provider_id TEXT)",
            f"CREATE TABLE IF NOT EXISTS {TAGS_TABLE} ("
            "tag TEXT NOT NULL, stream_id TEXT NOT NULL, PRIMARY KEY (tag, stream_id))",
            f"CREATE TABLE IF NOT EXISTS {LEAVES_TABLE} ("
            "position INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} ("
            "tree_size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, "
            "taken_at INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {READ_MODELS_TABLE} ("
            "name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
            *(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                + columns.format(integer="INTEGER", text="TEXT")
                + ")"
                for table, columns in FLOW_TABLES
            ),
            *(
                f"CREATE INDEX IF NOT EXISTS {table}_{suffix} ON {table} ({columns})"
                for table, suffix, columns in FLOW_INDEXES
            ),
        ]

    def _insert_together(self, writes: Sequence[Write]) -> list[NotificationIds]:
        with self.datastore.transaction(commit=True) as c:
            return [self._insert_events(c, events, **kwargs) for events, kwargs in writes]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        references: Sequence[ReferenceClaim] = (),
        streams: Sequence[StreamEntry] = (),
        caused_by: Actor | None = None,
        entries: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        caller = _caller(caused_by)
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        assert notification_ids is not None
        if references:
            c.executemany(
                f"INSERT INTO {REFERENCES_TABLE} (scope, reference, stream_id) VALUES (?, ?, ?)",
                _reference_rows(references),
            )
        if streams:
            marks = ", ".join("?" * (2 + len(STREAM_FACTS)))
            c.executemany(
                f"INSERT INTO {STREAMS_TABLE} ({STREAM_COLUMNS}) VALUES ({marks})",
                _stream_rows(streams),
            )
            c.executemany(
                f"INSERT INTO {TAGS_TABLE} (tag, stream_id) VALUES (?, ?)", _tag_rows(streams)
            )
        # The insert above took SQLite's write lock, so no other writer can interleave here.
        c.execute(f"SELECT position, recorded_at FROM {FEED_TABLE} ORDER BY position DESC LIMIT 1")
        last = c.fetchone()
        position, recorded_at = (last[0], last[1]) if last else (0, 0)
        recorded_at = max(_now_us(), recorded_at)
        c.executemany(
            f"INSERT INTO {FEED_TABLE} ({FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (position + i, nid, recorded_at, *caller)
                for i, nid in enumerate(notification_ids, 1)
            ],
        )
        c.executemany(
            f"INSERT INTO {ENTRIES_TABLE} (notification_id, digest, body) VALUES (?, ?, ?)",
            _entry_rows(notification_ids, stored_events, entries),
        )
        return notification_ids


class PostgresLedgerRecorder(GroupCommitting, PostgresApplicationRecorder):
    """PostgreSQL recorder keeping the feed, references and stream index with the events."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(datastore.schema)
        feed, refs, streams, tags, leaves, checkpoints = (
            Identifier(FEED_TABLE),
            Identifier(REFERENCES_TABLE),
            Identifier(STREAMS_TABLE),
            Identifier(TAGS_TABLE),
            Identifier(LEAVES_TABLE),
            Identifier(CHECKPOINTS_TABLE),
        )
        entries = Identifier(ENTRIES_TABLE)
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "position bigint PRIMARY KEY, "
                    "notification_id bigint NOT NULL UNIQUE, "
                    "recorded_at bigint NOT NULL, "
                    "actor_role text NOT NULL, actor_organization text NOT NULL, "
                    "actor_subject text NOT NULL)"
                ).format(schema, feed),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "notification_id bigint PRIMARY KEY, digest bytea NOT NULL, "
                    "body text, line text, line_digest bytea, written_in xid)"
                ).format(schema, entries),
                # Made by a release before lines were.
                _added_once(
                    datastore.schema,
                    ENTRIES_TABLE,
                    "line",
                    "ADD COLUMN line text, ADD COLUMN line_digest bytea, "
                    "ALTER COLUMN body DROP NOT NULL",
                ),
                # Made by a release before lines were written in their events' transactions.
                _added_once(
                    datastore.schema, ENTRIES_TABLE, "written_in", "ADD COLUMN written_in xid"
                ),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "scope text NOT NULL, reference text NOT NULL, stream_id text NOT NULL, "
                    "PRIMARY KEY (scope, reference))"
                ).format(schema, refs),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "seq bigserial PRIMARY KEY, stream_id text NOT NULL UNIQUE, "
                    "stream_type text NOT NULL, year integer, purpose text, budget_id text, "
                    "purchaser_id text, implementer_id text, provider_id text)"
                ).format(schema, streams),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "tag text NOT NULL, stream_id text NOT NULL, PRIMARY KEY (tag, stream_id))"
                ).format(schema, tags),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "position bigint PRIMARY KEY, leaf_hash bytea NOT NULL)"
                ).format(schema, leaves),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "tree_size bigint PRIMARY KEY, root_hash bytea NOT NULL, "
                    "taken_at bigint NOT NULL, public_key bytea NOT NULL, "
                    "signature bytea NOT NULL)"
                ).format(schema, checkpoints),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "name text PRIMARY KEY, position bigint NOT NULL)"
                ).format(schema, Identifier(READ_MODELS_TABLE)),
                *(
                    SQL("CREATE TABLE IF NOT EXISTS {}.{} (" + columns + ")").format(
                        schema, Identifier(table), integer=SQL("bigint"), text=SQL("text")
                    )
                    for table, columns in FLOW_TABLES
                ),
                *(
                    SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} (" + columns + ")").format(
                        Identifier(f"{table}_{suffix}"), schema, Identifier(table)
                    )
                    for table, suffix, columns in FLOW_INDEXES
                ),
            ]
        )
        self.insert_events_statement = _binary_parameters(self.insert_events_statement)
        self._insert_tags = SQL("INSERT INTO {}.{} (tag, stream_id) VALUES (%s, %s)").format(
            schema, tags
        )
        self._insert_references = SQL(
            "INSERT INTO {}.{} (scope, reference, stream_id) VALUES (%s, %s, %s)"
        ).format(schema, refs)
        self._insert_streams = SQL("INSERT INTO {}.{} (" + STREAM_COLUMNS + ") VALUES ({})").format(
            schema, streams, SQL(", ").join([SQL("%s")] * (2 + len(STREAM_FACTS)))
        )
        # Arrays are sent in binary: in text, psycopg escapes every element with a regular
        # expression, about 45 µs for an entry's JSON body (a third of seeding's time).
        # Runs after the library took its EXCLUSIVE lock on the events table, which serializes
        # writers: reading the last position and appending after it cannot race.
        self._append_feed = SQL(
            "WITH last AS ("
            "  SELECT position, recorded_at FROM {0}.{1} ORDER BY position DESC LIMIT 1) "
            "INSERT INTO {0}.{1} (" + FEED_COLUMNS + ") "
            "SELECT COALESCE((SELECT position FROM last), 0) + t.ord, t.nid, "
            "       GREATEST(%s, COALESCE((SELECT recorded_at FROM last), 0)), "
            "       t.role, t.organization, t.subject "
            "FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[]) "
            "     WITH ORDINALITY AS t(nid, role, organization, subject, ord)"
        ).format(schema, feed)
        # Each entry's line is written here, once, from its body and the feed row just added,
        # and kept in place of the body, with the transaction that wrote all three.
        self._insert_entries = (
            SQL(
                "INSERT INTO {}.{} (notification_id, digest, body, line, line_digest, written_in) "
            ).format(schema, entries)
            + SQL(f"SELECT b.notification_id, b.digest, {KEPT_ENTRY}, {WRITTEN_IN} ")
            + SQL(
                "FROM unnest(%b::bigint[], %b::bytea[], %b::text[]) "
                "AS b(notification_id, digest, body) "
                "JOIN {0}.{1} f ON f.notification_id = b.notification_id "
                "JOIN {0}.{2} e ON e.notification_id = b.notification_id"
            ).format(schema, feed, Identifier(self.events_table_name))
        )

    def _append_feed_rows(
        self, curs: Cursor[DictRow], ids: Sequence[int], callers: Sequence[tuple[str, str, str]]
    ) -> None:
        # Runs after the library took its EXCLUSIVE lock on the events table, which serializes
        # writers: reading the last position and appending after it cannot race.
        roles, organizations, subjects = (list(column) for column in zip(*callers, strict=True))
        curs.execute(self._append_feed, (_now_us(), list(ids), roles, organizations, subjects))

    def _keep_entries(self, curs: Cursor[DictRow], rows: Sequence[EntryRow]) -> None:
        if rows:
            ids, digests, bodies = (list(column) for column in zip(*rows, strict=True))
            curs.execute(self._insert_entries, (ids, digests, bodies))

    def _insert_index_rows(
        self,
        curs: Cursor[DictRow],
        references: Sequence[ReferenceClaim],
        streams: Sequence[StreamEntry],
    ) -> None:
        if references:
            curs.executemany(self._insert_references, _reference_rows(references))
        if streams:
            curs.executemany(self._insert_streams, _stream_rows(streams))
            if any(s.tags for s in streams):
                curs.executemany(self._insert_tags, _tag_rows(streams))

    def _insert_together(self, writes: Sequence[Write]) -> list[NotificationIds]:
        # The library's insert_events, for many writes in one transaction and about as many
        # round trips as one write: each kind of row goes in one statement for the batch.
        events = [event for stored, _ in writes for event in stored]
        callers = [_caller(kwargs.get("caused_by")) for stored, kwargs in writes for _ in stored]
        references = [r for _, kwargs in writes for r in kwargs.get("references", ())]
        streams = [s for _, kwargs in writes for s in kwargs.get("streams", ())]
        per_write: list[list[int]] = []
        failed: Exception | None = None
        with self.datastore.get_connection() as conn:
            with conn.pipeline() as pipeline, conn.transaction():
                try:
                    with conn.cursor() as curs:
                        self._insert_index_rows(curs, references, streams)
                    with conn.cursor() as curs:
                        self._insert_stored_events(curs, events)
                        pipeline.sync()
                        ids = [row["notification_id"] for row in curs.fetchall()]
                        self._append_feed_rows(curs, ids, callers)
                        per_write = _per_write(ids, writes)
                        self._keep_entries(
                            curs,
                            [
                                row
                                for own, (stored, kwargs) in zip(per_write, writes, strict=True)
                                for row in _entry_rows(own, stored, kwargs.get("entries"))
                            ],
                        )
                except Exception as error:
                    # Rolled back whatever it was, and raised once the pipeline has closed.
                    failed = error
                    raise Rollback from None
            if failed is not None:
                raise failed
        return list(per_write)

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        references: Sequence[ReferenceClaim] = (),
        streams: Sequence[StreamEntry] = (),
        caused_by: Actor | None = None,
        **kwargs: Any,
    ) -> None:
        _caller(caused_by)  # refused before anything is written
        super()._insert_events(curs, stored_events, **kwargs)
        self._insert_index_rows(curs, references, streams)

    def _fetch_ids_after_insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        caused_by: Actor | None = None,
        entries: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if notification_ids:
            caller = _caller(caused_by)
            self._append_feed_rows(curs, notification_ids, [caller] * len(notification_ids))
            self._keep_entries(curs, _entry_rows(notification_ids, stored_events, entries))
        return notification_ids


def _added_once(schema: str, table: str, column: str, alteration: str) -> Composed:
    """`ALTER TABLE … alteration` where the table lacks `column`, which the alteration adds:
    run at every start, it takes the table's lock only the first time."""
    return SQL(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM information_schema.columns "
        "WHERE table_schema = {} AND table_name = {} AND column_name = {}) "
        "THEN ALTER TABLE {}.{} " + alteration + "; END IF; END $$"
    ).format(
        Literal(schema), Literal(table), Literal(column), Identifier(schema), Identifier(table)
    )
