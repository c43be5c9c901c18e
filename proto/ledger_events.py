"""Payloads of the ledger's events, by `event_type`, as they appear in its feed."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from proto.money import Money

Direction = Literal["increase", "decrease"]
SourceKind = Literal["district_finance", "street_office", "social_capital", "other"]
Sha256Hex = str


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FundingSource(_Payload):
    kind: SourceKind
    name: str
    amount: Money


class BudgetOpened(_Payload):
    reference: str | None
    year: int
    purpose: str
    title: str
    sources: list[FundingSource]


class BudgetAdjusted(_Payload):
    source_kind: SourceKind
    source_name: str
    direction: Direction
    amount: Money
    reason: str


class AllocationMade(_Payload):
    allocation_id: UUID
    street_office_id: UUID
    amount: Money


class AllocationAdjusted(_Payload):
    allocation_id: UUID
    direction: Direction
    amount: Money
    reason: str


class CommitmentMade(_Payload):
    allocation_id: UUID
    commitment_id: UUID = Field(description="The contract or grant holding the money")
    commitment_kind: Literal["contract", "grant"]
    amount: Money


class CommitmentReleased(_Payload):
    allocation_id: UUID
    commitment_id: UUID
    amount: Money
    reason: str


class ContractSigned(_Payload):
    reference: str
    title: str
    budget_id: UUID
    allocation_id: UUID
    purchaser_id: UUID = Field(description="The street office: legal purchaser and supervisor")
    implementer_id: UUID = Field(description="The community: entrusted implementer")
    provider_id: UUID = Field(description="The social organization delivering the service")
    item_ids: list[UUID] = Field(description="Catalog service items the contract covers")
    value: Money
    period_start: date
    period_end: date


class ContractActivated(_Payload):
    pass


class ContractCompleted(_Payload):
    released: Money = Field(description="Unspent value given back to the allocation")


class ContractTerminated(_Payload):
    reason: str
    released: Money = Field(description="Unspent value given back to the allocation")


class DeliveryReported(_Payload):
    delivery_id: UUID
    reference: str | None
    period_start: date
    period_end: date
    quantity: int
    unit: str
    amount: Money
    evidence_sha256: list[Sha256Hex]
    beneficiary_digests: list[str] = Field(
        description="Keyed digests of beneficiaries' identities; never the identities"
    )
    description: str


class DeliveryAccepted(_Payload):
    delivery_id: UUID
    accepted: Money
    score: int | None
    note: str


class DeliveryRejected(_Payload):
    delivery_id: UUID
    reason: str
    score: int | None


class DeliveryAcceptanceReversed(_Payload):
    delivery_id: UUID
    reversed: Money
    reason: str


class PaymentRecorded(_Payload):
    reference: str = Field(description="The treasury's payment reference")
    amount: Money


class PaymentReversed(_Payload):
    reference: str
    reversed: Money
    reason: str


EVENT_PAYLOADS: dict[str, type[BaseModel]] = {
    "budget.opened": BudgetOpened,
    "budget.adjusted": BudgetAdjusted,
    "allocation.made": AllocationMade,
    "allocation.adjusted": AllocationAdjusted,
    "commitment.made": CommitmentMade,
    "commitment.released": CommitmentReleased,
    "contract.signed": ContractSigned,
    "contract.activated": ContractActivated,
    "contract.completed": ContractCompleted,
    "contract.terminated": ContractTerminated,
    "delivery.reported": DeliveryReported,
    "delivery.accepted": DeliveryAccepted,
    "delivery.rejected": DeliveryRejected,
    "delivery.acceptance_reversed": DeliveryAcceptanceReversed,
    "payment.recorded": PaymentRecorded,
    "payment.reversed": PaymentReversed,
}
