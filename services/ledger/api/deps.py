"""Dependencies the ledger's routers share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from services.common.wire import EARLIEST, LATEST, MAX_POSITION, Moment
from services.ledger.application import LedgerApplication


# The dependencies that do no I/O are `async def`: FastAPI runs a plain `def` one in a worker
# thread, and that hop cost more CPU per request than the dependency itself.
async def get_ledger(request: Request) -> LedgerApplication:
    """The application built by `create_app` for this process."""
    ledger: LedgerApplication = request.app.state.ledger
    return ledger


Ledger = Annotated[LedgerApplication, Depends(get_ledger)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Cursor = Annotated[
    int, Query(ge=0, le=MAX_POSITION, description="`next_cursor` of the previous page")
]
AsOf = Annotated[
    Moment | None,
    Query(description="Business time: the state as it was true at this moment (with timezone)"),
]


async def _known_at(
    known_at: Annotated[
        str | None,
        Query(
            description="Record time: the state as the ledger knew it at this moment (with "
            "timezone), or at this feed position (an integer)",
            examples=["2014-12-31T23:59:59+08:00", "1200"],
        ),
    ] = None,
) -> int | datetime | None:
    if known_at is None:
        return None
    if known_at.isdigit():
        # A position past the head names the whole feed; capping keeps it within the database.
        return min(int(known_at), MAX_POSITION)
    try:
        moment = datetime.fromisoformat(known_at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or not EARLIEST <= moment <= LATEST:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "known_at"),
                    "msg": "known_at must be a feed position (an integer) or a datetime with "
                    "a timezone, e.g. 2014-12-31T23:59:59+08:00",
                    "type": "known_at",
                }
            ]
        )
    return moment


KnownAt = Annotated[int | datetime | None, Depends(_known_at)]
