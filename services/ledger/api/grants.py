"""Grants, their tranches, reports on use, and their end."""

from __future__ import annotations

from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import AsOf, Cursor, KnownAt, Ledger, Limit
from services.ledger.api.grant_schemas import (
    GrantCreate,
    GrantPage,
    GrantRead,
    GrantRevocation,
    TrancheCreate,
    TrancheRead,
    UseReportCreate,
    UseReportRead,
)
from services.ledger.api.grant_views import grant_view, tranche_view, use_report_view
from services.ledger.api.schemas import Action

router = APIRouter(
    dependencies=[Authenticated], prefix="/grants", tags=["grants"], responses=PROBLEM_RESPONSES
)


@router.post("", operation_id="awardGrant", status_code=201, responses=found_again(GrantRead))
def award_grant(
    body: GrantCreate, ledger: Ledger, caller: CurrentActor, response: Response
) -> GrantRead:
    """Record an awarded grant, committing its amount against the allocation."""
    grant, is_new = ledger.award_grant(
        reference=body.reference,
        purpose=body.purpose,
        budget_id=body.budget_id,
        allocation_id=body.allocation_id,
        grantor_id=body.grantor_id,
        grantee_id=body.grantee_id,
        amount_fen=body.amount.fen,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/grants/{grant.id}")
    return grant_view(grant)


@router.get("", operation_id="listGrants")
def list_grants(
    ledger: Ledger,
    caller: CurrentActor,
    budget_id: UUID | None = None,
    grantor_id: UUID | None = None,
    grantee_id: UUID | None = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> GrantPage:
    """List grants, oldest first, by budget, grantor and grantee."""
    page = ledger.list_grants(
        budget_id=budget_id,
        grantor_id=grantor_id,
        grantee_id=grantee_id,
        after=cursor,
        limit=limit,
        by=caller,
    )
    return GrantPage(
        items=[grant_view(ledger.get_grant(i, by=caller)) for i in page.ids],
        next_cursor=page.next_cursor,
    )


@router.get("/{grant_id}", operation_id="getGrant")
def get_grant(
    grant_id: UUID, ledger: Ledger, caller: CurrentActor, known_at: KnownAt, as_of: AsOf = None
) -> GrantRead:
    """Read a grant now, as of a business time, or as known at a record time or position."""
    return grant_view(ledger.get_grant(grant_id, as_of=as_of, known_at=known_at, by=caller))


@router.post(
    "/{grant_id}/tranches",
    operation_id="disburseTranche",
    status_code=201,
    responses=found_again(TrancheRead),
)
def disburse_tranche(
    grant_id: UUID, body: TrancheCreate, ledger: Ledger, caller: CurrentActor, response: Response
) -> TrancheRead:
    """Record a tranche; the same treasury reference again returns the first tranche."""
    grant, tranche, is_new = ledger.disburse_tranche(
        grant_id,
        reference=body.reference,
        amount_fen=body.amount.fen,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/grants/{grant.id}#tranche-{quote(tranche.reference, safe='')}")
    return tranche_view(grant.id, tranche)


@router.post(
    "/{grant_id}/reports",
    operation_id="reportGrantUse",
    status_code=201,
    responses=found_again(UseReportRead),
)
def report_grant_use(
    grant_id: UUID, body: UseReportCreate, ledger: Ledger, caller: CurrentActor, response: Response
) -> UseReportRead:
    """Record the grantee's report on use; the same report again returns the first."""
    grant, report, is_new = ledger.report_grant_use(
        grant_id,
        report_sha256=body.report_sha256,
        summary=body.summary,
        spent_fen=body.spent.fen,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/grants/{grant.id}#report-{report.report_sha256}")
    return use_report_view(grant.id, report)


@router.post("/{grant_id}/closure", operation_id="closeGrant", status_code=201)
def close_grant(grant_id: UUID, body: Action, ledger: Ledger, caller: CurrentActor) -> GrantRead:
    """Close a grant reported on, releasing its undisbursed remainder to the allocation."""
    return grant_view(ledger.close_grant(grant_id, occurred_at=body.occurred_at, by=caller))


@router.post("/{grant_id}/revocation", operation_id="revokeGrant", status_code=201)
def revoke_grant(
    grant_id: UUID, body: GrantRevocation, ledger: Ledger, caller: CurrentActor
) -> GrantRead:
    """Revoke a grant before full disbursement, with a reason, releasing the undisbursed part."""
    grant = ledger.revoke_grant(
        grant_id, reason=body.reason, occurred_at=body.occurred_at, by=caller
    )
    return grant_view(grant)
