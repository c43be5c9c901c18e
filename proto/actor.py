"""Who caused an event: the role, organization and subject of the caller's token."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """What a caller may do, named in its token's `role` claim."""

    FINANCE = "finance"
    """A finance bureau: opens, adjusts and allocates its own budgets."""
    CIVIL_AFFAIRS = "civil-affairs"
    """A civil-affairs bureau: registers organizations, admits items to the catalog."""
    STREET = "street"
    """A street office: purchases, signs, accepts and pays, only its own."""
    COMMUNITY = "community"
    """A community: records deliveries of contracts it implements, refuses tasks, runs platforms."""
    PROVIDER = "provider"
    """A social organization: applies, records its deliveries, reads its own contracts."""
    AUDITOR = "auditor"
    """Reads everything, writes nothing."""
    SERVICE = "service"
    """Another service of this system calling over HTTP: reads, writes nothing."""


class Actor(BaseModel):
    """The caller behind a request, as its verified token names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    organization_id: UUID = Field(description="The organization the caller acts for")
    subject: str = Field(
        min_length=1, max_length=255, description="The token's subject: the account that called"
    )

    def __str__(self) -> str:
        return f"{self.role} of organization {self.organization_id}"
