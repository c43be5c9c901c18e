"""Service platforms (服务平台): where a community's services are offered."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from proto.catalog import Platform
from services.catalog.api.deps import AsOf, CatalogDep, Cursor, Ids, Limit
from services.catalog.api.schemas import PlatformCreate, PlatformPage
from services.common.auth import Authenticated, CurrentActor
from services.common.problems import PROBLEM_RESPONSES

router = APIRouter(
    dependencies=[Authenticated],
    prefix="/platforms",
    tags=["platforms"],
    responses=PROBLEM_RESPONSES,
)


@router.post("", operation_id="openPlatform", status_code=201)
async def open_platform(
    body: PlatformCreate, catalog: CatalogDep, caller: CurrentActor
) -> Platform:
    """Open a platform of a community, with the items and providers it hosts."""
    return await catalog.open_platform(
        community_id=body.community_id,
        name=body.name,
        type=body.type,
        location=body.location,
        opening_hours=body.opening_hours,
        contact=body.contact,
        item_ids=body.item_ids,
        provider_ids=body.provider_ids,
        occurred_at=body.occurred_at,
        by=caller,
    )


@router.get("", operation_id="listPlatforms")
async def list_platforms(
    catalog: CatalogDep,
    ids: Ids = None,
    community_id: UUID | None = None,
    as_of: AsOf = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> PlatformPage:
    """List platforms, of one community, by ids, or all."""
    found, next_cursor = await catalog.find(
        Platform, ids=ids, parent_id=community_id, as_of=as_of, after=cursor, limit=limit
    )
    return PlatformPage(items=found, next_cursor=next_cursor)


@router.get("/{platform_id}", operation_id="getPlatform")
async def get_platform(platform_id: UUID, catalog: CatalogDep, as_of: AsOf = None) -> Platform:
    """Read a platform."""
    return await catalog.get(Platform, platform_id, as_of)
