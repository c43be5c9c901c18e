"""Treasury payments against a contract's accepted value."""

from __future__ import annotations

from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import Cursor, Ledger, Limit
from services.ledger.api.schemas import PaymentCreate, PaymentPage, PaymentRead, PaymentReversal
from services.ledger.api.views import payment_view

router = APIRouter(
    dependencies=[Authenticated],
    prefix="/contracts/{contract_id}/payments",
    tags=["payments"],
    responses=PROBLEM_RESPONSES,
)


@router.post("", operation_id="recordPayment", status_code=201, responses=found_again(PaymentRead))
def record_payment(
    contract_id: UUID, body: PaymentCreate, ledger: Ledger, caller: CurrentActor, response: Response
) -> PaymentRead:
    """Record a payment; the same treasury reference again returns the first payment."""
    contract, payment, is_new = ledger.record_payment(
        contract_id,
        reference=body.reference,
        amount_fen=body.amount.fen,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(
        response, is_new, f"/contracts/{contract.id}/payments/{quote(payment.reference, safe='')}"
    )
    return payment_view(contract.id, payment)


@router.get("", operation_id="listPayments")
def list_payments(
    contract_id: UUID, ledger: Ledger, caller: CurrentActor, limit: Limit = 100, cursor: Cursor = 0
) -> PaymentPage:
    """List a contract's payments in the order recorded."""
    payments = list(ledger.get_contract(contract_id, by=caller).payments.values())
    page = payments[cursor : cursor + limit]
    more = cursor + limit < len(payments)
    return PaymentPage(
        items=[payment_view(contract_id, p) for p in page],
        next_cursor=cursor + limit if more else None,
    )


@router.get("/{reference}", operation_id="getPayment")
def get_payment(
    contract_id: UUID, reference: str, ledger: Ledger, caller: CurrentActor
) -> PaymentRead:
    """Read one payment by its treasury reference."""
    return payment_view(contract_id, ledger.get_contract(contract_id, by=caller).payment(reference))


@router.post("/{reference}/reversal", operation_id="reversePayment", status_code=201)
def reverse_payment(
    contract_id: UUID, reference: str, body: PaymentReversal, ledger: Ledger, caller: CurrentActor
) -> PaymentRead:
    """Reverse a payment, with a reason; the original stays on record."""
    contract, payment = ledger.reverse_payment(
        contract_id, reference, reason=body.reason, occurred_at=body.occurred_at, by=caller
    )
    return payment_view(contract.id, payment)
