"""Webhook subscriptions: what to send where, and the secret that signs it."""

from __future__ import annotations

from dataclasses import asdict
from uuid import UUID

from fastapi import APIRouter, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.problems import PROBLEM_RESPONSES
from services.notifier.api.deps import Cursor, Limit, SubscriptionsDep
from services.notifier.api.schemas import (
    SecretRotated,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPage,
    SubscriptionRead,
    SubscriptionUpdate,
)
from services.notifier.subscriptions import Subscription

router = APIRouter(
    dependencies=[Authenticated],
    prefix="/subscriptions",
    tags=["subscriptions"],
    responses=PROBLEM_RESPONSES,
)


def _read(subscription: Subscription) -> SubscriptionRead:
    return SubscriptionRead(**asdict(subscription))


@router.post("", operation_id="createSubscription", status_code=201)
async def create_subscription(
    body: SubscriptionCreate,
    subscriptions: SubscriptionsDep,
    caller: CurrentActor,
    response: Response,
) -> SubscriptionCreated:
    """Subscribe a URL to event types; the answer shows the signing secret, this once."""
    subscription, secret = await subscriptions.create(
        url=body.url,
        event_types=body.event_types,
        organization_id=body.organization_id,
        budget_id=body.budget_id,
        description=body.description,
        by=caller,
    )
    response.headers["Location"] = f"/subscriptions/{subscription.id}"
    # A secret, shown once: no cache keeps it, nor the Idempotency-Key store.
    response.headers["Cache-Control"] = "no-store"
    return SubscriptionCreated(**asdict(subscription), secret=secret)


@router.get("", operation_id="listSubscriptions")
async def list_subscriptions(
    subscriptions: SubscriptionsDep, caller: CurrentActor, limit: Limit = 100, cursor: Cursor = 0
) -> SubscriptionPage:
    """List the caller's organization's subscriptions (an auditor's: all), oldest first."""
    found, next_cursor = await subscriptions.find(by=caller, limit=limit, cursor=cursor)
    return SubscriptionPage(items=[_read(s) for s in found], next_cursor=next_cursor)


@router.get("/{subscription_id}", operation_id="getSubscription")
async def get_subscription(
    subscription_id: UUID, subscriptions: SubscriptionsDep, caller: CurrentActor
) -> SubscriptionRead:
    """Read one subscription, without its secret."""
    return _read(await subscriptions.get(subscription_id, by=caller))


@router.patch("/{subscription_id}", operation_id="updateSubscription")
async def update_subscription(
    subscription_id: UUID,
    body: SubscriptionUpdate,
    subscriptions: SubscriptionsDep,
    caller: CurrentActor,
) -> SubscriptionRead:
    """Change a subscription's URL, event types, filters, description or state."""
    return _read(await subscriptions.update(subscription_id, body.changes(), by=caller))


@router.delete(
    "/{subscription_id}",
    operation_id="deleteSubscription",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted; its pending deliveries are cancelled"}},
)
async def delete_subscription(
    subscription_id: UUID, subscriptions: SubscriptionsDep, caller: CurrentActor
) -> None:
    """Delete a subscription; what it still had to deliver is cancelled."""
    await subscriptions.delete(subscription_id, by=caller)


@router.post(
    "/{subscription_id}/secret-rotation", operation_id="rotateSubscriptionSecret", status_code=201
)
async def rotate_secret(
    subscription_id: UUID, subscriptions: SubscriptionsDep, caller: CurrentActor, response: Response
) -> SecretRotated:
    """Make a new signing secret, shown this once; the previous one signs too for a while."""
    subscription, secret = await subscriptions.rotate_secret(subscription_id, by=caller)
    response.headers["Cache-Control"] = "no-store"
    assert subscription.previous_secret_expires_at is not None
    return SecretRotated(
        subscription_id=subscription.id,
        secret=secret,
        previous_secret_expires_at=subscription.previous_secret_expires_at,
    )
