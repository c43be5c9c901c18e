"""The funding-flow read model's rows: how each event moved each node, and how far it reaches."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from services.ledger.store.reads import LedgerSql, datetime_to_micros
from services.ledger.store.recorders import FLOW_FIGURES, FLOW_MOVES_TABLE, READ_MODELS_TABLE

MODEL_NAME = "budget-flow"
_MOVE_COLUMNS = (
    "position, seq, budget_id, node_key, kind, parent_key, created, occurred_at, "
    + ", ".join(FLOW_FIGURES)
    + ", state, details"
)


@dataclass(frozen=True)
class FlowMove:
    """What one event changed of one node: its own figures by a delta, its state, its details.

    The first move of a node creates it (with its kind, parent, state and details); later ones
    carry only what changed.
    """

    position: int
    seq: int
    budget_id: UUID
    node_key: str
    kind: str
    parent_key: str | None
    created: bool
    occurred_at: datetime
    deltas: Mapping[str, int]
    state: str | None
    details: Mapping[str, Any] | None


@dataclass(frozen=True)
class NodeRecord:
    """A move that says what a node is or has become: its creation, a new state or details."""

    position: int
    seq: int
    node_key: str
    kind: str
    parent_key: str | None
    created: bool
    state: str | None
    details: Mapping[str, Any] | None


class Overtaken(Exception):
    """Another process advanced the read model first; this batch was rolled back."""


class FlowRows(LedgerSql):
    """Reads and writes the funding-flow read model's tables."""

    def ensure(self) -> None:
        """Register the read model at position 0 unless it is already."""
        self._write(
            f"INSERT INTO {self._table(READ_MODELS_TABLE)} (name, position) VALUES (?, 0) "
            "ON CONFLICT (name) DO NOTHING",
            [(MODEL_NAME,)],
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
            if moves:
                marks = ", ".join("?" * (10 + len(FLOW_FIGURES)))
                cursor.executemany(
                    self._sql(
                        f"INSERT INTO {self._table(FLOW_MOVES_TABLE)} ({_MOVE_COLUMNS}) "
                        f"VALUES ({marks})"
                    ),
                    [_row(move) for move in moves],
                )

    def reset(self) -> None:
        """Forget every move and stand at position 0 again, to be rebuilt from the feed."""
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM {self._table(FLOW_MOVES_TABLE)}")
            cursor.execute(
                self._sql(
                    f"UPDATE {self._table(READ_MODELS_TABLE)} SET position = 0 WHERE name = ?"
                ),
                [MODEL_NAME],
            )

    def _filter(
        self,
        budget_id: UUID,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None = None,
    ) -> tuple[str, list[Any]]:
        where = "budget_id = ? AND position <= ?"
        params: list[Any] = [str(budget_id), position]
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
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None = None,
    ) -> dict[str, dict[str, int]]:
        """Each node's own figures, summed over the moves the two clocks let through."""
        where, params = self._filter(budget_id, position, as_of, kinds)
        sums = ", ".join(f"SUM({name}) AS {name}" for name in FLOW_FIGURES)
        rows = self._rows(
            f"SELECT node_key, {sums} FROM {self._table(FLOW_MOVES_TABLE)} "
            f"WHERE {where} GROUP BY node_key",
            params,
        )
        # PostgreSQL sums bigints as numeric: int() keeps them exact either way.
        return {
            r["node_key"]: {name: int(r[name]) for name in FLOW_FIGURES if r[name] is not None}
            for r in rows
        }

    def records(
        self,
        budget_id: UUID,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None = None,
    ) -> list[NodeRecord]:
        """The moves that create nodes or change their state or details, in feed order."""
        where, params = self._filter(budget_id, position, as_of, kinds)
        rows = self._rows(
            "SELECT position, seq, node_key, kind, parent_key, created, state, details "
            f"FROM {self._table(FLOW_MOVES_TABLE)} WHERE {where} "
            "AND (created = 1 OR state IS NOT NULL OR details IS NOT NULL) "
            "ORDER BY position, seq",
            params,
        )
        return [
            NodeRecord(
                position=int(r["position"]),
                seq=int(r["seq"]),
                node_key=r["node_key"],
                kind=r["kind"],
                parent_key=r["parent_key"],
                created=bool(r["created"]),
                state=r["state"],
                details=json.loads(r["details"]) if r["details"] is not None else None,
            )
            for r in rows
        ]

    def creation(self, node_key: str, budget_id: UUID) -> tuple[int, int] | None:
        """(position, business time in microseconds) of a node's creation, if recorded."""
        rows = self._rows(
            f"SELECT position, occurred_at FROM {self._table(FLOW_MOVES_TABLE)} "
            "WHERE budget_id = ? AND node_key = ? AND created = 1",
            (str(budget_id), node_key),
        )
        return (int(rows[0]["position"]), int(rows[0]["occurred_at"])) if rows else None


def _row(move: FlowMove) -> list[Any]:
    details = None if move.details is None else json.dumps(move.details, sort_keys=True)
    return [
        move.position,
        move.seq,
        str(move.budget_id),
        move.node_key,
        move.kind,
        move.parent_key,
        int(move.created),
        datetime_to_micros(move.occurred_at),
        *(move.deltas.get(name) or None for name in FLOW_FIGURES),
        move.state,
        details,
    ]
