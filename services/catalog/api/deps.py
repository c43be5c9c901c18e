"""Dependencies the catalog's routers share."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request

from services.catalog.application import Catalog
from services.common.wire import MAX_POSITION, Moment


async def get_catalog(request: Request) -> Catalog:
    """The catalog built by `create_app` for this process."""
    catalog: Catalog = request.app.state.catalog
    return catalog


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
AsOf = Annotated[
    Moment | None,
    Query(description="Business time: the record as it stood at this moment (with timezone)"),
]
Ids = Annotated[list[UUID] | None, Query(max_length=200, description="Only these records")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[
    int, Query(ge=0, le=MAX_POSITION, description="`next_cursor` of the previous page")
]
