"""Request and response bodies of purchase projects."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from proto.money import Money
from services.common.wire import Moment
from services.ledger.api.schemas import Action, LongText, Reference, Sha256, Text

MethodName = Literal[
    "open_call",
    "invitation",
    "competitive_negotiation",
    "competitive_consultation",
    "price_enquiry",
    "single_source",
    "direct_entrustment",
]
TrackName = Literal["registered", "filed"]
StateName = Literal[
    "draft",
    "published",
    "closed",
    "evaluated",
    "awarded",
    "contracted",
    "cancelled",
    "unsuccessful",
]


class ProjectCreate(Action):
    reference: Reference = Field(description="The project number; a retry with it finds it")
    title: Text
    purchaser_id: UUID = Field(description="The street office (must own the allocation)")
    budget_id: UUID
    allocation_id: UUID
    item_ids: list[UUID] = Field(min_length=1, max_length=50)
    estimated_value: Money
    method: MethodName
    eligible_tracks: list[TrackName] = Field(
        default=["registered", "filed"], min_length=1, description="Who may apply"
    )
    invited_provider_ids: list[UUID] = Field(default_factory=list, max_length=200)
    applications_open_at: Moment | None = None
    applications_close_at: Moment | None = None
    fair: Text | None = Field(default=None, description="The matchmaking fair (项目对接会)")
    justification: LongText | None = Field(
        default=None, description="Required for single source and direct entrustment"
    )


class ApplicationCreate(Action):
    provider_id: UUID
    price: Money = Field(description="Sealed until the application period closes")
    proposal_sha256: Sha256


class Withdrawal(Action):
    provider_id: UUID = Field(description="The applicant: only it may withdraw")


class ScoreCreate(BaseModel):
    application_id: UUID
    score: int = Field(ge=0, le=100)
    acceptable: bool
    reason: Text


class EvaluationCreate(Action):
    panel: list[Text] = Field(min_length=1, max_length=30)
    scores: list[ScoreCreate] = Field(max_length=500)


class AwardCreate(Action):
    application_id: UUID
    publicity_ends_at: Moment = Field(description="End of the publicity period (公示)")
    justification: LongText | None = Field(
        default=None, description="Required when not awarding the best acceptable score"
    )


class DirectAwardCreate(Action):
    provider_id: UUID
    price: Money
    publicity_ends_at: Moment | None = None


class ObjectionCreate(Action):
    provider_id: UUID = Field(description="An applicant to the project")
    text: LongText


class ObjectionAnswerCreate(Action):
    answer: LongText


class ProjectEnding(Action):
    reason: Text


class ApplicationRead(BaseModel):
    id: UUID
    provider_id: UUID
    proposal_sha256: str
    price_commitment: str = Field(description="SHA-256 of '<price in fen>:<nonce>'")
    price: Money | None = Field(description="Null while sealed: until applications close")
    submitted_at: datetime
    withdrawn_at: datetime | None
    score: int | None
    acceptable: bool | None
    score_reason: str


class ApplicationReceipt(ApplicationRead):
    """What the applicant gets back: its own price, which no one else sees before closing."""

    offered_price: Money


class ObjectionRead(BaseModel):
    id: UUID
    provider_id: UUID
    text: str
    lodged_at: datetime
    answer: str | None
    answered_at: datetime | None


class AwardRead(BaseModel):
    application_id: UUID | None
    provider_id: UUID
    price: Money
    justification: str | None
    publicity_ends_at: datetime | None


class ProjectRead(BaseModel):
    id: UUID
    version: int
    reference: str
    title: str
    state: StateName
    method: MethodName
    purchaser_id: UUID
    budget_id: UUID
    allocation_id: UUID
    item_ids: list[UUID]
    estimated_value: Money
    eligible_tracks: list[str]
    invited_provider_ids: list[UUID]
    applications_open_at: datetime | None
    applications_close_at: datetime | None
    fair: str | None
    justification: str | None
    opened_at: datetime
    panel: list[str]
    applications: list[ApplicationRead]
    objections: list[ObjectionRead]
    award: AwardRead | None
    contract_id: UUID | None
    ending_reason: str | None


class ProjectPage(BaseModel):
    items: list[ProjectRead]
    next_cursor: int | None
