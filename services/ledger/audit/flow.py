"""The funding flow of a budget: appropriation, allocations, commitments, deliveries, payments.

One answer reflects one feed position, read first, so a write racing the read can never show
half of itself (a contract's completion without its budget's release). The nodes come from the
read model (services/ledger/audit/flow_model.py) or, when asked, from replaying the aggregates
themselves; either way the tree is grown from them (services/ledger/audit/flow_tree.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from uuid import UUID

from proto.actor import Actor
from services.common.collector import collector_paused
from services.common.permissions import require_role
from services.ledger.application import LedgerApplication
from services.ledger.application.access import OVERSEERS
from services.ledger.application.base import KnownAt, Page
from services.ledger.audit.flow_answers import AnswerKey, KeptAnswers
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.flow_nodes import SHALLOW_KINDS, NodeState, node_key, nodes_of
from services.ledger.audit.flow_parts import whole_budget
from services.ledger.audit.flow_tree import FlowAnswer, Written, grow, written_answer
from services.ledger.domain.errors import NotFound

FlowSource = Literal["read-model", "replay"]
FlowDepth = Literal["contracts", "all"]
_PAGE = 1000


def _all_ids(list_page: Callable[[int], Page]) -> set[UUID]:
    ids: set[UUID] = set()
    cursor: int | None = 0
    while cursor is not None:
        page = list_page(cursor)
        ids.update(page.ids)
        cursor = page.next_cursor
    return ids


def reflected_position(ledger: LedgerApplication, known_at: KnownAt | None) -> int:
    """The feed position an answer reflects: the one asked for (at most the head), or the head."""
    head = ledger.reads.head()
    if known_at is None:
        return head
    if isinstance(known_at, datetime):
        return min(ledger.reads.position_known_at(known_at), head)
    return min(known_at, head)


def replayed_nodes(
    ledger: LedgerApplication,
    budget_id: UUID,
    *,
    by: Actor,
    as_of: datetime | None,
    position: int,
) -> dict[str, NodeState]:
    """The flow's nodes from the budget and its contracts and grants, each replayed."""
    nodes: dict[str, NodeState] = {}
    for _, own in replayed_streams(ledger, budget_id, by=by, as_of=as_of, position=position):
        nodes.update(own)
    return nodes


def replayed_streams(
    ledger: LedgerApplication,
    budget_id: UUID,
    *,
    by: Actor,
    as_of: datetime | None,
    position: int,
) -> Iterator[tuple[UUID, dict[str, NodeState]]]:
    """(stream id, its nodes) of the budget, then of each contract and grant committed against
    it, each replayed in turn: a flow a stream at a time, however large the whole."""
    budget = ledger.get_budget(budget_id, by=by, as_of=as_of, known_at=position)
    # The budget names what is committed against it, but not whether each holder is a contract
    # or a grant; the stream index knows, and lists streams created later too, which is harmless.
    contract_ids = _all_ids(
        lambda after: ledger.list_contracts(
            budget_id=budget_id,
            purchaser_id=None,
            implementer_id=None,
            provider_id=None,
            after=after,
            limit=_PAGE,
            by=by,
        )
    )
    yield budget_id, _ranked(nodes_of(budget))
    for allocation in budget.allocations.values():
        for holder_id in allocation.commitments:
            load = ledger.get_contract if holder_id in contract_ids else ledger.get_grant
            try:
                holder = load(holder_id, by=by, as_of=as_of, known_at=position)
            except NotFound:
                continue  # committed on terms its own record does not yet show: left out
            yield holder_id, _ranked(nodes_of(holder))


def _ranked(nodes: dict[str, NodeState]) -> dict[str, NodeState]:
    # An aggregate lists its nodes in the order it created them.
    return {key: replace(node, order=(0, rank)) for rank, (key, node) in enumerate(nodes.items())}


def budget_flow(
    ledger: LedgerApplication,
    budget_id: UUID,
    *,
    by: Actor,
    as_of: datetime | None = None,
    known_at: KnownAt | None = None,
    model: FlowModel | None = None,
    depth: FlowDepth = "all",
) -> FlowAnswer:
    """A budget's funding flow as of a business time, as known at a record time or position.

    From the read model when one is given, else replayed from the aggregates.
    """
    require_role(by, OVERSEERS, "read a budget's funding flow")
    position = reflected_position(ledger, known_at)
    kinds = SHALLOW_KINDS if depth == "contracts" else None
    if model is None:
        # A replay can take long, so the collector stays on through it.
        nodes = replayed_nodes(ledger, budget_id, by=by, as_of=as_of, position=position)
        if kinds is not None:
            nodes = {key: node for key, node in nodes.items() if node.kind in kinds}
    with collector_paused():
        if model is not None:
            nodes = model.nodes(budget_id, position=position, as_of=as_of, kinds=kinds)
        tree = grow(nodes, node_key(budget_id, "budget", budget_id))
    return FlowAnswer(
        budget_id=budget_id,
        position=position,
        as_of=as_of,
        source="replay" if model is None else "read-model",
        budget=tree,
    )


@dataclass(frozen=True)
class FlowTerms:
    """What one read of a budget's flow from the read model answers on."""

    budget_id: UUID
    by: Actor
    as_of: datetime | None
    depth: FlowDepth
    position: int
    key: AnswerKey | None
    """What the answer depends on; None when nothing of the budget is recorded (a 404 to be)."""


def flow_terms(
    ledger: LedgerApplication,
    model: FlowModel,
    budget_id: UUID,
    *,
    by: Actor,
    as_of: datetime | None,
    known_at: KnownAt | None,
    depth: FlowDepth,
) -> FlowTerms:
    """The terms of a read-model flow, brought up to its position; for overseers only."""
    require_role(by, OVERSEERS, "read a budget's funding flow")
    position = reflected_position(ledger, known_at)
    model.catch_up(position)
    change = model.rows.last_change(budget_id, position)
    key = None if change is None else AnswerKey(budget_id, depth, as_of, *change)
    return FlowTerms(budget_id, by, as_of, depth, position, key)


def kept_flow(terms: FlowTerms, kept: KeptAnswers) -> Written | None:
    """The flow's JSON from an answer kept on the same terms, if there is one."""
    written = None if terms.key is None else kept.get(terms.key)
    if written is None:
        return None
    return written_answer(terms.budget_id, terms.position, terms.as_of, "read-model", written)


def built_flow(
    ledger: LedgerApplication,
    model: FlowModel,
    terms: FlowTerms,
    kept: KeptAnswers | None,
    *,
    fresh: bool = False,
) -> Written:
    """The flow's JSON built from the read model, and kept for the next read on its terms.

    A whole flow is built from the parts kept below its contracts and grants, those of streams
    changed since built again; all of them if `fresh`.
    """
    parted = kept is not None and terms.key is not None and terms.depth == "all"
    flow = budget_flow(
        ledger,
        terms.budget_id,
        by=terms.by,
        as_of=terms.as_of,
        known_at=terms.position,
        model=model,
        depth="contracts" if parted else terms.depth,
    )
    if kept is not None and terms.key is not None:
        written = (
            whole_budget(model, flow, kept, rebuilds=terms.key.rebuilds, fresh=fresh)
            if parted
            else flow.budget_json()
        )
        kept.put(terms.key, written)
    else:
        written = flow.budget_json()
    return written_answer(terms.budget_id, terms.position, terms.as_of, flow.source, written)
