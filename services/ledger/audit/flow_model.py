"""The funding-flow read model: kept from the feed, rebuildable from it, read on both clocks.

For every feed entry of a budget, contract or grant, it stores how the event moved each flow
node (services/ledger/audit/flow_nodes.py): the change of each own figure, and the node's new
state or details; and, beside the moves, each node's running totals in business-time order
(services/ledger/store/flow_rows.py). A flow as of a business time, as known at a position, is
then one totals row per node, less whatever moves recorded after that position added, however
many years of events lie behind it, instead of a replay of every stream. The changes are
computed by applying each event to its aggregate, so the domain's own code decides them;
reconciliation checks the model against a replay.

The model records the feed position it reflects; a read first brings it up to the position it
answers for. `rebuild` forgets it and derives it again from the feed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.common.collector import collector_paused
from services.ledger.application.base import LedgerBase
from services.ledger.audit.flow_nodes import (
    FLOW_EVENTS,
    OWN_FIGURES,
    NodeKind,
    NodeState,
    budget_of,
    node_key,
    nodes_of,
    touched_by,
)
from services.ledger.domain.errors import NotFound
from services.ledger.history import project
from services.ledger.store.dialect import micros_to_datetime
from services.ledger.store.flow_moves import FlowMove, NodeRecord
from services.ledger.store.flow_rows import FlowRows, Overtaken

_CHUNK = 1000  # feed entries applied, and stored, per transaction
_CACHED = 512  # aggregates kept between entries, so a busy stream is not replayed per event


class FlowModel:
    """Keeps the funding-flow read model of one ledger, and answers flows from it."""

    def __init__(self, ledger: LedgerBase) -> None:
        self._ledger = ledger
        self.rows = FlowRows(ledger.recorder)
        self.rows.ensure()
        self._lock = threading.Lock()
        self._cache: OrderedDict[UUID, tuple[Aggregate, dict[str, NodeState]]] = OrderedDict()

    def position(self) -> int:
        """The last feed position the model reflects."""
        return self.rows.position()

    def catch_up(self, through: int | None = None) -> int:
        """Apply the feed's entries up to `through` (default: the head); the position reached."""
        target = self._ledger.reads.head() if through is None else through
        position = self.rows.position()
        if position >= target:
            return position
        with self._lock:
            position = self.rows.position()
            while position < target:
                with collector_paused():
                    reached = self._apply(position, min(_CHUNK, target - position))
                if reached is None:
                    break
                position = reached
            return position

    def _apply(self, after: int, limit: int) -> int | None:
        """Apply and store the feed's next entries; the position reached, None if there were
        none."""
        entries = self._ledger.reads.feed(after, limit)
        if not entries:
            return None
        moves = [move for row in entries for move in self._moves(row)]
        try:
            self.rows.append(after, entries[-1].position, moves)
        except Overtaken:
            self._cache.clear()  # the other process's moves are the ones kept
            return self.rows.position()
        return entries[-1].position

    def rebuild(self) -> int:
        """Forget the model and derive it again from the whole feed; the position reached."""
        with self._lock:
            self.rows.reset()
            self._cache.clear()
        return self.catch_up()

    def _moves(self, row: Any) -> list[FlowMove]:
        event = self._ledger.mapper.to_domain_event(row.event)
        if not isinstance(event, FLOW_EVENTS):
            return []
        stream_id: UUID = row.event.originator_id
        version: int = row.event.originator_version
        cached = self._cache.pop(stream_id, None)
        aggregate: Aggregate | None
        if cached is not None and cached[0].version == version - 1:
            aggregate, known = cached
        else:
            aggregate = (
                self._ledger.repository.get(stream_id, version=version - 1, projector_func=project)
                if version > 1
                else None
            )
            known = nodes_of(aggregate)
        changed = event.mutate(aggregate)
        assert changed is not None  # a flow event never deletes its aggregate
        # A new aggregate's nodes all come with it; after that, an event moves only a few.
        after = nodes_of(changed) if aggregate is None else touched_by(changed, event)
        moves = _diff(row.position, event.occurred_at, budget_of(changed), stream_id, known, after)  # type: ignore[attr-defined]
        known.update(after)
        self._cache[stream_id] = (changed, known)
        while len(self._cache) > _CACHED:
            self._cache.popitem(last=False)
        return moves

    def nodes(
        self,
        budget_id: UUID,
        *,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None = None,
    ) -> dict[str, NodeState]:
        """A budget's flow nodes (of `kinds`, or all) as of a business time, known at a position."""
        self.catch_up(position)
        records = self._records(budget_id, position, as_of, kinds, None)
        root = node_key(budget_id, "budget", budget_id)
        if root not in records:
            raise self._missing(budget_id, root, position, as_of)
        totals = self.rows.totals(budget_id, None, position, as_of, kinds)
        return {key: _node(record, totals.get(key, {})) for key, record in records.items()}

    def stream_nodes(
        self,
        budget_id: UUID,
        streams: Sequence[UUID],
        *,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str],
    ) -> dict[UUID, dict[str, NodeState]]:
        """The nodes of `kinds` of each of a budget's `streams`, by stream, on the same terms as
        `nodes`; the model already caught up to `position`."""
        ids = [str(stream) for stream in streams]
        records = self._records(budget_id, position, as_of, kinds, ids)
        totals = self.rows.totals(budget_id, None, position, as_of, kinds, ids)
        found: dict[UUID, dict[str, NodeState]] = {stream: {} for stream in streams}
        by_id = dict(zip(ids, streams, strict=True))
        for key, record in records.items():
            # By the stream kept with the record, not the one its key names: a record edited
            # so that the two disagree is then a node its stream's events do not make.
            found[by_id[record.stream_id]][key] = _node(record, totals.get(key, {}))
        return found

    def _records(
        self,
        budget_id: UUID,
        position: int,
        as_of: datetime | None,
        kinds: Sequence[str] | None,
        streams: Sequence[str] | None,
    ) -> dict[str, NodeRecord]:
        """Each node as its creation says, with the latest state and details recorded since."""
        records: dict[str, NodeRecord] = {}
        for record in self.rows.records(budget_id, position, as_of, kinds, streams):
            if record.created:
                records[record.node_key] = record
            elif (known := records.get(record.node_key)) is not None:
                records[record.node_key] = known._replace(
                    state=known.state if record.state is None else record.state,
                    details=known.details if record.details is None else record.details,
                )
        return records

    def _missing(
        self, budget_id: UUID, root: str, position: int, as_of: datetime | None
    ) -> NotFound:
        # The same answers a replay gives for a budget not there on these terms; whether it was
        # recorded later is a question about the whole feed, so the model must reach its head.
        self.catch_up()
        created = self.rows.creation(root, budget_id)
        if created is not None and created[0] > position:
            return NotFound(f"budget {budget_id} was not yet recorded at position {position}")
        if created is not None and as_of is not None:
            began = micros_to_datetime(created[1])
            if began > as_of:
                return NotFound(f"no budget {budget_id} as of {as_of.isoformat()}")
        return NotFound(f"no budget {budget_id}")


