"""The funding-flow read model's tables: each node's records, deltas and running totals, written
and read; what a row holds is in services/ledger/store/flow_moves.py."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.ledger.store.dialect import LedgerSql, datetime_to_micros
from services.ledger.store.flow_moves import (
    END_OF_TIME,
    NO_TOTALS,
    START_OF_TIME,
    Figures,
    FlowMove,
    NodeRecord,
    Totals,
    delta_row,
    merged,
    record_row,
)
from services.ledger.store.tables import (
    FLOW_COLUMN_TYPES,
    FLOW_DELTAS_TABLE,
    FLOW_FIGURES,
    FLOW_RECORDS_TABLE,
    FLOW_TOTALS_TABLE,
    READ_MODELS_TABLE,
    RETIRED_FLOW_TABLES,
)

# The name changes with the model's tables: a database kept by an earlier version has the model
# under an earlier name, and this one is derived afresh from the feed.
MODEL_NAME = "budget-flow-3"
# Counts the times the model's rows were cleared to be derived again (in the `position`
# column), so that answers kept from before are not taken for the model's.
_REBUILDS = f"{MODEL_NAME} rebuilds"
_RETIRED_MODEL_NAMES = ("budget-flow", "budget-flow-2", "budget-flow-2 rebuilds")
_RECORD_COLUMNS = (
    "position, seq, budget_id, stream_id, node_key, kind, parent_key, created, occurred_at, "
    "state, details"
)
_FIGURE_LIST = ", ".join(FLOW_FIGURES)
_DELTA_COLUMNS = f"position, seq, budget_id, stream_id, node_key, kind, occurred_at, {_FIGURE_LIST}"
_TOTALS_COLUMNS = f"node_key, occurred_at, position, {_FIGURE_LIST}"
Query = tuple[str, list[Any]]
"""SQL written with `?` placeholders, and its parameters."""


class Overtaken(Exception):
    """Another process advanced the read model first; this batch was rolled back."""


class FlowRows(LedgerSql):
    """Reads and writes the funding-flow read model's tables."""

    def ensure(self) -> None:
        """Register the read model at position 0 unless it is, clearing what it will keep."""
        read_models = self._table(READ_MODELS_TABLE)
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    f"INSERT INTO {read_models} (name, position) VALUES (?, 0) "
                    "ON CONFLICT (name) DO NOTHING RETURNING name"
                ),
                [MODEL_NAME],
            )
            if cursor.fetchone() is None:
                return  # registered before, by this process or another: it stands where it is
            # Registered here, once: what an earlier version kept is stale for this one.
            self._clear(cursor)
            for retired in RETIRED_FLOW_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {self._table(retired)}")
            marks = ", ".join("?" * len(_RETIRED_MODEL_NAMES))
            cursor.execute(
                self._sql(f"DELETE FROM {read_models} WHERE name IN ({marks})"),
                list(_RETIRED_MODEL_NAMES),
            )

    def position(self) -> int:
        """The last feed position the read model reflects."""
        rows = self._rows(
            f"SELECT position FROM {self._table(READ_MODELS_TABLE)} WHERE name = ?", (MODEL_NAME,)
        )
        return int(rows[0]["position"]) if rows else 0

    def append(self, after: int, through: int, moves: Sequence[FlowMove]) -> None:
        """Store the moves of positions `after`+1 … `through` and advance, all or nothing.

        Raises Overtaken if the model no longer stands at `after`.
        """
        table = self._table(READ_MODELS_TABLE)
        with self._datastore.transaction(commit=True) as cursor:
            # The update takes the row's lock first, so two processes cannot both pass the check;
            # a row returned means this process moved the model from `after`.
            cursor.execute(
                self._sql(
                    f"UPDATE {table} SET position = ? WHERE name = ? AND position = ? "
                    "RETURNING name"
                ),
                [through, MODEL_NAME, after],
            )
            if cursor.fetchone() is None:
                raise Overtaken(f"the flow read model was moved from {after} by another process")
            records = [record_row(move) for move in moves if move.is_record]
            self._insert(cursor, FLOW_RECORDS_TABLE, _RECORD_COLUMNS, records)
            moving = [move for move in moves if move.deltas]
            self._insert(cursor, FLOW_DELTAS_TABLE, _DELTA_COLUMNS, map(delta_row, moving))
            self._keep_totals(cursor, moving)

    def _insert(self, cursor: Any, table: str, columns: str, rows: Iterable[list[Any]]) -> None:
        types = FLOW_COLUMN_TYPES[table]
        self._insert_rows(cursor, table, {name: types[name] for name in columns.split(", ")}, rows)

    def _keep_totals(self, cursor: Any, moving: Sequence[FlowMove]) -> None:
        """Store each node's totals after each of its moves that changes a figure.

        A back-dated move counts from its business time on, so the node's kept totals after
        that time grow by it too. A node's moves in the batch are merged with its kept rows
        from its earliest one on, so each of those rows is rewritten once a batch, not once
        for every move behind it.
        """
        by_node: dict[str, list[FlowMove]] = {}
        for move in moving:
            by_node.setdefault(move.node_key, []).append(move)
        latest = self._latest(cursor, sorted(by_node), END_OF_TIME)
        inserts: list[list[Any]] = []
        updates: list[list[Any]] = []
        for key, moves in by_node.items():
            earliest = min(datetime_to_micros(move.occurred_at) for move in moves)
            last = latest.get(key, NO_TOTALS)
            base, later = (
                self._kept_around(cursor, key, earliest)
                if earliest < last.occurred_at
                else (last, [])
            )
            new, changed = merged(base, later, moves)
            inserts += ([key, t.occurred_at, t.position, *t.figures.values()] for t in new)
            updates += ([*t.figures.values(), key, t.occurred_at, t.position] for t in changed)
        self._insert(cursor, FLOW_TOTALS_TABLE, _TOTALS_COLUMNS, inserts)
        if updates:
            cursor.executemany(
                self._sql(
                    f"UPDATE {self._table(FLOW_TOTALS_TABLE)} SET "
                    + ", ".join(f"{name} = ?" for name in FLOW_FIGURES)
                    + " WHERE node_key = ? AND occurred_at = ? AND position = ?"
                ),
                updates,
            )

    def _kept_around(self, cursor: Any, node_key: str, at: int) -> tuple[Totals, list[Totals]]:
        """A node's last totals at or before business time `at`, and all its totals after it."""
        table = self._table(FLOW_TOTALS_TABLE)
        # From the last business time at or before `at`: its rows, then every later one.
        cursor.execute(
            self._sql(
                f"SELECT {_TOTALS_COLUMNS} FROM {table} WHERE node_key = ? AND occurred_at >= "
                f"COALESCE((SELECT MAX(occurred_at) FROM {table} "
                "WHERE node_key = ? AND occurred_at <= ?), ?) ORDER BY occurred_at, position"
            ),
            [node_key, node_key, at, START_OF_TIME],
        )
        rows = [_totals_of(r) for r in cursor.fetchall()]
        before = [row for row in rows if row.occurred_at <= at]
        return (before[-1] if before else NO_TOTALS), rows[len(before) :]

    def _latest_sql(self, at: int, nodes: Query) -> Query:
        """Each node's last totals at or before business time `at`: one index probe a node.

        `nodes` selects the nodes' keys, as a column `node_key`.
        """
        table = self._table(FLOW_TOTALS_TABLE)
        last = "ORDER BY t.occurred_at DESC, t.position DESC LIMIT 1"
        nodes_sql, nodes_params = nodes
        if self._postgres:
            return (
                f"SELECT n.node_key, t.occurred_at, t.position, {_FIGURE_LIST} "
                f"FROM ({nodes_sql}) n CROSS JOIN LATERAL "
                f"(SELECT * FROM {table} t WHERE t.node_key = n.node_key AND t.occurred_at <= ? "
                f"{last}) t",
                [*nodes_params, at],
            )
        return (
            f"SELECT {_TOTALS_COLUMNS} FROM {table} WHERE rowid IN (SELECT (SELECT t.rowid "
            f"FROM {table} t WHERE t.node_key = n.node_key AND t.occurred_at <= ? {last}) "
            f"FROM ({nodes_sql}) n)",
            [at, *nodes_params],
        )

    def _given(self, values: Sequence[str], column: str = "node_key") -> Query:
        """These values as rows of one column: the nodes of these keys, for `_latest_sql`."""
        if self._postgres:
            return f"SELECT unnest(?::text[]) AS {column}", [list(values)]
        return f"SELECT value AS {column} FROM json_each(?)", [json.dumps(list(values))]

    def _latest(self, cursor: Any, node_keys: Sequence[str], at: int) -> dict[str, Totals]:
        if not node_keys:
            return {}
        sql, params = self._latest_sql(at, self._given(node_keys))
        cursor.execute(self._sql(sql), params)
        return {r["node_key"]: _totals_of(r) for r in cursor.fetchall()}

    def reset(self) -> None:
        """Forget every move and stand at position 0 again, to be rebuilt from the feed."""
        with self._datastore.transaction(commit=True) as cursor:
            self._clear(cursor)
            cursor.execute(
                self._sql(
                    f"UPDATE {self._table(READ_MODELS_TABLE)} SET position = 0 WHERE name = ?"
                ),
                [MODEL_NAME],
            )

    def last_change(self, budget_id: UUID, position: int) -> tuple[int, int] | None:
        """(the last position at or before `position` that changed anything of the budget's
        flow, how many times the model was rebuilt); None when nothing of it is recorded."""
        budget = str(budget_id)
        rows = self._rows(
            "SELECT (SELECT max(position) FROM "
            f"{self._table(FLOW_RECORDS_TABLE)} WHERE budget_id = ? AND position <= ?) AS made, "
            f"(SELECT max(position) FROM {self._table(FLOW_DELTAS_TABLE)} "
            "WHERE budget_id = ? AND position <= ?) AS moved, "
            f"(SELECT position FROM {self._table(READ_MODELS_TABLE)} WHERE name = ?) AS rebuilds",
            (budget, position, budget, position, _REBUILDS),
        )
        made, moved, rebuilds = rows[0]["made"], rows[0]["moved"], rows[0]["rebuilds"]
        if made is None:
            return None
        return max(int(made), int(moved or 0)), int(rebuilds or 0)

    def stream_changes(self, streams: Sequence[str], position: int) -> dict[str, int]:
        """Each stream's last position at or before `position` that changed its nodes (0 when
        none did): one index probe a stream and table."""
        if not streams:
            return {}
        given, params = self._given(streams, "stream_id")
        last = [
            f"(SELECT max(position) FROM {self._table(table)} t "
            "WHERE t.stream_id = s.stream_id AND t.position <= ?)"
            for table in (FLOW_RECORDS_TABLE, FLOW_DELTAS_TABLE)
        ]
        both = ", ".join(f"COALESCE({probe}, 0)" for probe in last)
        greatest = "GREATEST" if self._postgres else "MAX"
        rows = self._tuples(
            f"SELECT s.stream_id, {greatest}({both}) FROM ({given}) s",
            [position, position, *params],
        )
        return {stream: int(changed) for stream, changed in rows}

    def streams(self, budget_id: UUID, position: int, kinds: Sequence[str]) -> list[str]:
        """The streams whose events made a budget's nodes of `kinds`, up to `position`."""
        where, params = self._filter(budget_id, position, None, kinds)
        rows = self._tuples(
            f"SELECT DISTINCT stream_id FROM {self._table(FLOW_RECORDS_TABLE)} WHERE {where}",
            params,
        )
        return sorted(str(stream) for (stream,) in rows)

    def _clear(self, cursor: Any) -> None:
        for table in (FLOW_RECORDS_TABLE, FLOW_DELTAS_TABLE, FLOW_TOTALS_TABLE):
            cursor.execute(f"DELETE FROM {self._table(table)}")
        read_models = self._table(READ_MODELS_TABLE)
        cursor.execute(
            self._sql(
                f"INSERT INTO {read_models} (name, position) VALUES (?, 1) ON CONFLICT (name) "
                f"DO UPDATE SET position = {read_models}.position + 1"
            ),
            [_REBUILDS],
        )

    def _filter(
        self,
        budget_id: UUID,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None = None,
        streams: Sequence[str] | None = None,
        *,
        after: bool = False,
    ) -> Query:
        """The moves of a budget (of `kinds`, of `streams`) up to `position`, or `after` it, as
        of `as_of`."""
        # A stream's moves are all of one budget; found by stream alone, they are found through
        # the stream's index, whatever the planner's statistics say of the budget's.
        scope, params = (
            (f"stream_id IN ({', '.join('?' * len(streams))})", list[Any](streams))
            if streams is not None
            else ("budget_id = ?", list[Any]([str(budget_id)]))
        )
        where = f"{scope} AND position {'>' if after else '<='} ?"
        params.append(position)
        if kinds is not None:
            where += f" AND kind IN ({', '.join('?' * len(kinds))})"
            params += kinds
        if as_of is not None:
            where += " AND occurred_at <= ?"
            params.append(datetime_to_micros(as_of))
        return where, params

    def totals(
        self,
        budget_id: UUID,
        node_keys: Sequence[str] | None,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None = None,
        streams: Sequence[str] | None = None,
    ) -> dict[str, Figures]:
        """Each node's own figures over the moves the two clocks let through; of the nodes
        given, or (None) of every node of the budget (of `kinds`, of `streams`) created inside
        both clocks.

        The nodes' totals as of the business time, less what moves recorded after `position`
        added to them: one statement, so one snapshot, even while the model moves on.
        """
        at = END_OF_TIME if as_of is None else datetime_to_micros(as_of)
        if node_keys is None:
            # Found by the database beside the totals: a whole flow's 50,000 keys are not sent.
            # Distinct: each node's totals counted once, however many creations it records.
            where, params = self._filter(budget_id, position, as_of, kinds, streams)
            nodes: Query = (
                f"SELECT DISTINCT node_key FROM {self._table(FLOW_RECORDS_TABLE)} "
                f"WHERE {where} AND created = 1",
                params,
            )
        else:
            nodes = self._given(node_keys)
        kept, kept_params = self._latest_sql(at, nodes)
        later, later_params = self._filter(budget_id, position, as_of, kinds, streams, after=True)
        sums = ", ".join(f"-SUM(COALESCE({name}, 0))" for name in FLOW_FIGURES)
        rows = self._tuples(
            f"SELECT node_key, {_FIGURE_LIST} FROM ({kept}) kept UNION ALL "
            f"SELECT node_key, {sums} FROM {self._table(FLOW_DELTAS_TABLE)} "
            f"WHERE {later} GROUP BY node_key",
            [*kept_params, *later_params],
        )
        totals: dict[str, Figures] = {}
        for key, *values in rows:
            # PostgreSQL sums bigints as numeric: int() keeps them exact either way.
            figures = dict(zip(FLOW_FIGURES, map(int, values), strict=True))
            if (kept_figures := totals.get(key)) is not None:
                figures = {name: kept_figures[name] + figures[name] for name in FLOW_FIGURES}
            totals[key] = figures
        return totals

    def records(
        self,
        budget_id: UUID,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None = None,
        streams: Sequence[str] | None = None,
    ) -> list[NodeRecord]:
        """The moves that create nodes or change their state or details, in feed order."""
        where, params = self._filter(budget_id, position, as_of, kinds, streams)
        rows = self._tuples(
            "SELECT position, seq, node_key, kind, parent_key, created, state, details, stream_id "
            f"FROM {self._table(FLOW_RECORDS_TABLE)} WHERE {where} ORDER BY position, seq",
            params,
        )
        return list(map(NodeRecord._make, rows))

    def creation(self, node_key: str, budget_id: UUID) -> tuple[int, int] | None:
        """(position, business time in microseconds) of a node's creation, if recorded."""
        rows = self._rows(
            f"SELECT position, occurred_at FROM {self._table(FLOW_RECORDS_TABLE)} "
            "WHERE budget_id = ? AND node_key = ? AND created = 1",
            (str(budget_id), node_key),
        )
        return (int(rows[0]["position"]), int(rows[0]["occurred_at"])) if rows else None


def _totals_of(row: Any) -> Totals:
    return Totals(
        int(row["occurred_at"]), int(row["position"]), {n: int(row[n]) for n in FLOW_FIGURES}
    )
