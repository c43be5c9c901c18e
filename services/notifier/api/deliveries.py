"""Deliveries of webhooks, their attempts, and re-sending the dead ones."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.problems import PROBLEM_RESPONSES
from services.common.wire import Moment
from services.notifier.api.deps import Cursor, Limit, SubscriptionsDep
from services.notifier.api.schemas import (
    AttemptPage,
    AttemptRead,
    DeliveryDetail,
    DeliveryPage,
    DeliveryRead,
    DeliveryState,
    Requeued,
    Resend,
)
from services.notifier.subscriptions import Delivery

router = APIRouter(dependencies=[Authenticated], tags=["deliveries"], responses=PROBLEM_RESPONSES)

Since = Annotated[
    Moment | None, Query(description="Only deliveries made at or after this time (with timezone)")
]


def _read(delivery: Delivery) -> DeliveryRead:
    fields = asdict(delivery)
    del fields["body"]
    return DeliveryRead(**fields)


@router.get("/subscriptions/{subscription_id}/deliveries", operation_id="listDeliveries")
async def list_deliveries(
    subscription_id: UUID,
    subscriptions: SubscriptionsDep,
    caller: CurrentActor,
    state: DeliveryState | None = None,
    since: Since = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> DeliveryPage:
    """List a subscription's deliveries, oldest first, by state and time made."""
    found, next_cursor = await subscriptions.list_deliveries(
        subscription_id, state=state, since=since, by=caller, limit=limit, cursor=cursor
    )
    return DeliveryPage(items=[_read(d) for d in found], next_cursor=next_cursor)


@router.post(
    "/subscriptions/{subscription_id}/resend", operation_id="resendDeadDeliveries", status_code=201
)
async def resend_dead_deliveries(
    subscription_id: UUID, body: Resend, subscriptions: SubscriptionsDep, caller: CurrentActor
) -> Requeued:
    """Queue again every dead delivery of a subscription made since a time; how many."""
    count = await subscriptions.resend_since(subscription_id, body.since, by=caller)
    return Requeued(subscription_id=subscription_id, requeued=count)


@router.get("/deliveries/{delivery_id}", operation_id="getDelivery")
async def get_delivery(
    delivery_id: UUID, subscriptions: SubscriptionsDep, caller: CurrentActor
) -> DeliveryDetail:
    """Read one delivery, with the body it sends."""
    return DeliveryDetail(**asdict(await subscriptions.get_delivery(delivery_id, by=caller)))


@router.get("/deliveries/{delivery_id}/attempts", operation_id="listDeliveryAttempts")
async def list_delivery_attempts(
    delivery_id: UUID,
    subscriptions: SubscriptionsDep,
    caller: CurrentActor,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> AttemptPage:
    """List a delivery's attempts, oldest first: when, status, latency, answer excerpt."""
    found, next_cursor = await subscriptions.list_attempts(
        delivery_id, by=caller, limit=limit, cursor=cursor
    )
    return AttemptPage(items=[AttemptRead(**asdict(a)) for a in found], next_cursor=next_cursor)


@router.post("/deliveries/{delivery_id}/resend", operation_id="resendDelivery", status_code=201)
async def resend_delivery(
    delivery_id: UUID, subscriptions: SubscriptionsDep, caller: CurrentActor, response: Response
) -> DeliveryRead:
    """Queue a dead delivery again, due now; its attempts so far stay on record."""
    delivery = await subscriptions.resend(delivery_id, by=caller)
    response.headers["Location"] = f"/deliveries/{delivery.id}"
    return _read(delivery)
