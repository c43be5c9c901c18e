"""Request and response bodies of the notifier's REST API: separate Create and Read models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from services.common.wire import Moment

# Visible ASCII only: a host outside ASCII is given in its punycode form (xn--…).
Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048, pattern=r"^[\x21-\x7E]+$"),
    Field(
        description="Where to POST: http(s), no credentials, no fragment; private, loopback "
        "and link-local addresses only if the operator allows them",
        examples=["https://receiver.example.org/webhooks/ledger"],
    ),
]
EventPattern = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)$"),
    Field(
        description="An event type (`payment.recorded`), every type under a prefix "
        "(`payment.*`), or everything (`*`)",
        examples=["payment.recorded", "payment.*", "*"],
    ),
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^[^\x00]*$")
]
SubscriptionState = Literal["active", "disabled"]
DeliveryState = Literal["pending", "delivered", "dead", "cancelled"]


def _distinct(patterns: list[str]) -> list[str]:
    return list(dict.fromkeys(patterns))


EventPatterns = Annotated[
    list[EventPattern],
    Field(min_length=1, max_length=50, description="What to receive; repeats count once"),
    AfterValidator(_distinct),
]
OrganizationFilter = Annotated[
    UUID | None, Field(description="Only events naming this organization; null: any")
]
BudgetFilter = Annotated[UUID | None, Field(description="Only events of this budget; null: any")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- subscriptions --------------------------------------------------------------------------


class SubscriptionCreate(_Request):
    url: Url
    event_types: EventPatterns
    organization_id: OrganizationFilter = None
    budget_id: BudgetFilter = None
    description: Description = ""


class SubscriptionUpdate(_Request):
    """Only the fields given change; `null` clears a filter."""

    url: Url | SkipJsonSchema[None] = None
    event_types: EventPatterns | SkipJsonSchema[None] = None
    organization_id: OrganizationFilter = None
    budget_id: BudgetFilter = None
    description: Description | SkipJsonSchema[None] = None
    state: SubscriptionState | SkipJsonSchema[None] = Field(
        default=None,
        description="`disabled` stops deliveries; `active` re-enables and forgets past failures",
    )

    @model_validator(mode="after")
    def _no_null_but_filters(self) -> SubscriptionUpdate:
        nulls = [
            name
            for name in ("url", "event_types", "description", "state")
            if name in self.model_fields_set and getattr(self, name) is None
        ]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave out what stays the same")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, by name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class SubscriptionRead(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    organization_id: UUID | None = Field(description="Filter: only events naming it")
    budget_id: UUID | None = Field(description="Filter: only events of this budget")
    description: str
    state: SubscriptionState
    disabled_reason: str | None = Field(description="Why it is disabled, when it is")
    failing_since: datetime | None = Field(
        description="When the current run of failed deliveries began; null after a success"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, the previous secret signs too until then"
    )
    owner_role: str
    owner_organization_id: UUID = Field(description="The organization that manages it")
    owner_subject: str = Field(description="The account that made it")
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionRead):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, `whsec_…`); shown only now, keep it"
    )


class SecretRotated(BaseModel):
    subscription_id: UUID
    secret: str = Field(description="The new signing secret (`whsec_…`); shown only now")
    previous_secret_expires_at: datetime = Field(
        description="Until then deliveries carry a signature by the previous secret too"
    )


class SubscriptionPage(BaseModel):
    items: list[SubscriptionRead]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


# --- deliveries -----------------------------------------------------------------------------


class Resend(_Request):
    since: Moment = Field(description="Re-send the dead deliveries made at or after this time")


class Requeued(BaseModel):
    subscription_id: UUID
    requeued: int = Field(description="How many dead deliveries are pending again")


class DeliveryRead(BaseModel):
    id: UUID
    subscription_id: UUID
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt")
    event_type: str
    state: DeliveryState
    attempts: int = Field(
        description="Attempts since it was last queued; the attempts log keeps every one"
    )
    next_attempt_at: datetime | None = Field(description="When it is tried next, if pending")
    created_at: datetime
    finished_at: datetime | None = Field(description="When it was delivered, dead or cancelled")


class DeliveryDetail(DeliveryRead):
    body: str = Field(description="The JSON body sent, exactly as signed")


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class AttemptRead(BaseModel):
    attempted_at: datetime
    status: int | None = Field(description="The HTTP status answered; null when none was")
    error: str | None = Field(description="Why nothing answered (timeout, refused, …)")
    latency_ms: int
    response_excerpt: str | None = Field(description="The first characters of the answer")


class AttemptPage(BaseModel):
    items: list[AttemptRead]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )
