"""What the funding-flow read model keeps of each event: the moves it made of each node, the
records of what a node is, and each node's running totals, merged as moves arrive."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from services.ledger.store.dialect import datetime_to_micros
from services.ledger.store.tables import FLOW_FIGURES

# The business-time bounds of the model: before and after every move.
START_OF_TIME = -(2**63)
END_OF_TIME = 2**63 - 1

Figures = dict[str, int]


@dataclass(frozen=True)
class FlowMove:
    """What one event changed of one node: its own figures by a delta, its state, its details.

    The first move of a node creates it (with its kind, parent, state and details); later ones
    carry only what changed.
    """

    position: int
    seq: int
    budget_id: UUID
    stream_id: UUID
    """The stream whose event it was, the one stream the node belongs to."""
    node_key: str
    kind: str
    parent_key: str | None
    created: bool
    occurred_at: datetime
    deltas: Mapping[str, int]
    state: str | None
    details: Mapping[str, Any] | None

    @property
    def is_record(self) -> bool:
        """Whether it says what the node is or has become, not only how its figures moved."""
        return self.created or self.state is not None or self.details is not None


class NodeRecord(NamedTuple):
    """A move that says what a node is or has become: its creation, a new state or details.

    A tuple, and its details left as the JSON text kept: a whole flow reads 100,000 of them.
    """

    position: int
    seq: int
    node_key: str
    kind: str
    parent_key: str | None
    created: int  # 1 or 0
    state: str | None
    details: str | None
    stream_id: str  # the stream whose event made it, as kept (its key should begin with it)


@dataclass(frozen=True)
class Totals:
    """A node's own figures summed over its moves up to one of them, in business-time order."""

    occurred_at: int  # microseconds
    position: int
    figures: Figures

    def plus(self, deltas: Mapping[str, int]) -> Figures:
        """These figures moved by `deltas`."""
        return {name: self.figures[name] + deltas.get(name, 0) for name in FLOW_FIGURES}


NO_TOTALS = Totals(0, 0, dict.fromkeys(FLOW_FIGURES, 0))


def merged(
    base: Totals, later: Sequence[Totals], moves: Sequence[FlowMove]
) -> tuple[list[Totals], list[Totals]]:
    """A node's totals after each of its new `moves`, and its `later` kept rows that they change.

    `base` is the node's last kept totals before the earliest move, `later` its kept rows after
    it, in business-time order. The moves were recorded after every kept row, so at equal
    business times they come after them, in feed order.
    """
    new: list[Totals] = []
    changed: list[Totals] = []
    running = base.figures
    added = dict.fromkeys(FLOW_FIGURES, 0)  # by the moves so far, so to every kept row after
    kept = iter(later)
    row = next(kept, None)
    ordered = sorted(moves, key=lambda m: (m.occurred_at, m.position))
    for move in [*ordered, None]:
        at = END_OF_TIME if move is None else datetime_to_micros(move.occurred_at)
        while row is not None and row.occurred_at <= at:
            running = row.plus(added)
            if any(added.values()):
                changed.append(Totals(row.occurred_at, row.position, running))
            row = next(kept, None)
        if move is None:
            break
        running = {name: running[name] + move.deltas.get(name, 0) for name in FLOW_FIGURES}
        new.append(Totals(at, move.position, running))
        for name, delta in move.deltas.items():
            added[name] += delta
    return new, changed


def _whose(move: FlowMove) -> list[Any]:
    """The columns every row of a move begins with: where it was made, and of which node."""
    return [
        move.position,
        move.seq,
        str(move.budget_id),
        str(move.stream_id),
        move.node_key,
        move.kind,
    ]


def record_row(move: FlowMove) -> list[Any]:
    """The move as a row of the records table (`is_record` moves only)."""
    details = None if move.details is None else json.dumps(move.details, sort_keys=True)
    at = datetime_to_micros(move.occurred_at)
    return [*_whose(move), move.parent_key, int(move.created), at, move.state, details]


def delta_row(move: FlowMove) -> list[Any]:
    """The move as a row of the deltas table (moves with deltas only)."""
    at = datetime_to_micros(move.occurred_at)
    return [*_whose(move), at, *(move.deltas.get(name) or None for name in FLOW_FIGURES)]
