"""The catalog's records as they travel: what the ledger reads and the catalog's feed carries."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from proto.money import Money


class OrganizationKind(StrEnum):
    DISTRICT_BUREAU = "district_bureau"  # 区民政局 and other district departments
    STREET_OFFICE = "street_office"  # 街道办事处: legal purchaser
    COMMUNITY = "community"  # 社区居委会: entrusted implementer, under one street office
    SOCIAL_ORGANIZATION = "social_organization"  # 社会组织: provider
    SOCIAL_WORK_AGENCY = "social_work_agency"  # 专业社工机构: provider


PROVIDER_KINDS = frozenset(
    {OrganizationKind.SOCIAL_ORGANIZATION, OrganizationKind.SOCIAL_WORK_AGENCY}
)


class Track(StrEnum):
    """The dual track of Bao'an: registration (登记) or the lighter filing (备案)."""

    REGISTERED = "registered"
    FILED = "filed"


class ProviderCategory(StrEnum):
    COMMUNITY_PUBLIC_INTEREST = "community_public_interest"  # 社区公益性社会组织
    SOCIAL_GROUP = "social_group"  # 社会团体
    PRIVATE_NON_ENTERPRISE = "private_non_enterprise"  # 民办非企业单位
    FOUNDATION = "foundation"
    SOCIAL_WORK_AGENCY = "social_work_agency"


class Registration(BaseModel):
    """How a provider is recognized: registered (with capital and members) or filed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    track: Track
    category: ProviderCategory
    number: str | None = Field(default=None, max_length=64, description="Registration number")
    registered_capital: Money | None = None
    members: int | None = Field(default=None, ge=0, le=1_000_000)
    since: date | None = None


# Records are read by other services: they ignore fields a newer catalog adds (tolerant
# reader), where request bodies, defined by each service's API, refuse unknown fields.


class Organization(BaseModel):
    """A district bureau, street office, community or provider, at one version."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    version: int = Field(ge=1)
    kind: OrganizationKind
    name: str
    code: str | None = Field(
        default=None, description="Unified social credit code (统一社会信用代码) or other own code"
    )
    street_office_id: UUID | None = Field(
        default=None, description="For a community: the street office it belongs to"
    )
    registration: Registration | None = Field(default=None, description="For a provider")
    contact: str | None = None


class ItemKind(StrEnum):
    """Bao'an's three kinds of community service."""

    PUBLIC = "public"  # 公共服务: fiscally funded, equal access
    SOCIAL = "social"  # 社会服务: non-profit, self- and mutual help
    MARKET = "market"  # 市场服务: paid by residents


class ItemDomain(StrEnum):
    ELDERLY = "elderly"
    DISABILITY = "disability"
    YOUTH = "youth"
    CHILDREN = "children"
    RELIEF = "relief"
    CULTURE_RECREATION = "culture_recreation"
    HEALTH = "health"
    EMPLOYMENT = "employment"
    COMMUNITY_AFFAIRS = "community_affairs"
    OTHER = "other"


class DeliveryMode(StrEnum):
    ONE_STOP = "one_stop"
    ONLINE = "online"
    ON_SITE = "on_site"  # 上门
    BY_APPOINTMENT = "by_appointment"  # 预约
    EXTENDED_HOURS = "extended_hours"  # 延时
    FOLLOW_UP = "follow_up"  # 跟踪


class DutyList(StrEnum):
    """Which of Wuhou's three lists (三份清单) fixes the item as a community duty, if any."""

    PARTY_ORGANIZATION = "party_organization"  # 社区党组履行职责事项
    COMMITTEE_STATUTORY = "committee_statutory"  # 居委会依法依规履行职责事项
    COMMITTEE_ASSISTING = "committee_assisting"  # 居委会依法依规协助政府工作事项
    NONE = "none"


class ItemStatus(StrEnum):
    """Admission (准入): proposed, under review, admitted or rejected; admitted, then retired."""

    PROPOSED = "proposed"
    UNDER_REVIEW = "under_review"
    ADMITTED = "admitted"
    REJECTED = "rejected"
    RETIRED = "retired"


class UnitPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Money
    unit: str = Field(min_length=1, max_length=40, examples=["person-time", "household-month"])


class Funding(BaseModel):
    """Money an admitted item brings with it ("funding follows the task"), per source and year."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, max_length=200, examples=["Wuhou district finance"])
    year: int = Field(ge=1949, le=2200)
    amount: Money


class ServiceItem(BaseModel):
    """A service item (事项) and where it stands in admission, at one version."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    version: int = Field(ge=1)
    name: str
    code: str | None = Field(default=None, description="The item's own code (事项编码)")
    description: str
    kind: ItemKind
    domain: ItemDomain
    target_groups: list[str]
    delivery_modes: list[DeliveryMode]
    duty_list: DutyList
    push_down_category: str | None = Field(
        default=None, description="The category of push-down item it belongs to, if any"
    )
    standard_unit_price: UnitPrice | None = None
    proposed_by: UUID = Field(description="The district department that proposed it")
    status: ItemStatus
    funding: list[Funding] = Field(default_factory=list)
    decision_reason: str | None = Field(default=None, description="Why it was rejected or retired")


class PlatformType(StrEnum):
    CENTRE = "centre"
    HALL = "hall"
    ONLINE = "online"


class Platform(BaseModel):
    """Where a community's services are offered (服务平台), with what and whom it hosts."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    version: int = Field(ge=1)
    community_id: UUID
    name: str
    type: PlatformType
    location: str = Field(description="An address, or the address of an online channel")
    opening_hours: str | None = None
    contact: str | None = None
    item_ids: list[UUID]
    provider_ids: list[UUID]


class Refusal(BaseModel):
    """A community's refusal of a task for an item on none of its three lists."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    version: int = Field(ge=1)
    community_id: UUID
    item_id: UUID
    reason: str


class Change(BaseModel):
    """One version of a catalog record, as its history lists it."""

    model_config = ConfigDict(extra="forbid")

    position: int
    version: int
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    record: dict[str, object]


class GuideOrganization(BaseModel):
    id: UUID
    name: str
    contact: str | None = None


class GuideService(BaseModel):
    item_id: UUID
    name: str
    description: str
    kind: ItemKind
    domain: ItemDomain
    target_groups: list[str]
    delivery_modes: list[DeliveryMode]
    standard_unit_price: UnitPrice | None


class GuidePlatform(BaseModel):
    id: UUID
    name: str
    type: PlatformType
    location: str
    opening_hours: str | None
    contact: str | None
    services: list[GuideService]
    providers: list[GuideOrganization]


class GuideRefusal(BaseModel):
    item_id: UUID
    item_name: str
    reason: str


class CommunityGuide(BaseModel):
    """社区服务指南: what a community offers, of which kind, by whom, where, and how to ask."""

    community: GuideOrganization
    street_office: GuideOrganization | None
    as_of: datetime | None = Field(description="The business time the guide describes; null: now")
    services_by_kind: dict[ItemKind, int]
    platforms: list[GuidePlatform]
    refused: list[GuideRefusal]


CATALOG_EVENT_PAYLOADS: dict[str, type[BaseModel]] = {
    "organization.registered": Organization,
    "item.proposed": ServiceItem,
    "item.review_started": ServiceItem,
    "item.admitted": ServiceItem,
    "item.rejected": ServiceItem,
    "item.retired": ServiceItem,
    "platform.opened": Platform,
    "refusal.recorded": Refusal,
}
