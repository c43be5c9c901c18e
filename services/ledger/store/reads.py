"""Reads of the feed, the references and the stream index, on SQLite or PostgreSQL, and the
verifiable log's leaf hashes and checkpoints (which its checkpointer also writes through here),
in the database's dialect (services/ledger/store/dialect.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format

from proto.actor import Actor, Role
from services.ledger.store.dialect import LedgerSql, datetime_to_micros, micros_to_datetime
from services.ledger.store.entries import (
    SERVED_LINE,
    event_digest,
    line_digest,
)
from services.ledger.store.tables import (
    CHECKPOINTS_TABLE,
    ENTRIES_TABLE,
    FEED_TABLE,
    LEAVES_TABLE,
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


@dataclass(frozen=True)
class EntryRow:
    """A feed row with its entry as kept with its event, if what it was made from is still as
    stored: its whole line, or its JSON body; else with its stored event, to compute it from."""

    position: int
    recorded_at: datetime
    caused_by: Actor
    line: str | None
    body: str | None
    stored: FeedRow | None


@dataclass(frozen=True)
class CheckpointRow:
    """A signed tree head as stored: the Merkle tree of the feed's first `tree_size` entries."""

    tree_size: int
    root_hash: bytes
    taken_at: datetime
    public_key: bytes
    signature: bytes


# A page of entries' lines (store/entries.py), joined into one text by the database: one
# value to fetch, not a row per entry. Positions are dense, so the page is a range of them;
# and they are given in commit order, as the event store's notification ids are, so the
# page's events and kept entries are a range of those ids too. Each is read as a range, in
# notification id order, and merged with the page's feed rows: probing the two indexes for
# each of 10,000 rows took a fifth more of the database's time. The lines are joined in the
# order the merge hands them on rather than sorted again by position, which on PostgreSQL
# before 16 copies the whole page into a sort (about 1 µs an entry). Neither order is one
# the SQL standard promises, so the positions are checked, sorted alone, which is cheap: a
# page whose lines came in any other order is written by the ledger. The feed rows keep their
# row version under its own name, `xmin`, so the line's check (store/entries.py) reads `f.xmin`
# from them as it would from the table.
_ENTRY_PAGE = (
    """
WITH f AS MATERIALIZED (
  SELECT xmin, * FROM {feed}
  WHERE position > %(after)s::bigint AND position <= %(after)s::bigint + %(limit)s::bigint
), ids AS (
  SELECT min(notification_id) AS first, max(notification_id) AS last FROM f
), page AS (
SELECT f.position, """
    + SERVED_LINE
    + """ AS line
FROM f
JOIN {events} e ON e.notification_id = f.notification_id
  AND e.notification_id BETWEEN (SELECT first FROM ids) AND (SELECT last FROM ids)
LEFT JOIN {entries} b ON b.notification_id = f.notification_id
  AND b.notification_id BETWEEN (SELECT first FROM ids) AND (SELECT last FROM ids)
ORDER BY f.notification_id
)
SELECT string_agg(line || %(end)s, %(separator)s) AS text, count(*) AS entries,
  count(line) AS written, max(position) AS last,
  array_agg(position) = array_agg(position ORDER BY position) AS in_order
FROM page
"""
)


