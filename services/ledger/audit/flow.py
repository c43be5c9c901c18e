"""The funding flow of a budget: appropriation, allocations, commitments, deliveries, payments.

One answer reflects one feed position: the head is read first and every aggregate is then
loaded as the ledger knew it there, so a write racing the read can never show half of itself
(a contract's completion without its budget's release). Each aggregate is loaded once; the
figures are summed here from the leaves up, in integer fen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from proto.actor import Actor
from proto.audit import BudgetFlow, FlowKind, FlowNode
from proto.money import Money
from services.common.permissions import require_role
from services.ledger.application import LedgerApplication
from services.ledger.application.access import OVERSEERS
from services.ledger.application.base import KnownAt, Page
from services.ledger.domain.budget import Allocation, Budget
from services.ledger.domain.contract import Contract, Delivery, Payment
from services.ledger.domain.grant import Grant, Tranche

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
    "state": None,
    "occurred_at": None,
    "holder_id": None,
    "street_office_id": None,
    "implementer_id": None,
    "provider_id": None,
    "item_ids": [],
    "children": [],
}


def _figures(
    *,
    amount: int | None = None,
    appropriated: int | None = None,
    allocated: int | None = None,
    committed: int | None = None,
    released: int | None = None,
    accepted: int | None = None,
    paid: int | None = None,
    remaining: int | None = None,
) -> dict[str, Money | None]:
    """Figures in fen as wire money; those not given do not apply at the node (null)."""
    given = {
        "amount": amount,
        "appropriated": appropriated,
        "allocated": allocated,
        "committed": committed,
        "released": released,
        "accepted": accepted,
        "paid": paid,
    }
    figures = {name: None if fen is None else Money.from_fen(fen) for name, fen in given.items()}
    figures["remaining"] = figures["overdrawn"] = None
    if remaining is not None:
        # Money is never negative on the wire: a shortfall is shown as such, not failed on.
        figures["remaining"] = Money.from_fen(max(remaining, 0))
        figures["overdrawn"] = Money.from_fen(-remaining) if remaining < 0 else None
    return figures


def _node(
    kind: FlowKind, node_id: str, figures: dict[str, Money | None], **details: object
) -> FlowNode:
    return FlowNode.model_validate(
        {**_BLANK, **details, **figures, "kind": kind, "level": LEVELS[kind], "id": node_id}
    )


def _sum(children: list[FlowNode], figure: str) -> int:
    total = 0
    for child in children:
        money = getattr(child, figure)
        total += money.fen if money is not None else 0
    return total


def delivery_node(delivery: Delivery) -> FlowNode:
    """A delivery: what its report claimed, and what of it the purchaser accepted."""
    return _node(
        "delivery",
        str(delivery.id),
        _figures(amount=delivery.amount_fen, accepted=delivery.accepted_fen),
        reference=delivery.reference,
        state=delivery.state.value,
        occurred_at=delivery.reported_at,
    )


def payment_node(payment: Payment) -> FlowNode:
    """A contract's payment: its amount, counted as paid unless it was reversed."""
    return _node(
        "payment",
        payment.reference,
        _figures(amount=payment.amount_fen, paid=0 if payment.is_reversed else payment.amount_fen),
        reference=payment.reference,
        state="reversed" if payment.is_reversed else "paid",
        occurred_at=payment.paid_at,
    )


def tranche_node(tranche: Tranche) -> FlowNode:
    """A grant's tranche: paid out when disbursed."""
    return _node(
        "tranche",
        tranche.reference,
        _figures(amount=tranche.amount_fen, paid=tranche.amount_fen),
        reference=tranche.reference,
        state="disbursed",
        occurred_at=tranche.disbursed_at,
    )


def contract_node(contract: Contract) -> FlowNode:
    """A contract with its deliveries and payments; its figures are the contract's own."""
    return _node(
        "contract",
        str(contract.id),
        _figures(
            amount=contract.value_fen,
            committed=contract.committed_fen,
            released=contract.release.amount_fen if contract.release else 0,
            accepted=contract.accepted_fen,
            paid=contract.paid_fen,
            remaining=contract.committed_fen - contract.paid_fen,
        ),
        reference=contract.reference,
        title=contract.title,
        state=contract.state.value,
        occurred_at=contract.signed_at,
        street_office_id=contract.purchaser_id,
        implementer_id=contract.implementer_id,
        provider_id=contract.provider_id,
        item_ids=list(contract.item_ids),
        children=[delivery_node(d) for d in contract.deliveries.values()]
        + [payment_node(p) for p in contract.payments.values()],
    )


def grant_node(grant: Grant) -> FlowNode:
    """A grant with its tranches; accepted is the spending its latest report on use states."""
    return _node(
        "grant",
        str(grant.id),
        _figures(
            amount=grant.amount_fen,
            committed=grant.committed_fen,
            released=grant.released_fen,
            accepted=grant.spent_fen,
            paid=grant.disbursed_fen,
            remaining=grant.committed_fen - grant.disbursed_fen,
        ),
        reference=grant.reference,
        title=grant.purpose,
        state=grant.state.value,
        occurred_at=grant.awarded_at,
        street_office_id=grant.grantor_id,
        provider_id=grant.grantee_id,
        children=[tranche_node(t) for t in grant.tranches.values()],
    )


def allocation_node(allocation: Allocation, commitments: list[FlowNode]) -> FlowNode:
    """An allocation: committed as the budget records it, the rest summed from its children."""
    return _node(
        "allocation",
        str(allocation.id),
        _figures(
            allocated=allocation.amount_fen,
            committed=allocation.committed_fen,
            released=_sum(commitments, "released"),
            accepted=_sum(commitments, "accepted"),
            paid=_sum(commitments, "paid"),
            remaining=allocation.amount_fen - allocation.committed_fen,
        ),
        street_office_id=allocation.street_office_id,
        children=commitments,
    )


def budget_node(budget: Budget, allocations: list[FlowNode]) -> FlowNode:
    """The root: the budget's appropriation and allocations, the rest summed from below."""
    return _node(
        "budget",
        str(budget.id),
        _figures(
            appropriated=budget.appropriation_fen,
            allocated=budget.allocated_fen,
            committed=budget.committed_fen,
            released=_sum(allocations, "released"),
            accepted=_sum(allocations, "accepted"),
            paid=_sum(allocations, "paid"),
            remaining=budget.appropriation_fen - budget.committed_fen,
        ),
        reference=budget.reference,
        title=budget.title,
        occurred_at=budget.opened_at,
        holder_id=budget.holder_id,
        children=allocations,
    )


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


def budget_flow(
    ledger: LedgerApplication,
    budget_id: UUID,
    *,
    by: Actor,
    as_of: datetime | None = None,
    known_at: KnownAt | None = None,
) -> BudgetFlow:
    """A budget's funding flow as of a business time, as known at a record time or position."""
    require_role(by, OVERSEERS, "read a budget's funding flow")
    position = reflected_position(ledger, known_at)
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
    allocations: list[FlowNode] = []
    for allocation in budget.allocations.values():
        commitments: list[FlowNode] = []
        for holder_id in allocation.commitments:
            if holder_id in contract_ids:
                contract = ledger.get_contract(holder_id, by=by, as_of=as_of, known_at=position)
                commitments.append(contract_node(contract))
            else:
                grant = ledger.get_grant(holder_id, by=by, as_of=as_of, known_at=position)
                commitments.append(grant_node(grant))
        allocations.append(allocation_node(allocation, commitments))
    return BudgetFlow(
        budget_id=budget.id,
        position=position,
        as_of=as_of,
        budget=budget_node(budget, allocations),
    )
