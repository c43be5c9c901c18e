"""The feed and per-stream histories: what auditors and followers read."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from proto.feed import FeedEntry, FeedPage
from services.common.auth import Authenticated, CurrentActor
from services.common.http import After
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import Ledger
from services.ledger.feed import feed_entry

router = APIRouter(dependencies=[Authenticated], tags=["events"], responses=PROBLEM_RESPONSES)


@router.get("/events", operation_id="readFeed", response_model=FeedPage)
def read_feed(
    ledger: Ledger,
    caller: CurrentActor,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Every event in commit order, with dense positions."""
    # Served as kept with the events, not decoded and validated again: auditors page through
    # millions of entries.
    page = ledger.feed_json(after=after, limit=limit, by=caller)
    return Response(page, media_type="application/json")


@router.get("/streams/{stream_id}/events", operation_id="readStream")
def read_stream(stream_id: UUID, ledger: Ledger, caller: CurrentActor) -> list[FeedEntry]:
    """One aggregate's whole history, in version order."""
    return [feed_entry(row, event) for row, event in ledger.stream_history(stream_id, by=caller)]
