"""The catalog's feed: every change in commit order, in the ledger's envelope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from proto.feed import FeedPage
from services.catalog.api.deps import CatalogDep
from services.catalog.api.history import feed_entry
from services.common.auth import Authenticated
from services.common.http import After
from services.common.problems import PROBLEM_RESPONSES

router = APIRouter(dependencies=[Authenticated], tags=["events"], responses=PROBLEM_RESPONSES)


@router.get("/events", operation_id="readCatalogFeed")
async def read_feed(
    catalog: CatalogDep,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FeedPage:
    """Every change in commit order, with dense positions."""
    changes, head = await catalog.store.feed(after, limit)
    return FeedPage.of([feed_entry(c) for c in changes], after=after, head=head)
