"""Request and response bodies of the ledger's REST API: separate Create and Read models."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from proto.money import Money
from services.common.wire import Moment

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Score = Annotated[int, Field(ge=0, le=100)]
Direction = Literal["increase", "decrease"]
SourceKind = Literal["district_finance", "street_office", "social_capital", "other"]


def _now() -> datetime:
    return datetime.now(UTC)


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Action(_Create):
    """A command whose only field is when it happened."""

    occurred_at: Moment = Field(
        default_factory=_now,
        description="Business time: when this happened (e.g. the day signed); default now",
    )


# --- budgets --------------------------------------------------------------------------------


class FundingSourceCreate(_Create):
    kind: SourceKind
    name: Text
    amount: Money


class BudgetCreate(Action):
    reference: Reference | None = Field(
        default=None, description="Your own budget number; a retry with it finds the budget"
    )
    year: int = Field(ge=1949, le=2200)
    purpose: Text = Field(examples=["push-down services"])
    title: Text
    sources: list[FundingSourceCreate] = Field(min_length=1, max_length=50)


class BudgetAdjustmentCreate(Action):
    source_name: Text
    source_kind: SourceKind | None = Field(
        default=None, description="Needed only when the adjustment adds a new funding source"
    )
    direction: Direction
    amount: Money
    reason: Text


class AllocationCreate(Action):
    street_office_id: UUID
    amount: Money


class AllocationAdjustmentCreate(Action):
    direction: Direction
    amount: Money
    reason: Text


class FundingSourceRead(BaseModel):
    kind: SourceKind
    name: str
    amount: Money


class AllocationRead(BaseModel):
    id: UUID
    street_office_id: UUID
    amount: Money
    committed: Money
    available: Money


class BudgetRead(BaseModel):
    id: UUID
    version: int
    holder_id: UUID = Field(description="The finance bureau that holds the budget")
    reference: str | None
    year: int
    purpose: str
    title: str
    opened_at: datetime
    sources: list[FundingSourceRead]
    appropriation: Money
    allocated: Money
    unallocated: Money
    committed: Money
    allocations: list[AllocationRead]


class BudgetPage(BaseModel):
    items: list[BudgetRead]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


# --- contracts ------------------------------------------------------------------------------


class ContractCreate(Action):
    reference: Reference = Field(
        description="The contract number; a retry with it finds the contract"
    )
    title: Text
    project_id: UUID = Field(description="The purchase project the contract came from")
    variation: LongText | None = Field(
        default=None, description="Why the value differs from the award, when it does"
    )
    budget_id: UUID
    allocation_id: UUID
    purchaser_id: UUID = Field(description="The street office (must own the allocation)")
    implementer_id: UUID = Field(description="The community entrusted with implementation")
    provider_id: UUID = Field(description="The social organization delivering the service")
    item_ids: list[UUID] = Field(min_length=1, max_length=200)
    value: Money
    period_start: date
    period_end: date


class ContractTermination(Action):
    reason: Text


class ContractRead(BaseModel):
    id: UUID
    version: int
    reference: str
    title: str
    state: Literal["signed", "active", "completed", "terminated"]
    project_id: UUID
    variation: str | None
    budget_id: UUID
    allocation_id: UUID
    purchaser_id: UUID
    implementer_id: UUID
    provider_id: UUID
    item_ids: list[UUID]
    value: Money
    period_start: date
    period_end: date
    signed_at: datetime
    committed: Money = Field(description="What the contract holds of its allocation")
    accepted: Money
    pending: Money = Field(description="Reported deliveries awaiting a decision")
    paid: Money
    unpaid_accepted: Money
    deliveries: int
    payments: int


class ContractPage(BaseModel):
    items: list[ContractRead]
    next_cursor: int | None


# --- deliveries and payments ----------------------------------------------------------------


class DeliveryCreate(Action):
    reference: Reference | None = Field(
        default=None, description="The provider's own report number; a retry with it is a no-op"
    )
    period_start: date
    period_end: date
    quantity: int = Field(ge=1, le=10_000_000)
    unit: Literal["person-times", "activities", "households", "hours", "sessions"]
    amount: Money = Field(description="Value of the service delivered, claimed for acceptance")
    evidence_sha256: list[Sha256] = Field(default_factory=list, max_length=100)
    beneficiaries: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Beneficiaries' identities: stored only as keyed digests, never in clear",
    )
    description: LongText = ""


class DeliveryAcceptance(Action):
    amount: Money | None = Field(default=None, description="Accepted value; default the claim")
    score: Score | None = None
    note: LongText = ""


class DeliveryRejection(Action):
    reason: Text
    score: Score | None = None


class AcceptanceReversal(Action):
    reason: Text


class DeliveryRead(BaseModel):
    id: UUID
    contract_id: UUID
    reference: str | None
    state: Literal["pending", "accepted", "rejected", "reversed"]
    period_start: date
    period_end: date
    quantity: int
    unit: str
    amount: Money
    accepted: Money
    score: int | None
    decision_note: str
    evidence_sha256: list[str]
    beneficiary_digests: list[str]
    description: str
    reported_at: datetime
    decided_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: int | None


class PaymentCreate(Action):
    reference: Reference = Field(description="The treasury's payment reference")
    amount: Money


class PaymentReversal(Action):
    reason: Text


class PaymentRead(BaseModel):
    contract_id: UUID
    reference: str
    amount: Money
    paid_at: datetime
    reversed: bool
    reversed_reason: str | None
    reversed_at: datetime | None


class PaymentPage(BaseModel):
    items: list[PaymentRead]
    next_cursor: int | None
