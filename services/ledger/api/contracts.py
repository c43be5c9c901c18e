"""Contracts and their life cycle."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import AsOf, Cursor, KnownAt, Ledger, Limit
from services.ledger.api.schemas import (
    Action,
    ContractCreate,
    ContractPage,
    ContractRead,
    ContractTermination,
)
from services.ledger.api.views import contract_view

router = APIRouter(
    dependencies=[Authenticated],
    prefix="/contracts",
    tags=["contracts"],
    responses=PROBLEM_RESPONSES,
)


@router.post("", operation_id="signContract", status_code=201, responses=found_again(ContractRead))
def sign_contract(
    body: ContractCreate, ledger: Ledger, caller: CurrentActor, response: Response
) -> ContractRead:
    """Record a signed tri-party contract, committing its value against the allocation."""
    contract, is_new = ledger.sign_contract(
        reference=body.reference,
        title=body.title,
        project_id=body.project_id,
        variation=body.variation,
        budget_id=body.budget_id,
        allocation_id=body.allocation_id,
        purchaser_id=body.purchaser_id,
        implementer_id=body.implementer_id,
        provider_id=body.provider_id,
        item_ids=body.item_ids,
        value_fen=body.value.fen,
        period_start=body.period_start,
        period_end=body.period_end,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/contracts/{contract.id}")
    return contract_view(contract)


@router.get("", operation_id="listContracts")
def list_contracts(
    ledger: Ledger,
    caller: CurrentActor,
    budget_id: UUID | None = None,
    purchaser_id: UUID | None = None,
    implementer_id: UUID | None = None,
    provider_id: UUID | None = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> ContractPage:
    """List contracts, oldest first, by budget and parties."""
    page = ledger.list_contracts(
        budget_id=budget_id,
        purchaser_id=purchaser_id,
        implementer_id=implementer_id,
        provider_id=provider_id,
        after=cursor,
        limit=limit,
        by=caller,
    )
    return ContractPage(
        items=[contract_view(ledger.get_contract(i, by=caller)) for i in page.ids],
        next_cursor=page.next_cursor,
    )


@router.get("/{contract_id}", operation_id="getContract")
def get_contract(
    contract_id: UUID, ledger: Ledger, caller: CurrentActor, known_at: KnownAt, as_of: AsOf = None
) -> ContractRead:
    """Read a contract now, as of a business time, or as known at a record time or position."""
    return contract_view(
        ledger.get_contract(contract_id, as_of=as_of, known_at=known_at, by=caller)
    )


@router.post("/{contract_id}/activation", operation_id="activateContract", status_code=201)
def activate_contract(
    contract_id: UUID, body: Action, ledger: Ledger, caller: CurrentActor
) -> ContractRead:
    """Start the service of a signed contract."""
    return contract_view(
        ledger.activate_contract(contract_id, occurred_at=body.occurred_at, by=caller)
    )


@router.post("/{contract_id}/completion", operation_id="completeContract", status_code=201)
def complete_contract(
    contract_id: UUID, body: Action, ledger: Ledger, caller: CurrentActor
) -> ContractRead:
    """Close a fulfilled contract, releasing its unspent value to the allocation."""
    return contract_view(
        ledger.complete_contract(contract_id, occurred_at=body.occurred_at, by=caller)
    )


@router.post("/{contract_id}/termination", operation_id="terminateContract", status_code=201)
def terminate_contract(
    contract_id: UUID, body: ContractTermination, ledger: Ledger, caller: CurrentActor
) -> ContractRead:
    """End a contract early, with a reason, releasing its unspent value."""
    contract = ledger.terminate_contract(
        contract_id, reason=body.reason, occurred_at=body.occurred_at, by=caller
    )
    return contract_view(contract)
