"""The funding flow's nodes as each aggregate holds them: own figures, state and details.

Both ways of answering a flow start here. The replay turns the aggregates, loaded as of a time,
into nodes; the read model stores how each event changed them. Figures are signed integer fen
and only a node's own: what a budget or an allocation sums from below is summed when the tree
is built (services/ledger/audit/flow.py).

A budget's commitments are nodes of their own here, though the wire never shows them: they say,
from the budget's stream, that a contract or grant hangs under an allocation as of a moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate

from proto.audit import FlowKind
from services.ledger.domain.budget import Allocation, Budget
from services.ledger.domain.contract import Contract, Delivery, Payment
from services.ledger.domain.grant import Grant, Tranche
from services.ledger.store.tables import FLOW_FIGURES

NodeKind = FlowKind | Literal["commitment"]
Figures = Mapping[str, int]
# The nodes of a flow read to its contracts and grants: their own figures sum what lies below.
SHALLOW_KINDS: tuple[NodeKind, ...] = ("budget", "allocation", "commitment", "contract", "grant")
# What lies below a contract or grant: its stream's own, the bulk of a whole flow.
HOLDER_KINDS: tuple[NodeKind, ...] = ("contract", "grant")
DEEP_KINDS: tuple[NodeKind, ...] = ("delivery", "payment", "tranche")
# Every own figure a node may hold; the read model keeps a column of each.
FIGURES = FLOW_FIGURES
# The figures each kind holds of its own; budgets and allocations sum the others from below.
OWN_FIGURES: dict[NodeKind, tuple[str, ...]] = {
    "budget": ("appropriated", "allocated", "committed", "remaining"),
    "allocation": ("allocated", "committed", "remaining"),
    "commitment": (),
    "contract": ("amount", "committed", "released", "accepted", "paid", "remaining"),
    "grant": ("amount", "committed", "released", "accepted", "paid", "remaining"),
    "delivery": ("amount", "accepted"),
    "payment": ("amount", "paid"),
    "tranche": ("amount", "paid"),
}
# The streams whose events move a budget's flow.
FLOW_EVENTS = (Budget.Event, Contract.Event, Grant.Event)


@dataclass(frozen=True)
class NodeState:
    """One node as its aggregate holds it; `order` ranks it among its siblings."""

    key: str
    kind: NodeKind
    parent: str | None
    figures: Figures
    state: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    order: tuple[int, int] = (0, 0)


def node_key(stream_id: UUID, kind: NodeKind, node_id: object) -> str:
    """A node's key: unique across the ledger, as each node belongs to one stream."""
    return f"{stream_id}/{kind}/{node_id}"


def stream_of(key: str) -> UUID:
    """The stream a node belongs to, from its key."""
    return UUID(key.partition("/")[0])


def commitment_key(budget_id: UUID, holder_id: UUID) -> str:
    """The key of the commitment a contract or grant hangs from."""
    return node_key(budget_id, "commitment", holder_id)


def _at(moment: datetime) -> str:
    return moment.isoformat()


def _budget_node(budget: Budget) -> NodeState:
    return NodeState(
        node_key(budget.id, "budget", budget.id),
        "budget",
        None,
        {
            "appropriated": budget.appropriation_fen,
            "allocated": budget.allocated_fen,
            "committed": budget.committed_fen,
            "remaining": budget.appropriation_fen - budget.committed_fen,
        },
        details={
            "id": str(budget.id),
            "reference": budget.reference,
            "title": budget.title,
            "occurred_at": _at(budget.opened_at),
            "holder_id": str(budget.holder_id),
        },
    )


def _allocation_node(budget: Budget, allocation: Allocation) -> NodeState:
    return NodeState(
        node_key(budget.id, "allocation", allocation.id),
        "allocation",
        node_key(budget.id, "budget", budget.id),
        {
            "allocated": allocation.amount_fen,
            "committed": allocation.committed_fen,
            "remaining": allocation.amount_fen - allocation.committed_fen,
        },
        details={"id": str(allocation.id), "street_office_id": str(allocation.street_office_id)},
    )


def _commitment_node(budget: Budget, allocation: Allocation, holder_id: UUID) -> NodeState:
    parent = node_key(budget.id, "allocation", allocation.id)
    return NodeState(commitment_key(budget.id, holder_id), "commitment", parent, {})


def _budget_nodes(budget: Budget) -> list[NodeState]:
    nodes = [_budget_node(budget)]
    for allocation in budget.allocations.values():
        nodes.append(_allocation_node(budget, allocation))
        nodes += [_commitment_node(budget, allocation, h) for h in allocation.commitments]
    return nodes


def _contract_node(contract: Contract) -> NodeState:
    released = contract.release.amount_fen if contract.release else 0
    return NodeState(
        node_key(contract.id, "contract", contract.id),
        "contract",
        commitment_key(contract.budget_id, contract.id),
        {
            "amount": contract.value_fen,
            "committed": contract.committed_fen,
            "released": released,
            "accepted": contract.accepted_fen,
            "paid": contract.paid_fen,
            "remaining": contract.committed_fen - contract.paid_fen,
        },
        contract.state.value,
        {
            "id": str(contract.id),
            "reference": contract.reference,
            "title": contract.title,
            "occurred_at": _at(contract.signed_at),
            "street_office_id": str(contract.purchaser_id),
            "implementer_id": str(contract.implementer_id),
            "provider_id": str(contract.provider_id),
            "item_ids": [str(item) for item in contract.item_ids],
        },
    )


