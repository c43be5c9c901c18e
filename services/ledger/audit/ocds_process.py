"""One contract's procurement process replayed from the ledger's events into OCDS releases.

The mapping is documented in `services.ledger.audit.ocds`; the sections are built by
`services.ledger.audit.ocds_sections`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from proto.actor import Actor, Role
from services.common.permissions import require_role
from services.ledger.application import LedgerApplication
from services.ledger.application.access import OVERSEERS
from services.ledger.audit.ocds_sections import (
    Json,
    Names,
    Story,
    award_id,
    awards,
    contract_terms,
    milestone,
    parties,
    planning,
    tender,
    transaction,
    when,
)
from services.ledger.audit.ocid import DEFAULT_OCID_PREFIX, check_prefix
from services.ledger.domain.contract import Contract
from services.ledger.store.reads import FeedRow

# The ledger itself, exporting files for its own command line (the organization id is the one
# the ledger names in the service tokens it mints, see services/ledger/main.py).
EXPORTER = Actor(
    role=Role.SERVICE,
    organization_id=UUID("5e6f1c2a-7b8d-5c4e-9f0a-1b2c3d4e5f60"),
    subject="export-ocds",
)
# OCDS prefixes are `ocds-` and six characters; a publisher may add segments after them.
TAGS: dict[str, str] = {
    "PurchaseProject.Opened": "planning",
    "PurchaseProject.Published": "tender",
    "PurchaseProject.ApplicationSubmitted": "tenderUpdate",
    "PurchaseProject.ApplicationWithdrawn": "tenderUpdate",
    "PurchaseProject.ApplicationsClosed": "tenderUpdate",
    "PurchaseProject.Evaluated": "tenderUpdate",
    "PurchaseProject.Unsuccessful": "tenderUpdate",
    "PurchaseProject.Cancelled": "tenderCancellation",
    "PurchaseProject.Awarded": "award",
    "PurchaseProject.ObjectionLodged": "awardUpdate",
    "PurchaseProject.ObjectionAnswered": "awardUpdate",
    "PurchaseProject.Contracted": "awardUpdate",
    "Budget.Committed": "planningUpdate",
    "Budget.Released": "planningUpdate",
    "Contract.Signed": "contract",
    "Contract.Activated": "contractUpdate",
    "Contract.Completed": "contractTermination",
    "Contract.Terminated": "contractTermination",
    "Contract.DeliveryReported": "implementation",
    "Contract.DeliveryAccepted": "implementationUpdate",
    "Contract.DeliveryRejected": "implementationUpdate",
    "Contract.AcceptanceReversed": "implementationUpdate",
    "Contract.PaymentRecorded": "implementation",
    "Contract.PaymentReversed": "implementationUpdate",
}
_DELIVERY_EVENTS = {
    "DeliveryReported",
    "DeliveryAccepted",
    "DeliveryRejected",
    "AcceptanceReversed",
}
History = list[tuple[FeedRow, Any]]


@dataclass(frozen=True)
class Process:
    """One contract's contracting process: its releases and when the ledger last recorded one."""

    ocid: str
    contract_id: UUID
    releases: list[Json]
    updated_at: datetime


def _names(ledger: LedgerApplication, contract: Contract, history: History) -> Names:
    # One question to the catalog per process, as of the signing: the names the parties signed
    # under, so a later renaming never rewrites a release already published.
    organizations = {contract.purchaser_id, contract.implementer_id, contract.provider_id}
    items = set(contract.item_ids)
    for _, event in history:
        organizations.update(
            getattr(event, attribute)
            for attribute in ("holder_id", "provider_id")
            if isinstance(getattr(event, attribute, None), UUID)
        )
        items.update(getattr(event, "item_ids", ()))  # the project's, which may be more
    as_of = contract.signed_at
    found = ledger.catalog.organizations(sorted(organizations), as_of)
    named = ledger.catalog.items(sorted(items), as_of)
    return Names(
        organizations={i: o.name for i, o in found.items()},
        items={i: item.name for i, item in named.items()},
    )


