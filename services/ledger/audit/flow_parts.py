"""A whole flow written from parts: below each contract and grant, its own nodes, kept apart.

Nearly all of a whole flow's nodes are deliveries, payments and tranches, and each belongs to
the stream of its contract or grant; an event changes one stream's nodes. So the tree is built
down to the contracts and grants (a few hundred nodes, whose own figures sum what lies below),
and below each of them the part written for its stream is joined in: kept from an earlier read
while the stream is unchanged, else built from the read model and kept. After a change to one
contract, a read builds that contract's part only.
"""

from __future__ import annotations

from uuid import UUID

from services.common.collector import collector_paused
from services.ledger.audit.flow_answers import KeptAnswers, PartKey
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.flow_nodes import DEEP_KINDS, HOLDER_KINDS, stream_of
from services.ledger.audit.flow_tree import Branch, FlowAnswer, Written, grow


def whole_budget(
    model: FlowModel, shallow: FlowAnswer, kept: KeptAnswers, *, rebuilds: int, fresh: bool
) -> Written:
    """The whole tree's JSON below `shallow` (the flow read to its contracts and grants), each
    holder's part from `kept` unless `fresh` asks for every part built again."""
    holders: dict[UUID, Branch] = {
        stream_of(branch.node.key): branch
        for branch in shallow.budget.walk()
        if branch.kind in HOLDER_KINDS
    }
    changes = model.rows.stream_changes([str(stream) for stream in holders], shallow.position)
    keys = {
        stream: PartKey(stream, shallow.as_of, changes.get(str(stream), 0), rebuilds)
        for stream in holders
    }
    parts: dict[str, bytes] = {}
    for stream, key in keys.items():
        part = None if fresh else kept.get(key)
        if part is not None:
            parts[holders[stream].node.key] = part
    missing = [stream for stream in holders if holders[stream].node.key not in parts]
    if missing:
        with collector_paused():
            found = model.stream_nodes(
                shallow.budget_id,
                missing,
                position=shallow.position,
                as_of=shallow.as_of,
                kinds=DEEP_KINDS,
            )
            for stream in missing:
                holder = holders[stream].node
                part = grow({holder.key: holder, **found[stream]}, holder.key).children_json()
                parts[holder.key] = part
                kept.put(keys[stream], part)
    return shallow.budget_json(parts)
