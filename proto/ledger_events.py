"""Payloads of the ledger's events, by `event_type`, as they appear in its feed."""

from __future__ import annotations

from datetime import date, datetime
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
    holder_id: UUID = Field(description="The finance bureau that holds the budget")
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
    project_id: UUID = Field(description="The purchase project the contract came from")
    variation: str | None = Field(description="Why the value differs from the award, if it does")
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


class GrantAwarded(_Payload):
    reference: str = Field(description="The grant number")
    purpose: str
    budget_id: UUID
    allocation_id: UUID
    grantor_id: UUID = Field(description="The street office owning the allocation")
    grantee_id: UUID = Field(description="The registered or filed organization receiving it")
    amount: Money


class GrantTrancheDisbursed(_Payload):
    reference: str = Field(description="The treasury's payment reference")
    amount: Money


class GrantUseReported(_Payload):
    report_sha256: Sha256Hex = Field(description="SHA-256 of the report document")
    summary: str
    spent: Money = Field(description="Spending to date, as the grantee reports it")
    disbursed: Money = Field(description="What had been disbursed: the tranches it covers")


class GrantClosed(_Payload):
    released: Money = Field(description="Undisbursed remainder given back to the allocation")
    unspent: Money = Field(description="Disbursed but reported unspent: owed back by the grantee")


class GrantRevoked(_Payload):
    reason: str
    released: Money = Field(description="Undisbursed part given back to the allocation")


# --- procurement ---------------------------------------------------------------------------


class ProjectOpened(_Payload):
    reference: str
    title: str
    purchaser_id: UUID
    budget_id: UUID
    allocation_id: UUID
    item_ids: list[UUID]
    estimated_value: Money
    method: Literal[
        "open_call",
        "invitation",
        "competitive_negotiation",
        "competitive_consultation",
        "price_enquiry",
        "single_source",
        "direct_entrustment",
    ]
    eligible_tracks: list[Literal["registered", "filed"]]
    invited_provider_ids: list[UUID]
    applications_open_at: datetime | None
    applications_close_at: datetime | None
    fair: str | None = Field(description="The matchmaking fair (项目对接会), e.g. Chengdu 2014")
    justification: str | None


class ProjectPublished(_Payload):
    pass


class ApplicationSubmitted(_Payload):
    application_id: UUID
    provider_id: UUID
    proposal_sha256: Sha256Hex
    price_commitment: Sha256Hex = Field(description="SHA-256 of '<price in fen>:<nonce>'")
    sealed_price: str = Field(description="The price, sealed (AES-GCM) until applications close")


class ApplicationWithdrawn(_Payload):
    application_id: UUID


class PriceDisclosure(_Payload):
    application_id: UUID
    price: Money
    nonce: str = Field(description="With the price, reproduces the application's commitment")


class ApplicationsClosed(_Payload):
    disclosures: list[PriceDisclosure]


class Score(_Payload):
    application_id: UUID
    score: int
    acceptable: bool
    reason: str


class ProjectEvaluated(_Payload):
    panel: list[str]
    scores: list[Score]


class ProjectAwarded(_Payload):
    application_id: UUID | None = Field(description="Null for a direct or single-source award")
    provider_id: UUID
    price: Money
    justification: str | None
    publicity_ends_at: datetime | None = Field(description="End of the publicity period (公示)")


class ObjectionLodged(_Payload):
    objection_id: UUID
    provider_id: UUID
    text: str


class ObjectionAnswered(_Payload):
    objection_id: UUID
    answer: str


class ProjectContracted(_Payload):
    contract_id: UUID


class ProjectEnded(_Payload):
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
    "grant.awarded": GrantAwarded,
    "grant.tranche_disbursed": GrantTrancheDisbursed,
    "grant.use_reported": GrantUseReported,
    "grant.closed": GrantClosed,
    "grant.revoked": GrantRevoked,
    "project.opened": ProjectOpened,
    "project.published": ProjectPublished,
    "application.submitted": ApplicationSubmitted,
    "application.withdrawn": ApplicationWithdrawn,
    "project.applications_closed": ApplicationsClosed,
    "project.evaluated": ProjectEvaluated,
    "project.awarded": ProjectAwarded,
    "objection.lodged": ObjectionLodged,
    "objection.answered": ObjectionAnswered,
    "project.contracted": ProjectContracted,
    "project.cancelled": ProjectEnded,
    "project.unsuccessful": ProjectEnded,
}
