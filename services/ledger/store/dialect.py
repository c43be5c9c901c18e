"""The ledger database's dialect, shared by its reads and its read models' tables: names,
placeholders, transactions and bulk inserts on SQLite or PostgreSQL, and times as stored.

The SQL is written once with `?` placeholders; the PostgreSQL variant swaps in `%s` and its
schema, and joins on the events table's `notification_id` where SQLite uses its `rowid`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.rows import tuple_row

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros_to_datetime(micros: int) -> datetime:
    """A time as stored (integer microseconds since 1970, UTC) as a datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def datetime_to_micros(moment: datetime) -> int:
    """An aware datetime as stored: integer microseconds since 1970, UTC, exactly."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class LedgerSql:
    """The ledger database's dialect: its tables' names, placeholders and transactions."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        events = recorder.events_table_name  # type: ignore[attr-defined]
        self._postgres = isinstance(recorder, PostgresApplicationRecorder)
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

    def _sql(self, sql: str) -> str:
        """SQL written with `?` placeholders, in this database's style."""
        return sql.replace("?", self._placeholder)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._cursor() as cursor:
            cursor.execute(self._sql(sql), list(params))
            return list(cursor.fetchall())

    def _tuples(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Rows by column index: for reads of many rows, where making a dict of each costs."""
        with self._cursor() as cursor:
            if self._postgres:
                cursor.row_factory = tuple_row
            cursor.execute(self._sql(sql), list(params))
            return list(cursor.fetchall())

    def _insert_rows(
        self,
        cursor: Any,
        table: str,
        columns: Mapping[str, str],
        rows: Iterable[Sequence[Any]],
        *,
        then: str = "",
    ) -> None:
        """Insert `rows` into `table`'s `columns` (each name with its PostgreSQL type), `then`
        after (an ON CONFLICT clause, say). On PostgreSQL, one statement of column arrays sent
        in binary: about half the time of a statement a row, for the writer and the database
        alike."""
        values = list(rows)
        if not values:
            return
        into = f"INSERT INTO {self._table(table)} ({', '.join(columns)})"
        if self._postgres:
            arrays = ", ".join(f"%b::{kind}[]" for kind in columns.values())
            cursor.execute(
                f"{into} SELECT * FROM unnest({arrays}) {then}",
                [*map(list, zip(*values, strict=True))],
            )
            return
        marks = ", ".join("?" * len(columns))
        cursor.executemany(self._sql(f"{into} VALUES ({marks}) {then}"), values)

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._datastore.transaction(commit=True) as cursor:
                cursor.executemany(self._sql(sql), [list(r) for r in rows])
