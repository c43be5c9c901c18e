"""Request bodies of the catalog's REST API; responses are the records defined in proto/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from proto.catalog import (
    DeliveryMode,
    DutyList,
    Funding,
    ItemDomain,
    ItemKind,
    Organization,
    OrganizationKind,
    Platform,
    PlatformType,
    Registration,
    ServiceItem,
    UnitPrice,
)
from services.common.wire import Moment

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def _now() -> datetime:
    return datetime.now(UTC)


class Action(BaseModel):
    """A command whose only field is when it happened."""

    model_config = ConfigDict(extra="forbid")

    occurred_at: Moment = Field(
        default_factory=_now, description="Business time: when this happened; default now"
    )


Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class OrganizationCreate(Action):
    kind: OrganizationKind
    name: Name
    code: Code | None = Field(
        default=None,
        description="Unified social credit code or own code; a retry with it finds the record",
    )
    street_office_id: UUID | None = Field(default=None, description="Required for a community")
    registration: Registration | None = Field(default=None, description="Required for a provider")
    contact: Name | None = None


class ItemProposal(Action):
    name: Name
    code: Code | None = Field(
        default=None, description="The item's own code; a retry with it finds the item"
    )
    description: Text = ""
    kind: ItemKind
    domain: ItemDomain
    target_groups: list[Name] = Field(default_factory=list, max_length=50)
    delivery_modes: list[DeliveryMode] = Field(min_length=1, max_length=6)
    duty_list: DutyList
    push_down_category: Name | None = None
    standard_unit_price: UnitPrice | None = None
    proposed_by: UUID = Field(description="The proposing district department")


class ItemAdmission(Action):
    funding: list[Funding] = Field(default_factory=list, max_length=100)


class Decision(Action):
    reason: Reason


class RefusalCreate(Action):
    item_id: UUID
    reason: Reason


class PlatformCreate(Action):
    community_id: UUID
    name: Name
    type: PlatformType
    location: Name
    opening_hours: Name | None = None
    contact: Name | None = None
    item_ids: list[UUID] = Field(default_factory=list, max_length=500)
    provider_ids: list[UUID] = Field(default_factory=list, max_length=200)


class OrganizationPage(BaseModel):
    items: list[Organization]
    next_cursor: int | None


class ItemPage(BaseModel):
    items: list[ServiceItem]
    next_cursor: int | None


class PlatformPage(BaseModel):
    items: list[Platform]
    next_cursor: int | None
