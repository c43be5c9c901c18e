"""Service items (事项) and their admission (准入)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from proto.catalog import Change, ItemKind, ItemStatus, ServiceItem
from services.catalog.api.deps import AsOf, CatalogDep, Cursor, Ids, Limit
from services.catalog.api.history import changes
from services.catalog.api.schemas import Action, Decision, ItemAdmission, ItemPage, ItemProposal
from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES

router = APIRouter(
    dependencies=[Authenticated], prefix="/items", tags=["items"], responses=PROBLEM_RESPONSES
)


@router.post("", operation_id="proposeItem", status_code=201, responses=found_again(ServiceItem))
async def propose_item(
    body: ItemProposal, catalog: CatalogDep, caller: CurrentActor, response: Response
) -> ServiceItem:
    """A district department proposes an item for communities."""
    item, is_new = await catalog.propose_item(
        name=body.name,
        code=body.code,
        description=body.description,
        kind=body.kind,
        domain=body.domain,
        target_groups=body.target_groups,
        delivery_modes=body.delivery_modes,
        duty_list=body.duty_list,
        push_down_category=body.push_down_category,
        standard_unit_price=body.standard_unit_price,
        proposed_by=body.proposed_by,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/items/{item.id}")
    return item


@router.post("/{item_id}/review", operation_id="startItemReview", status_code=201)
async def start_review(
    item_id: UUID, body: Action, catalog: CatalogDep, caller: CurrentActor
) -> ServiceItem:
    """Put a proposed item under review."""
    return await catalog.start_review(item_id, occurred_at=body.occurred_at, by=caller)


@router.post("/{item_id}/admission", operation_id="admitItem", status_code=201)
async def admit_item(
    item_id: UUID, body: ItemAdmission, catalog: CatalogDep, caller: CurrentActor
) -> ServiceItem:
    """Admit a reviewed item, with the funding it brings per source and year."""
    return await catalog.admit(
        item_id, funding=body.funding, occurred_at=body.occurred_at, by=caller
    )


@router.post("/{item_id}/rejection", operation_id="rejectItem", status_code=201)
async def reject_item(
    item_id: UUID, body: Decision, catalog: CatalogDep, caller: CurrentActor
) -> ServiceItem:
    """Reject a proposed or reviewed item, with a reason."""
    return await catalog.reject(
        item_id, reason=body.reason, occurred_at=body.occurred_at, by=caller
    )


@router.post("/{item_id}/retirement", operation_id="retireItem", status_code=201)
async def retire_item(
    item_id: UUID, body: Decision, catalog: CatalogDep, caller: CurrentActor
) -> ServiceItem:
    """Retire an admitted item, with a reason; it can no longer be contracted."""
    return await catalog.retire(
        item_id, reason=body.reason, occurred_at=body.occurred_at, by=caller
    )


@router.get("", operation_id="listItems")
async def list_items(
    catalog: CatalogDep,
    ids: Ids = None,
    kind: ItemKind | None = None,
    status: ItemStatus | None = None,
    as_of: AsOf = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> ItemPage:
    """List items by kind, status or ids; now or as of a time."""
    found, next_cursor = await catalog.find(
        ServiceItem,
        ids=ids,
        kind=kind.value if kind else None,
        status=status.value if status else None,
        as_of=as_of,
        after=cursor,
        limit=limit,
    )
    return ItemPage(items=found, next_cursor=next_cursor)


@router.get("/{item_id}", operation_id="getItem")
async def get_item(item_id: UUID, catalog: CatalogDep, as_of: AsOf = None) -> ServiceItem:
    """Read an item, now or as of a business time."""
    return await catalog.get(ServiceItem, item_id, as_of)


@router.get("/{item_id}/history", operation_id="itemHistory")
async def item_history(item_id: UUID, catalog: CatalogDep) -> list[Change]:
    """Every version of an item: proposal, review, decision, retirement."""
    return changes(await catalog.history(ServiceItem, item_id))
