"""Deliveries under a contract, and the purchaser's decisions on them."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import Cursor, Ledger, Limit
from services.ledger.api.schemas import (
    AcceptanceReversal,
    DeliveryAcceptance,
    DeliveryCreate,
    DeliveryPage,
    DeliveryRead,
    DeliveryRejection,
)
from services.ledger.api.views import delivery_view

router = APIRouter(
    dependencies=[Authenticated],
    prefix="/contracts/{contract_id}/deliveries",
    tags=["deliveries"],
    responses=PROBLEM_RESPONSES,
)


@router.post(
    "", operation_id="reportDelivery", status_code=201, responses=found_again(DeliveryRead)
)
def report_delivery(
    contract_id: UUID,
    body: DeliveryCreate,
    ledger: Ledger,
    caller: CurrentActor,
    response: Response,
) -> DeliveryRead:
    """Report service delivered under an active contract."""
    contract, delivery, is_new = ledger.report_delivery(
        contract_id,
        reference=body.reference,
        period_start=body.period_start,
        period_end=body.period_end,
        quantity=body.quantity,
        unit=body.unit,
        amount_fen=body.amount.fen,
        evidence_sha256=body.evidence_sha256,
        beneficiaries=body.beneficiaries,
        description=body.description,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/contracts/{contract.id}/deliveries/{delivery.id}")
    return delivery_view(contract.id, delivery)


@router.get("", operation_id="listDeliveries")
def list_deliveries(
    contract_id: UUID, ledger: Ledger, caller: CurrentActor, limit: Limit = 100, cursor: Cursor = 0
) -> DeliveryPage:
    """List a contract's deliveries in the order reported."""
    deliveries = list(ledger.get_contract(contract_id, by=caller).deliveries.values())
    page = deliveries[cursor : cursor + limit]
    more = cursor + limit < len(deliveries)
    return DeliveryPage(
        items=[delivery_view(contract_id, d) for d in page],
        next_cursor=cursor + limit if more else None,
    )


@router.get("/{delivery_id}", operation_id="getDelivery")
def get_delivery(
    contract_id: UUID, delivery_id: UUID, ledger: Ledger, caller: CurrentActor
) -> DeliveryRead:
    """Read one delivery."""
    return delivery_view(
        contract_id, ledger.get_contract(contract_id, by=caller).delivery(delivery_id)
    )


@router.post("/{delivery_id}/acceptance", operation_id="acceptDelivery", status_code=201)
def accept_delivery(
    contract_id: UUID,
    delivery_id: UUID,
    body: DeliveryAcceptance,
    ledger: Ledger,
    caller: CurrentActor,
) -> DeliveryRead:
    """Accept a delivery, in full or in part."""
    contract, delivery = ledger.accept_delivery(
        contract_id,
        delivery_id,
        amount_fen=body.amount.fen if body.amount else None,
        score=body.score,
        note=body.note,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return delivery_view(contract.id, delivery)


@router.post("/{delivery_id}/rejection", operation_id="rejectDelivery", status_code=201)
def reject_delivery(
    contract_id: UUID,
    delivery_id: UUID,
    body: DeliveryRejection,
    ledger: Ledger,
    caller: CurrentActor,
) -> DeliveryRead:
    """Reject a delivery, with a reason."""
    contract, delivery = ledger.reject_delivery(
        contract_id,
        delivery_id,
        reason=body.reason,
        score=body.score,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return delivery_view(contract.id, delivery)


@router.post(
    "/{delivery_id}/acceptance-reversal", operation_id="reverseAcceptance", status_code=201
)
def reverse_acceptance(
    contract_id: UUID,
    delivery_id: UUID,
    body: AcceptanceReversal,
    ledger: Ledger,
    caller: CurrentActor,
) -> DeliveryRead:
    """Correct a mistaken acceptance, with a reason."""
    contract, delivery = ledger.reverse_acceptance(
        contract_id, delivery_id, reason=body.reason, occurred_at=body.occurred_at, by=caller
    )
    return delivery_view(contract.id, delivery)