def _delivery_node(contract: Contract, delivery: Delivery) -> NodeState:
    return NodeState(
        node_key(contract.id, "delivery", delivery.id),
        "delivery",
        node_key(contract.id, "contract", contract.id),
        {"amount": delivery.amount_fen, "accepted": delivery.accepted_fen},
        delivery.state.value,
        {
            "id": str(delivery.id),
            "reference": delivery.reference,
            "occurred_at": _at(delivery.reported_at),
        },
    )


def _payment_node(contract: Contract, payment: Payment) -> NodeState:
    return NodeState(
        node_key(contract.id, "payment", payment.reference),
        "payment",
        node_key(contract.id, "contract", contract.id),
        {"amount": payment.amount_fen, "paid": 0 if payment.is_reversed else payment.amount_fen},
        "reversed" if payment.is_reversed else "paid",
        {
            "id": payment.reference,
            "reference": payment.reference,
            "occurred_at": _at(payment.paid_at),
        },
    )


def _contract_nodes(contract: Contract) -> list[NodeState]:
    return [
        _contract_node(contract),
        *(_delivery_node(contract, d) for d in contract.deliveries.values()),
        *(_payment_node(contract, p) for p in contract.payments.values()),
    ]


def _grant_node(grant: Grant) -> NodeState:
    return NodeState(
        node_key(grant.id, "grant", grant.id),
        "grant",
        commitment_key(grant.budget_id, grant.id),
        {
            "amount": grant.amount_fen,
            "committed": grant.committed_fen,
            "released": grant.released_fen,
            "accepted": grant.spent_fen,
            "paid": grant.disbursed_fen,
            "remaining": grant.committed_fen - grant.disbursed_fen,
        },
        grant.state.value,
        {
            "id": str(grant.id),
            "reference": grant.reference,
            "title": grant.purpose,
            "occurred_at": _at(grant.awarded_at),
            "street_office_id": str(grant.grantor_id),
            "provider_id": str(grant.grantee_id),
        },
    )


def _tranche_node(grant: Grant, tranche: Tranche) -> NodeState:
    return NodeState(
        node_key(grant.id, "tranche", tranche.reference),
        "tranche",
        node_key(grant.id, "grant", grant.id),
        {"amount": tranche.amount_fen, "paid": tranche.amount_fen},
        "disbursed",
        {
            "id": tranche.reference,
            "reference": tranche.reference,
            "occurred_at": _at(tranche.disbursed_at),
        },
    )


def _grant_nodes(grant: Grant) -> list[NodeState]:
    return [_grant_node(grant), *(_tranche_node(grant, t) for t in grant.tranches.values())]


def nodes_of(aggregate: Aggregate | None) -> dict[str, NodeState]:
    """The flow nodes an aggregate holds, by key, in the order it created them."""
    if isinstance(aggregate, Budget):
        nodes = _budget_nodes(aggregate)
    elif isinstance(aggregate, Contract):
        nodes = _contract_nodes(aggregate)
    elif isinstance(aggregate, Grant):
        nodes = _grant_nodes(aggregate)
    else:
        nodes = []
    return {node.key: node for node in nodes}


def touched_by(aggregate: Aggregate, event: object) -> dict[str, NodeState]:
    """The nodes one event can have changed: its aggregate's own node, and the child it names.

    Every flow event moves its aggregate's own node (a figure, a state) and at most the one
    delivery, payment, tranche, allocation or commitment its attributes name; so catching up
    costs what the event changed, not what the aggregate holds. Reconciliation compares the
    model with a full replay, which would show a node this missed.
    """
    named = event.__dict__
    nodes: list[NodeState] = []
    if isinstance(aggregate, Budget):
        nodes.append(_budget_node(aggregate))
        allocation = aggregate.allocations.get(named.get("allocation_id"))  # type: ignore[arg-type]
        if allocation is not None:
            nodes.append(_allocation_node(aggregate, allocation))
            holder = named.get("commitment_id")
            if holder in allocation.commitments:
                nodes.append(_commitment_node(aggregate, allocation, holder))
    elif isinstance(aggregate, Contract):
        nodes.append(_contract_node(aggregate))
        delivery = aggregate.deliveries.get(named.get("delivery_id"))  # type: ignore[arg-type]
        if delivery is not None:
            nodes.append(_delivery_node(aggregate, delivery))
        payment = aggregate.payments.get(named.get("reference"))  # type: ignore[arg-type]
        if payment is not None:
            nodes.append(_payment_node(aggregate, payment))
    elif isinstance(aggregate, Grant):
        nodes.append(_grant_node(aggregate))
        tranche = aggregate.tranches.get(named.get("reference"))  # type: ignore[arg-type]
        if tranche is not None:
            nodes.append(_tranche_node(aggregate, tranche))
    return {node.key: node for node in nodes}


def budget_of(aggregate: Aggregate) -> UUID:
    """The budget whose flow an aggregate's nodes belong to."""
    if isinstance(aggregate, Budget):
        return aggregate.id
    if isinstance(aggregate, Contract | Grant):
        return aggregate.budget_id
    raise TypeError(f"{type(aggregate).__name__} has no place in a funding flow")
