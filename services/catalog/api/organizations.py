"""Organizations: district bureaus, street offices, communities and providers."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from proto.catalog import Change, Organization, OrganizationKind
from services.catalog.api.deps import AsOf, CatalogDep, Cursor, Ids, Limit
from services.catalog.api.history import changes
from services.catalog.api.schemas import OrganizationCreate, OrganizationPage
from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES

router = APIRouter(
    dependencies=[Authenticated],
    prefix="/organizations",
    tags=["organizations"],
    responses=PROBLEM_RESPONSES,
)


@router.post(
    "", operation_id="registerOrganization", status_code=201, responses=found_again(Organization)
)
async def register_organization(
    body: OrganizationCreate, catalog: CatalogDep, caller: CurrentActor, response: Response
) -> Organization:
    """Register a district bureau, street office, community or provider."""
    organization, is_new = await catalog.register_organization(
        kind=body.kind,
        name=body.name,
        code=body.code,
        street_office_id=body.street_office_id,
        registration=body.registration,
        contact=body.contact,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/organizations/{organization.id}")
    return organization


@router.get("", operation_id="listOrganizations")
async def list_organizations(
    catalog: CatalogDep,
    ids: Ids = None,
    kind: OrganizationKind | None = None,
    street_office_id: UUID | None = None,
    as_of: AsOf = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> OrganizationPage:
    """List organizations, by kind, street office or ids; now or as of a time."""
    found, next_cursor = await catalog.find(
        Organization,
        ids=ids,
        kind=kind.value if kind else None,
        parent_id=street_office_id,
        as_of=as_of,
        after=cursor,
        limit=limit,
    )
    return OrganizationPage(items=found, next_cursor=next_cursor)


@router.get("/{organization_id}", operation_id="getOrganization")
async def get_organization(
    organization_id: UUID, catalog: CatalogDep, as_of: AsOf = None
) -> Organization:
    """Read an organization, now or as of a business time."""
    return await catalog.get(Organization, organization_id, as_of)


@router.get("/{organization_id}/history", operation_id="organizationHistory")
async def organization_history(organization_id: UUID, catalog: CatalogDep) -> list[Change]:
    """Every version of an organization."""
    return changes(await catalog.history(Organization, organization_id))
