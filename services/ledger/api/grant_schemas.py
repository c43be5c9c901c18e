"""Request and response bodies of grants: separate Create and Read models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from proto.money import Money
from services.ledger.api.schemas import Action, LongText, Reference, Sha256, Text


class GrantCreate(Action):
    reference: Reference = Field(description="The grant number; a retry with it finds the grant")
    purpose: Text = Field(examples=["elderly mutual-help activities in Haiyu community"])
    budget_id: UUID
    allocation_id: UUID
    grantor_id: UUID = Field(description="The street office (must own the allocation)")
    grantee_id: UUID = Field(description="The registered or filed organization receiving it")
    amount: Money


class TrancheCreate(Action):
    reference: Reference = Field(description="The treasury's payment reference")
    amount: Money


class UseReportCreate(Action):
    report_sha256: Sha256 = Field(description="SHA-256 of the report document, in lowercase hex")
    summary: LongText = ""
    spent: Money = Field(description="Spending to date, over every tranche so far")


class GrantRevocation(Action):
    reason: Text


class TrancheRead(BaseModel):
    grant_id: UUID
    reference: str
    amount: Money
    disbursed_at: datetime


class UseReportRead(BaseModel):
    grant_id: UUID
    report_sha256: str
    summary: str
    spent: Money
    disbursed: Money = Field(description="What had been disbursed when reported: what it covers")
    reported_at: datetime


class GrantRead(BaseModel):
    id: UUID
    version: int
    reference: str
    purpose: str
    state: Literal["awarded", "closed", "revoked"]
    budget_id: UUID
    allocation_id: UUID
    grantor_id: UUID
    grantee_id: UUID
    amount: Money
    awarded_at: datetime
    committed: Money = Field(description="What the grant holds of its allocation")
    disbursed: Money
    undisbursed: Money
    spent: Money = Field(description="Spending to date, as the latest report on use states it")
    unspent: Money = Field(description="Disbursed and not reported as spent")
    released: Money = Field(description="Given back to the allocation when the grant ended")
    ended_at: datetime | None
    revocation_reason: str | None
    tranches: list[TrancheRead]
    reports: list[UseReportRead]


class GrantPage(BaseModel):
    items: list[GrantRead]
    next_cursor: int | None
