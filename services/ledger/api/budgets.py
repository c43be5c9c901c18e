"""Budgets and their allocations."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import AsOf, Cursor, KnownAt, Ledger, Limit
from services.ledger.api.schemas import (
    AllocationAdjustmentCreate,
    AllocationCreate,
    BudgetAdjustmentCreate,
    BudgetCreate,
    BudgetPage,
    BudgetRead,
)
from services.ledger.api.views import budget_view
from services.ledger.domain.budget import Direction, SourceKind

router = APIRouter(
    dependencies=[Authenticated], prefix="/budgets", tags=["budgets"], responses=PROBLEM_RESPONSES
)


@router.post("", operation_id="openBudget", status_code=201, responses=found_again(BudgetRead))
def open_budget(
    body: BudgetCreate, ledger: Ledger, caller: CurrentActor, response: Response
) -> BudgetRead:
    """Open a year's budget from its funding sources."""
    budget, is_new = ledger.open_budget(
        reference=body.reference,
        year=body.year,
        purpose=body.purpose,
        title=body.title,
        sources=[(SourceKind(s.kind), s.name, s.amount.fen) for s in body.sources],
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/budgets/{budget.id}")
    return budget_view(budget)


@router.get("", operation_id="listBudgets")
def list_budgets(
    ledger: Ledger,
    caller: CurrentActor,
    year: Annotated[int | None, Query(ge=1949, le=2200)] = None,
    purpose: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> BudgetPage:
    """List budgets, oldest first."""
    page = ledger.list_budgets(year=year, purpose=purpose, after=cursor, limit=limit)
    return BudgetPage(
        items=[budget_view(ledger.get_budget(i, by=caller)) for i in page.ids],
        next_cursor=page.next_cursor,
    )


@router.get("/{budget_id}", operation_id="getBudget")
def get_budget(
    budget_id: UUID, ledger: Ledger, caller: CurrentActor, known_at: KnownAt, as_of: AsOf = None
) -> BudgetRead:
    """Read a budget now, as of a business time, or as known at a record time or position."""
    return budget_view(ledger.get_budget(budget_id, as_of=as_of, known_at=known_at, by=caller))


@router.post("/{budget_id}/adjustments", operation_id="adjustBudget", status_code=201)
def adjust_budget(
    budget_id: UUID, body: BudgetAdjustmentCreate, ledger: Ledger, caller: CurrentActor
) -> BudgetRead:
    """Raise or lower the appropriation through one funding source, with a reason."""
    budget = ledger.adjust_budget(
        budget_id,
        source_name=body.source_name,
        source_kind=SourceKind(body.source_kind) if body.source_kind else None,
        direction=Direction(body.direction),
        amount_fen=body.amount.fen,
        reason=body.reason,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return budget_view(budget)


@router.post(
    "/{budget_id}/allocations",
    operation_id="allocate",
    status_code=201,
    responses=found_again(BudgetRead),
)
def allocate(
    budget_id: UUID,
    body: AllocationCreate,
    ledger: Ledger,
    caller: CurrentActor,
    response: Response,
) -> BudgetRead:
    """Allocate part of the budget to a street office."""
    budget, allocation, is_new = ledger.allocate(
        budget_id,
        street_office_id=body.street_office_id,
        amount_fen=body.amount.fen,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/budgets/{budget.id}#allocation-{allocation.id}")
    return budget_view(budget)


@router.post(
    "/{budget_id}/allocations/{allocation_id}/adjustments",
    operation_id="adjustAllocation",
    status_code=201,
)
def adjust_allocation(
    budget_id: UUID,
    allocation_id: UUID,
    body: AllocationAdjustmentCreate,
    ledger: Ledger,
    caller: CurrentActor,
) -> BudgetRead:
    """Enlarge or shrink an allocation, with a reason."""
    budget = ledger.adjust_allocation(
        budget_id,
        allocation_id,
        direction=Direction(body.direction),
        amount_fen=body.amount.fen,
        reason=body.reason,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return budget_view(budget)
