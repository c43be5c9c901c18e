"""Dependencies the notifier's routers share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from services.common.wire import MAX_POSITION
from services.notifier.subscriptions import Subscriptions


async def get_subscriptions(request: Request) -> Subscriptions:
    """The use cases built at startup (`app.state.subscriptions`)."""
    subscriptions: Subscriptions = request.app.state.subscriptions
    return subscriptions


SubscriptionsDep = Annotated[Subscriptions, Depends(get_subscriptions)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Cursor = Annotated[
    int, Query(ge=0, le=MAX_POSITION, description="`next_cursor` of the previous page")
]