def _node(record: NodeRecord, totals: Mapping[str, int]) -> NodeState:
    kind = cast(NodeKind, record.kind)  # written from a NodeKind
    return NodeState(
        record.node_key,
        kind,
        record.parent_key,
        {name: totals.get(name, 0) for name in OWN_FIGURES[kind]},
        record.state,
        json.loads(record.details) if record.details is not None else {},
        (record.position, record.seq),
    )


def _diff(
    position: int,
    occurred_at: datetime,
    budget_id: UUID,
    stream_id: UUID,
    before: dict[str, NodeState],
    after: dict[str, NodeState],
) -> list[FlowMove]:
    """What one event changed of each node of its aggregate."""
    moves: list[FlowMove] = []
    for key, node in after.items():
        old = before.get(key)
        deltas = {
            name: node.figures.get(name, 0) - (old.figures.get(name, 0) if old else 0)
            for name in OWN_FIGURES[node.kind]
        }
        deltas = {name: delta for name, delta in deltas.items() if delta}
        state = node.state if old is None or old.state != node.state else None
        details = node.details if old is None or old.details != node.details else None
        if old is None or deltas or state is not None or details is not None:
            moves.append(
                FlowMove(
                    position=position,
                    seq=len(moves),
                    budget_id=budget_id,
                    stream_id=stream_id,
                    node_key=key,
                    kind=node.kind,
                    parent_key=node.parent,
                    created=old is None,
                    occurred_at=occurred_at,
                    deltas=deltas,
                    state=state,
                    details=details,
                )
            )
    return moves