def _implementation(name: str, event: Any, story: Story, names: Names) -> Json:
    contract, budget = story.contract, story.budget
    assert contract is not None
    assert budget is not None
    if name in _DELIVERY_EVENTS:
        return {"milestones": [milestone(contract.deliveries[event.delivery_id])]}
    payment = contract.payments[event.reference]
    reversal = name == "PaymentReversed"
    return {"transactions": [transaction(payment, contract, budget, names, reversal=reversal)]}


def _sections(kind: str, event: Any, story: Story, names: Names) -> Json:
    stream, _, name = kind.partition(".")
    project = story.project
    assert project is not None
    if stream == "Budget":
        return {"planning": planning(story)}
    if stream == "PurchaseProject":
        sections: Json = {"planning": planning(story)} if name == "Opened" else {}
        sections["tender"] = tender(story, names)
        if project.awarded_provider_id is not None:
            sections["awards"] = awards(story, names)
        return sections
    contract = story.contract
    assert contract is not None
    if name in ("Signed", "Activated", "Completed", "Terminated"):
        return {"contracts": [contract_terms(contract, project, names)]}
    return {
        "contracts": [
            {
                "id": str(contract.id),
                "awardID": award_id(project),
                "implementation": _implementation(name, event, story, names),
            }
        ]
    }


def _replay(story: Story, kind: str, event: Any, contract_id: UUID) -> bool:
    """Apply one event to the story; whether it belongs to this contract's process."""
    if kind.startswith("Budget."):
        story.budget = event.mutate(story.budget)
        if kind not in ("Budget.Committed", "Budget.Released"):
            return False
        if event.commitment_id != contract_id:
            return False
        sign = 1 if kind == "Budget.Committed" else -1
        story.committed_fen = (story.committed_fen or 0) + sign * event.amount_fen
        return True
    if kind.startswith("PurchaseProject."):
        story.project = event.mutate(story.project)
        if kind == "PurchaseProject.ApplicationsClosed":
            story.closed_at = event.occurred_at
        if kind == "PurchaseProject.Awarded":
            story.awarded_at = event.occurred_at
    else:
        story.contract = event.mutate(story.contract)
    return kind in TAGS


@dataclass(frozen=True)
class Reading:
    """The feed position to read processes at, and the budget histories read since then."""

    head: int
    # Shared by the processes of one page: a budget funds many contracts.
    budgets: dict[UUID, History] = field(default_factory=dict)


def contract_process(
    ledger: LedgerApplication,
    contract_id: UUID,
    *,
    by: Actor,
    prefix: str = DEFAULT_OCID_PREFIX,
    reading: Reading | None = None,
) -> Process:
    """A contract's procurement process as OCDS releases; 403 unless overseer, 404 if unknown."""
    # Everything is read as of one feed position (`reading.head`, taken after the contract was
    # known to exist), so a write racing the export never shows half of itself: a signing
    # without its commitment, say.
    require_role(by, OVERSEERS, "read OCDS exports")
    contract = ledger.get_contract(contract_id, by=by)
    reading = Reading(ledger.reads.head()) if reading is None else reading
    if contract.budget_id not in reading.budgets:
        reading.budgets[contract.budget_id] = ledger.stream_history(contract.budget_id, by=by)
    history = sorted(
        (
            entry
            for entry in (
                *reading.budgets[contract.budget_id],
                *ledger.stream_history(contract.project_id, by=by),
                *ledger.stream_history(contract.id, by=by),
            )
            if entry[0].position <= reading.head
        ),
        key=lambda entry: entry[0].position,
    )
    names = _names(ledger, contract, history)
    ocid = f"{check_prefix(prefix)}-{contract.project_id}"
    story = Story()
    releases: list[Json] = []
    date: datetime | None = None
    updated_at = contract.signed_at
    for row, event in history:
        kind = type(event).__qualname__
        if not _replay(story, kind, event, contract.id):
            continue
        date = event.occurred_at if date is None else max(date, event.occurred_at)
        assert story.project is not None
        releases.append(
            {
                "ocid": ocid,
                "id": f"{ocid}-{row.position}",
                "date": when(date),
                "tag": [TAGS[kind]],
                "initiationType": "tender",
                "parties": parties(story, names),
                "buyer": names.organization(story.project.purchaser_id),
                **_sections(kind, event, story, names),
            }
        )
        updated_at = row.recorded_at
    return Process(ocid, contract.id, releases, updated_at)
