"""Domain objects to the API's Read models."""

from __future__ import annotations

from uuid import UUID

from proto.money import Money
from services.ledger.api.schemas import (
    AllocationRead,
    BudgetRead,
    ContractRead,
    DeliveryRead,
    FundingSourceRead,
    PaymentRead,
)
from services.ledger.domain.budget import Budget
from services.ledger.domain.contract import Contract, Delivery, Payment

money = Money.from_fen


def budget_view(budget: Budget) -> BudgetRead:
    """A budget with its figures and allocations."""
    return BudgetRead(
        id=budget.id,
        version=budget.version,
        holder_id=budget.holder_id,
        reference=budget.reference,
        year=budget.year,
        purpose=budget.purpose,
        title=budget.title,
        opened_at=budget.opened_at,
        sources=[
            FundingSourceRead(kind=kind.value, name=name, amount=money(amount))
            for name, (kind, amount) in budget.sources.items()
        ],
        appropriation=money(budget.appropriation_fen),
        allocated=money(budget.allocated_fen),
        unallocated=money(budget.unallocated_fen),
        committed=money(budget.committed_fen),
        allocations=[
            AllocationRead(
                id=a.id,
                street_office_id=a.street_office_id,
                amount=money(a.amount_fen),
                committed=money(a.committed_fen),
                available=money(a.available_fen),
            )
            for a in budget.allocations.values()
        ],
    )


def contract_view(contract: Contract) -> ContractRead:
    """A contract with its running figures."""
    return ContractRead(
        id=contract.id,
        version=contract.version,
        reference=contract.reference,
        title=contract.title,
        state=contract.state.value,
        project_id=contract.project_id,
        variation=contract.variation,
        budget_id=contract.budget_id,
        allocation_id=contract.allocation_id,
        purchaser_id=contract.purchaser_id,
        implementer_id=contract.implementer_id,
        provider_id=contract.provider_id,
        item_ids=contract.item_ids,
        value=money(contract.value_fen),
        period_start=contract.period_start,
        period_end=contract.period_end,
        signed_at=contract.signed_at,
        committed=money(contract.committed_fen),
        accepted=money(contract.accepted_fen),
        pending=money(contract.pending_fen),
        paid=money(contract.paid_fen),
        unpaid_accepted=money(contract.unpaid_accepted_fen),
        deliveries=len(contract.deliveries),
        payments=len(contract.payments),
    )


def delivery_view(contract_id: UUID, delivery: Delivery) -> DeliveryRead:
    """One delivery and the decision on it."""
    return DeliveryRead(
        id=delivery.id,
        contract_id=contract_id,
        reference=delivery.reference,
        state=delivery.state.value,
        period_start=delivery.period_start,
        period_end=delivery.period_end,
        quantity=delivery.quantity,
        unit=delivery.unit,
        amount=money(delivery.amount_fen),
        accepted=money(delivery.accepted_fen),
        score=delivery.score,
        decision_note=delivery.decision_note,
        evidence_sha256=list(delivery.evidence_sha256),
        beneficiary_digests=list(delivery.beneficiary_digests),
        description=delivery.description,
        reported_at=delivery.reported_at,
        decided_at=delivery.decided_at,
    )


def payment_view(contract_id: UUID, payment: Payment) -> PaymentRead:
    """One payment, reversed or not."""
    return PaymentRead(
        contract_id=contract_id,
        reference=payment.reference,
        amount=money(payment.amount_fen),
        paid_at=payment.paid_at,
        reversed=payment.is_reversed,
        reversed_reason=payment.reversed_reason,
        reversed_at=payment.reversed_at,
    )