class _TextAsBytes(Loader):
    """Text in binary, as its bytes: a page of lines is sent on as it came, undecoded."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


@dataclass(frozen=True)
class EntryPage:
    """Feed entries as canonical JSON, joined into one text, as the database wrote them."""

    text: bytes
    """Every entry's canonical JSON in position order, ended and separated, UTF-8; b"" when
    none."""
    last: int | None
    """The last position in the page."""


class LedgerReads(LedgerSql):
    """Queries over the ledger's own tables, beside the event store."""

    def _feed_select(self, *more: str) -> str:
        """Feed rows joined to their events (`f`, `e`), with `more` columns after theirs."""
        columns = ", ".join(
            (
                "f.position, f.recorded_at, f.actor_role, f.actor_organization, f.actor_subject",
                "e.originator_id, e.originator_version, e.topic, e.state",
                *more,
            )
        )
        return (
            f"SELECT {columns} FROM {self._table(FEED_TABLE)} f "
            f"JOIN {self._events} e ON e.{self._event_key} = f.notification_id "
        )

    def _feed_rows(
        self, sql: str, params: Sequence[Any], *more: str
    ) -> Iterator[tuple[FeedRow, Sequence[Any]]]:
        """Feed rows joined to their events, selected by `sql` after the joins, with `more`
        columns; each with the row as read (its columns by index, `more` last)."""
        callers: dict[tuple[str, str, str], Actor] = {}  # few, and each made once
        for row in self._tuples(self._feed_select(*more) + sql, params):
            position, micros, role, organization, subject, *stored = row[:9]
            caller = callers.get((role, organization, subject))
            if caller is None:
                caller = callers[role, organization, subject] = Actor(
                    role=Role(role), organization_id=UUID(organization), subject=subject
                )
            yield FeedRow(position, micros_to_datetime(micros), caller, self._stored(*stored)), row

    def _stored_event(self, row: Any) -> StoredEvent:
        return self._stored(
            row["originator_id"], row["originator_version"], row["topic"], row["state"]
        )

    def _stored(self, originator_id: Any, version: int, topic: str, state: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=self._convert_id(originator_id),
            originator_version=version,
            topic=topic,
            state=bytes(state),
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
        where = "WHERE f.position > ? ORDER BY f.position LIMIT ?"
        return [row for row, _ in self._feed_rows(where, (after, limit))]

    def feed_entries(self, after: int, limit: int) -> list[EntryRow]:
        """Entries after a position, in order, with the lines or bodies kept for them."""
        # SQLite keeps bodies only (store/entries.py).
        lines = ("b.line", "b.line_digest") if self._postgres else ("NULL", "NULL")
        found = []
        for row, read in self._feed_rows(
            f"LEFT JOIN {self._table(ENTRIES_TABLE)} b ON b.notification_id = f.notification_id "
            "WHERE f.position > ? ORDER BY f.position LIMIT ?",
            (after, limit),
            "b.digest",
            "b.body",
            *lines,
        ):
            _, micros, role, organization, subject = read[:5]
            digest, body, line, line_kept_with = read[-4:]
            # Served only while what it was made from is as stored: else what that now says.
            if line is not None and bytes(line_kept_with) != line_digest(
                row.event, row.position, micros, (role, organization, subject)
            ):
                line = None
            if body is not None and bytes(digest) != event_digest(row.event):
                body = None
            found.append(
                EntryRow(
                    position=row.position,
                    recorded_at=row.recorded_at,
                    caused_by=row.caused_by,
                    line=line,
                    body=body,
                    stored=None if line is not None or body is not None else row,
                )
            )
        return found

    def entry_page(self, after: int, limit: int, end: str, separator: str) -> EntryPage | None:
        """The canonical JSON of the entries after a position, each followed by `end`, joined
        by `separator`, written by the database itself. None where it cannot write every one
        (on SQLite: no SHA-256), where an entry has neither a line nor a canonical body still
        matching what it was made from (its event; for a line, its feed row too), or where the
        database did not join the lines in position order."""
        if not self._postgres:
            return None
        params = {"after": after, "limit": limit, "end": end, "separator": separator}
        with self._cursor() as cursor:
            # A page is at most 10,000 rows in three ranges of an index each: one backend,
            # merging the ranges, is always the plan. Left to itself, the planner reaches for
            # parallel workers, or (its estimates stale after a bulk load, and given the
            # memory) hashes all the events, five times slower; or it probes an index for each
            # row, or reads a range through a bitmap and sorts it again. Those stale estimates
            # also cost the plan high enough to compile it (JIT), about 20 ms a page, more than
            # a page of 1,000 takes to read. One round trip for all.
            cursor.execute(
                "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL enable_hashjoin = off; "
                "SET LOCAL enable_nestloop = off; SET LOCAL enable_bitmapscan = off; "
                "SET LOCAL enable_seqscan = off; SET LOCAL jit = off; "
                "SET LOCAL client_encoding = 'UTF8'"
            )
            # The page's text in binary, in the client encoding (UTF-8, as just set), taken as
            # bytes: not decoded into a str to be encoded again for the answer, nor converted
            # to bytea by the database, a third copy of the page for its memory to fault in
            # (0.48 → 0.34 page faults an entry; 0.45 µs less of its CPU, timed alone).
            cursor.adapters.register_loader("text", _TextAsBytes)
            cursor.execute(self._entry_sql(_ENTRY_PAGE), params, binary=True)
            row = cursor.fetchone()
        if row["written"] != row["entries"] or row["in_order"] is False:
            return None
        return EntryPage(row["text"] or b"", row["last"])

    def _entry_sql(self, sql: str) -> str:
        """SQL over `{feed}`, `{events}` and `{entries}`, with the tables' names in."""
        # Not str.format: the lines' JSON is full of braces.
        for name, table in (
            ("feed", self._table(FEED_TABLE)),
            ("events", self._events),
            ("entries", self._table(ENTRIES_TABLE)),
        ):
            sql = sql.replace("{" + name + "}", table)
        return sql

    def stream(self, stream_id: UUID) -> list[FeedRow]:
        """One stream's entries, in version order."""
        where = "WHERE e.originator_id = ? ORDER BY e.originator_version"
        return [row for row, _ in self._feed_rows(where, (self._uuid_param(stream_id),))]

    def position_known_at(self, moment: datetime) -> int:
        """The last position recorded at or before a moment (record times never decrease)."""
        rows = self._rows(
            f"SELECT position FROM {self._table(FEED_TABLE)} WHERE recorded_at <= ? "
            "ORDER BY position DESC LIMIT 1",
            (datetime_to_micros(moment),),
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

    # --- the verifiable log's leaf hashes and checkpoints (services/ledger/audit/) -------------

    def last_leaf(self) -> int:
        """The last position whose leaf hash is stored, 0 when none is."""
        rows = self._rows(
            f"SELECT position FROM {self._table(LEAVES_TABLE)} ORDER BY position DESC LIMIT 1"
        )
        return int(rows[0]["position"]) if rows else 0

    def leaves(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(position, leaf hash) of the stored leaves after a position, in order."""
        rows = self._rows(
            f"SELECT position, leaf_hash FROM {self._table(LEAVES_TABLE)} "
            "WHERE position > ? ORDER BY position LIMIT ?",
            (after, limit),
        )
        return [(int(r["position"]), bytes(r["leaf_hash"])) for r in rows]

    def add_leaves(self, leaves: Sequence[tuple[int, bytes]]) -> None:
        """Store leaf hashes; a position already stored keeps its hash (another writer's)."""
        with self._datastore.transaction(commit=True) as cursor:
            self._insert_rows(
                cursor,
                LEAVES_TABLE,
                {"position": "bigint", "leaf_hash": "bytea"},
                leaves,
                then="ON CONFLICT (position) DO NOTHING",
            )

    def _checkpoint_rows(self, where: str, params: Sequence[Any]) -> list[CheckpointRow]:
        rows = self._rows(
            "SELECT tree_size, root_hash, taken_at, public_key, signature "
            f"FROM {self._table(CHECKPOINTS_TABLE)} {where}",
            params,
        )
        return [
            CheckpointRow(
                tree_size=int(r["tree_size"]),
                root_hash=bytes(r["root_hash"]),
                taken_at=micros_to_datetime(r["taken_at"]),
                public_key=bytes(r["public_key"]),
                signature=bytes(r["signature"]),
            )
            for r in rows
        ]

    def checkpoints(self, after: int, limit: int) -> list[CheckpointRow]:
        """Checkpoints of trees larger than `after`, smallest first."""
        return self._checkpoint_rows(
            "WHERE tree_size > ? ORDER BY tree_size LIMIT ?", (after, limit)
        )

    def checkpoint(self, tree_size: int) -> CheckpointRow | None:
        """The checkpoint of the tree of this size, if one was taken."""
        found = self._checkpoint_rows("WHERE tree_size = ?", (tree_size,))
        return found[0] if found else None

    def latest_checkpoint(self) -> CheckpointRow | None:
        """The checkpoint of the largest tree, if any was taken."""
        found = self._checkpoint_rows("ORDER BY tree_size DESC LIMIT 1", ())
        return found[0] if found else None

    def add_checkpoint(self, checkpoint: CheckpointRow) -> None:
        """Keep a checkpoint; if one of this tree size exists (another writer's), it stays."""
        self._write(
            f"INSERT INTO {self._table(CHECKPOINTS_TABLE)} "
            "(tree_size, root_hash, taken_at, public_key, signature) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tree_size) DO NOTHING",
            [
                (
                    checkpoint.tree_size,
                    checkpoint.root_hash,
                    datetime_to_micros(checkpoint.taken_at),
                    checkpoint.public_key,
                    checkpoint.signature,
                )
            ],
        )
