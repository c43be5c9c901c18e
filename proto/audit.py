"""What auditors read: the funding flow of a budget, from appropriation to payments.

Each figure is defined once here, for every level of the tree, so that the JSON answer, its
CSV export and a client in another language mean the same thing by "committed" or "remaining".
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from proto.money import Money

FlowKind = Literal["budget", "allocation", "contract", "grant", "delivery", "payment", "tranche"]


class FlowNode(BaseModel):
    """One record on the way from the appropriation to the payee, with its money figures.

    Figures that do not apply at a node's level are null (and empty cells in the CSV). Sums
    hold from the leaves up: a parent's committed, released, accepted and paid are the sums of
    its children's, a budget's allocated the sum of its allocations'. An allocation's committed
    is the budget's own record and a contract's or grant's committed its own: they agree unless
    the ledger contradicts itself, which is what an auditor checks.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FlowKind
    level: int = Field(
        ge=0,
        le=3,
        description="Depth in the tree: 0 budget, 1 allocation, 2 contract or grant, "
        "3 delivery, payment (of a contract) or tranche (of a grant)",
    )
    id: str = Field(
        description="The record's UUID for budgets, allocations, contracts, grants and "
        "deliveries; for payments and tranches the treasury's payment reference, which is how "
        "the ledger keys them"
    )
    reference: str | None = Field(
        description="The caller's own number: the budget's or contract's number, the grant "
        "number, the provider's delivery report number, the treasury reference of a payment "
        "or tranche; null where none was given and for allocations"
    )
    title: str | None = Field(
        description="A budget's or contract's title, a grant's purpose; null below and for "
        "allocations"
    )
    state: str | None = Field(
        description="contract: signed, active, completed or terminated; grant: awarded, "
        "closed or revoked; delivery: pending, accepted, rejected or reversed; payment: paid "
        "or reversed; tranche: disbursed; null for budgets and allocations"
    )
    occurred_at: AwareDatetime | None = Field(
        description="Business time the record began: a budget opened, a contract signed, a "
        "grant awarded, a delivery reported, a payment or tranche paid; null for allocations"
    )
    holder_id: UUID | None = Field(
        description="budget: the finance bureau that holds it; null elsewhere"
    )
    street_office_id: UUID | None = Field(
        description="allocation: the street office it is for; contract: the purchasing street "
        "office; grant: the granting street office; null elsewhere"
    )
    implementer_id: UUID | None = Field(
        description="contract: the community that implements it; null elsewhere"
    )
    provider_id: UUID | None = Field(
        description="contract: the provider (a social organization); grant: the grantee; "
        "null elsewhere"
    )
    item_ids: list[UUID] = Field(
        description="contract: the catalog service items it buys; empty elsewhere"
    )
    amount: Money | None = Field(
        description="The record's face amount: a contract's signed value, a grant's awarded "
        "amount, a delivery's claimed value, a payment's or tranche's amount as recorded (also "
        "when reversed); null for budgets and allocations, whose face amounts are appropriated "
        "and allocated"
    )
    appropriated: Money | None = Field(
        description="budget: the sum of its funding sources, after adjustments; null elsewhere"
    )
    allocated: Money | None = Field(
        description="budget: the sum of its allocations; allocation: the amount set aside for "
        "the street office, after adjustments; null elsewhere"
    )
    committed: Money | None = Field(
        description="What contracts and grants hold, net of what they released. contract: "
        "value − released; grant: amount − released; allocation: the sum the budget records "
        "as committed against it; budget: the sum over its allocations; null for deliveries, "
        "payments and tranches"
    )
    released: Money | None = Field(
        description="Commitment given back when a contract completed or was terminated (its "
        "value less what was accepted) or a grant closed or was revoked (its undisbursed part), "
        "so available again; allocation and budget: the sum below; null for deliveries, "
        "payments and tranches"
    )
    accepted: Money | None = Field(
        description="Value accounted for as delivered. delivery: the value the purchaser "
        "accepted (0 while pending, when rejected, or after the acceptance was reversed); "
        "contract: the sum over its deliveries; grant: spending to date as the grantee's "
        "latest report on use states it (grants have no deliveries); allocation and budget: "
        "the sum below; null for payments and tranches"
    )
    paid: Money | None = Field(
        description="Money the treasury paid out. payment: its amount, or 0 once reversed; "
        "contract: the sum of its payments not reversed; tranche: its amount; grant: the sum "
        "of its tranches (disbursed); allocation and budget: the sum below; null for "
        "deliveries"
    )
    remaining: Money | None = Field(
        description="What is still free at this level. budget: appropriated − committed, "
        "i.e. its unallocated part plus its allocations' remaining (committed being net of "
        "releases, what was released counts as free again); allocation: allocated − "
        "committed; contract or grant: committed − paid, what it may still be paid; null for "
        "deliveries, payments and tranches. Never below 0: see overdrawn"
    )
    overdrawn: Money | None = Field(
        description="By how much the formula of remaining falls below 0, in which case "
        "remaining is 0.00; null when it does not. Possible only in an as_of view where a "
        "correction (e.g. an allocation decrease) was dated before commitments it then "
        "undercut"
    )
    children: list[FlowNode] = Field(
        description="budget: its allocations; allocation: the contracts and grants committed "
        "against it, in commitment order; contract: its deliveries, then its payments, each "
        "in the order recorded; grant: its tranches; empty below"
    )


class BudgetFlow(BaseModel):
    """A budget's funding flow as of a business time and as known at a feed position."""

    model_config = ConfigDict(extra="forbid")

    budget_id: UUID
    position: int = Field(
        ge=0,
        description="The feed position this answer reflects: every event recorded at or "
        "before it is counted (then filtered by as_of), none recorded after. Pass it as "
        "known_at to get the same answer again later",
    )
    as_of: AwareDatetime | None = Field(
        description="The business time asked for: only events that occurred at or before it "
        "count; null for the state as recorded, whenever things occurred"
    )
    source: Literal["read-model", "replay"] = Field(
        description="Where the figures came from: read-model, the flow read model kept from "
        "the feed (fast; reconciliation checks it against a replay), or replay, the budget's "
        "contracts and grants replayed from their events for this answer (asked with "
        "source=replay; slower, trusting nothing but the events)"
    )
    budget: FlowNode = Field(description="The root of the tree: the budget itself")
