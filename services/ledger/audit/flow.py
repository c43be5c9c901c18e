"""The funding flow of a budget: appropriation, allocations, commitments, deliveries, payments.

One answer reflects one feed position, read first, so a write racing the read can never show
half of itself (a contract's completion without its budget's release). The nodes come from the
read model (services/ledger/audit/flow_model.py) or, when asked, from replaying the aggregates
themselves; either way the tree is built here, its figures summed from the leaves up in fen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

from proto.actor import Actor
from proto.audit import BudgetFlow, FlowKind, FlowNode
from proto.money import Money
from services.common.collector import collector_paused
from services.common.permissions import require_role
from services.ledger.application import LedgerApplication
from services.ledger.application.access import OVERSEERS
from services.ledger.application.base import KnownAt, Page
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.flow_nodes import FIGURES, NodeKind, NodeState, node_key, nodes_of
from services.ledger.domain.errors import NotFound

FlowSource = Literal["read-model", "replay"]
FlowDepth = Literal["contracts", "all"]
# What a flow read to its contracts and grants leaves out: their own figures already sum it.
_SHALLOW_KINDS: tuple[NodeKind, ...] = (
    "budget",
    "allocation",
    "commitment",
    "contract",
    "grant",
)
LEVELS: dict[FlowKind, int] = {
    "budget": 0,
    "allocation": 1,
    "contract": 2,
    "grant": 2,
    "delivery": 3,
    "payment": 3,
    "tranche": 3,
}
_PAGE = 1000


# Details a node of this kind does not have; every field is always present on the wire.
_BLANK: dict[str, object] = {
    "reference": None,
    "title": None,
    "occurred_at": None,
    "holder_id": None,
    "street_office_id": None,
    "implementer_id": None,
    "provider_id": None,
    "item_ids": [],
}


def _figures(fen: Mapping[str, int | None]) -> dict[str, Money | None]:
    """Figures in fen as wire money; None where a figure does not apply at the node."""
    figures = {
        name: None if amount is None else Money.from_fen(amount)
        for name, amount in fen.items()
        if name != "remaining"
    }
    remaining = fen.get("remaining")
    figures["remaining"] = figures["overdrawn"] = None
    if remaining is not None:
        # Money is never negative on the wire: a shortfall is shown as such, not failed on.
        figures["remaining"] = Money.from_fen(max(remaining, 0))
        figures["overdrawn"] = Money.from_fen(-remaining) if remaining < 0 else None
    return figures


def _node(
    kind: FlowKind,
    figures: dict[str, Money | None],
    state: str | None,
    details: Mapping[str, Any],
    children: list[FlowNode],
) -> FlowNode:
    return FlowNode.model_validate(
        {
            **_BLANK,
            **details,
            **figures,
            "kind": kind,
            "level": LEVELS[kind],
            "state": state,
            "children": children,
        }
    )


def _sum(children: list[FlowNode], figure: str) -> int:
    total = 0
    for child in children:
        money = getattr(child, figure)
        total += money.fen if money is not None else 0
    return total


# Contracts list their deliveries before their payments; siblings otherwise go by creation.
_SIBLING_RANK: dict[NodeKind, int] = {"payment": 1}


def build_tree(nodes: Mapping[str, NodeState], root_key: str) -> FlowNode:
    """The wire tree under `root_key`, its sums taken from the leaves up."""
    children: dict[str, list[NodeState]] = defaultdict(list)
    for node in nodes.values():
        if node.parent is not None:
            children[node.parent].append(node)
    for siblings in children.values():
        siblings.sort(key=lambda n: (_SIBLING_RANK.get(n.kind, 0), n.order))

    def below(node: NodeState) -> list[NodeState]:
        found = children.get(node.key, [])
        if node.kind != "allocation":
            return found
        # An allocation's contracts and grants hang from its commitments, in commitment order;
        # one whose record is not (yet) visible on the same terms is left out, not failed on.
        return [holder for commitment in found for holder in children.get(commitment.key, [])]

    def build(node: NodeState) -> FlowNode:
        kids = [build(child) for child in below(node)]
        figures: dict[str, int | None] = dict.fromkeys(FIGURES)
        figures.update(node.figures)
        if node.kind in ("budget", "allocation"):
            for name in ("released", "accepted", "paid"):
                figures[name] = _sum(kids, name)
        kind = cast(FlowKind, node.kind)
        return _node(kind, _figures(figures), node.state, node.details, kids)

    return build(nodes[root_key])


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
    nodes = _ranked(nodes_of(budget))
    for allocation in budget.allocations.values():
        for holder_id in allocation.commitments:
            load = ledger.get_contract if holder_id in contract_ids else ledger.get_grant
            try:
                holder = load(holder_id, by=by, as_of=as_of, known_at=position)
            except NotFound:
                continue  # committed on terms its own record does not yet show: left out
            nodes.update(_ranked(nodes_of(holder)))
    return nodes


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
) -> BudgetFlow:
    """A budget's funding flow as of a business time, as known at a record time or position.

    From the read model when one is given, else replayed from the aggregates.
    """
    require_role(by, OVERSEERS, "read a budget's funding flow")
    position = reflected_position(ledger, known_at)
    kinds = _SHALLOW_KINDS if depth == "contracts" else None
    if model is None:
        # A replay can take long, so the collector stays on through it.
        nodes = replayed_nodes(ledger, budget_id, by=by, as_of=as_of, position=position)
        if kinds is not None:
            nodes = {key: node for key, node in nodes.items() if node.kind in kinds}
    with collector_paused():
        if model is not None:
            nodes = model.nodes(budget_id, position=position, as_of=as_of, kinds=kinds)
        tree = build_tree(nodes, node_key(budget_id, "budget", budget_id))
    return BudgetFlow(
        budget_id=budget_id,
        position=position,
        as_of=as_of,
        source="replay" if model is None else "read-model",
        budget=tree,
    )
