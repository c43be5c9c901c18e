"""Feed entries kept by earlier releases, brought up to what this one keeps: `python -m
services.ledger migrate` runs these once, a batch of entries at a time.

Until they run, such entries are served all the same, written by the ledger on each read
(store/reads.py); after, the database serves them as it does new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent

from services.ledger.store.entries import (
    BODY_IS_CANONICAL,
    CANONICAL_BODY_START,
    EVENT_DIGEST,
    KEPT_ENTRY,
    LINE_DIGEST,
)
from services.ledger.store.reads import LedgerReads
from services.ledger.store.tables import ENTRIES_TABLE

# Lines in place of the bodies of a batch of entries kept by a release before lines were, where
# the body is canonical and still matches its event; the batch's last notification id, to go
# on after.
_KEEP_LINES = (
    """
WITH batch AS (
  SELECT notification_id FROM {entries} WHERE line IS NULL AND notification_id > %(after)s
  ORDER BY notification_id LIMIT %(limit)s
), kept AS (
  UPDATE {entries} b SET (body, line, line_digest) = ("""
    + KEPT_ENTRY
    + """)
  FROM {feed} f JOIN {events} e ON e.notification_id = f.notification_id
  WHERE b.notification_id IN (SELECT notification_id FROM batch)
    AND f.notification_id = b.notification_id AND """
    + BODY_IS_CANONICAL
    + """ AND b.digest = """
    + EVENT_DIGEST
    + """
  RETURNING b.line
)
SELECT (SELECT max(notification_id) FROM batch) AS last,
  (SELECT count(line) FROM kept) AS kept
"""
)

# The row version a batch of kept lines' events and feed rows share, kept with each line
# written by a release before lines were tied to their transaction (or just written from a
# body, above), where the line's digest still holds: from then on a change to either row is
# seen without hashing them (store/entries.py, AS_WRITTEN). Rows of different transactions (a
# restore that copied each table in its own, say) have no one version to keep, and stay held to
# the digest.
_KEEP_ROW_VERSIONS = (
    """
WITH batch AS (
  SELECT notification_id FROM {entries}
  WHERE written_in IS NULL AND line IS NOT NULL AND notification_id > %(after)s
  ORDER BY notification_id LIMIT %(limit)s
), kept AS (
  UPDATE {entries} b SET written_in = e.xmin
  FROM {feed} f JOIN {events} e ON e.notification_id = f.notification_id
  WHERE b.notification_id IN (SELECT notification_id FROM batch)
    AND f.notification_id = b.notification_id AND e.xmin = f.xmin
    AND b.line_digest = """
    + LINE_DIGEST
    + """
  RETURNING 1
)
SELECT (SELECT max(notification_id) FROM batch) AS last, (SELECT count(*) FROM kept) AS kept
"""
)


class EntryUpgrades(LedgerReads):
    """The ledger's kept entries, brought up to date a batch at a time."""

    def unkept_entries(self, after: int, limit: int) -> list[tuple[int, StoredEvent]]:
        """Stored events no entry body was kept for, after a notification id, in its order."""
        rows = self._rows(
            self._feed_select("f.notification_id")
            + f"LEFT JOIN {self._table(ENTRIES_TABLE)} b ON b.notification_id = f.notification_id "
            "WHERE b.notification_id IS NULL AND f.notification_id > ? "
            "ORDER BY f.notification_id LIMIT ?",
            (after, limit),
        )
        return [(int(row["notification_id"]), self._stored_event(row)) for row in rows]

    def keep_entries(self, rows: Sequence[tuple[int, bytes, str]]) -> None:
        """Keep entry bodies (notification id, digest of the event, body) made after the fact."""
        self._write(
            f"INSERT INTO {self._table(ENTRIES_TABLE)} (notification_id, digest, body) "
            "VALUES (?, ?, ?)",
            rows,
        )

    def uncanonical_bodies(self, after: int, limit: int) -> list[tuple[int, str]]:
        """(notification id, body) of bodies kept by a release before bodies were canonical."""
        rows = self._rows(
            f"SELECT notification_id, body FROM {self._table(ENTRIES_TABLE)} "
            f"WHERE substr(body, 1, {len(CANONICAL_BODY_START)}) <> ? AND notification_id > ? "
            "ORDER BY notification_id LIMIT ?",
            (CANONICAL_BODY_START, after, limit),
        )
        return [(int(row["notification_id"]), row["body"]) for row in rows]

    def rewrite_bodies(self, rows: Sequence[tuple[int, str]]) -> None:
        """Replace kept bodies (notification id, body) with the same fields written again."""
        self._write(
            f"UPDATE {self._table(ENTRIES_TABLE)} SET body = ? WHERE notification_id = ?",
            [(body, nid) for nid, body in rows],
        )

    def keep_lines(self, after: int, limit: int) -> tuple[int, int] | None:
        """Write the lines of up to `limit` entries kept without one (by a release before lines
        were) after a notification id: (the last id looked at, lines written). None when no
        entry after it lacks a line, and on SQLite, which serves entries from their bodies."""
        return self._in_batches(_KEEP_LINES, after, limit)

    def keep_row_versions(self, after: int, limit: int) -> tuple[int, int] | None:
        """Keep with each of up to `limit` lines, after a notification id, that were kept
        without it the row version its event and feed row share, where the line's digest
        still holds: (the last id looked at, versions kept). None when no line after it lacks
        one, and on SQLite, which keeps no lines."""
        return self._in_batches(_KEEP_ROW_VERSIONS, after, limit)

    def _in_batches(self, sql: str, after: int, limit: int) -> tuple[int, int] | None:
        if not self._postgres:
            return None
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._entry_sql(sql), {"after": after, "limit": limit})
            row: Any = cursor.fetchone()
        return None if row["last"] is None else (int(row["last"]), int(row["kept"]))
