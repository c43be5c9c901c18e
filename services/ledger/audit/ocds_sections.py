"""The sections of an OCDS release, each built from a ledger aggregate as it stood at one event.

Pure functions of the aggregates: the mapping itself is documented in `services.ledger.audit.ocds`.
Amounts are `Decimal`s with exactly two places, made from integer fen without any float, and
written as JSON numbers from their decimal text by `ocds.ocds_json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.ledger.domain.budget import Budget
from services.ledger.domain.contract import Contract, ContractState, Delivery, DeliveryState
from services.ledger.domain.contract import Payment as LedgerPayment
from services.ledger.domain.procurement import (
    NON_COMPETITIVE,
    Method,
    Objection,
    ProjectState,
    PurchaseProject,
)

Json = dict[str, Any]

# China Standard Time, which has no daylight saving: every date-time is written at this one
# offset, so that OCDS tools, which order releases by comparing `date` as text, order them by time.
LEDGER_TIMEZONE = timezone(timedelta(hours=8), "CST")
CURRENCY = "CNY"
COMMUNITY_ROLE = "community"
"""The custom party role of the community (社区居委会) that implements a contract."""

# What the ledger enforces, not the legal name: every competitive method but invitation admits any
# eligible provider that applies in the published period. The legal method is in the details.
PROCUREMENT_METHODS: dict[Method, tuple[str, str]] = {
    Method.OPEN_CALL: ("open", "公开招标 open call for applications"),
    Method.INVITATION: ("selective", "邀请招标 invitation of named providers"),
    Method.COMPETITIVE_NEGOTIATION: ("open", "竞争性谈判 competitive negotiation"),
    Method.COMPETITIVE_CONSULTATION: ("open", "竞争性磋商 competitive consultation"),
    Method.PRICE_ENQUIRY: ("open", "询价 price enquiry"),
    Method.SINGLE_SOURCE: ("direct", "单一来源 single-source purchase"),
    Method.DIRECT_ENTRUSTMENT: ("direct", "直接委托 direct entrustment"),
}
TENDER_STATUSES = {
    ProjectState.DRAFT: "planned",
    ProjectState.PUBLISHED: "active",
    ProjectState.CLOSED: "active",
    ProjectState.EVALUATED: "active",
    ProjectState.AWARDED: "complete",
    ProjectState.CONTRACTED: "complete",
    ProjectState.CANCELLED: "cancelled",
    ProjectState.UNSUCCESSFUL: "unsuccessful",
}
MILESTONE_STATUSES = {
    DeliveryState.PENDING: "scheduled",
    DeliveryState.ACCEPTED: "met",
    DeliveryState.REJECTED: "notMet",
    DeliveryState.REVERSED: "notMet",
}


def amount(fen: int) -> Json:
    """An OCDS Value: yuan as an exact two-place Decimal (never a float), in CNY."""
    return {"amount": Decimal(fen).scaleb(-2), "currency": CURRENCY}


def yuan(fen: int) -> str:
    """Fen as yuan text for descriptions, e.g. 3000000 -> 30000.00."""
    return f"{Decimal(fen).scaleb(-2)}"


def when(moment: datetime) -> str:
    """A business time as an OCDS date-time at the ledger's offset: 2014-04-14T10:00:00+08:00."""
    return moment.astimezone(LEDGER_TIMEZONE).isoformat()


def day_start(day: date) -> str:
    """The first moment of a calendar day the ledger records without a time."""
    return when(datetime.combine(day, time.min, LEDGER_TIMEZONE))


def day_end(day: date) -> str:
    """The last second of a calendar day the ledger records without a time."""
    return when(datetime.combine(day, time(23, 59, 59), LEDGER_TIMEZONE))


@dataclass(frozen=True)
class Names:
    """Organization and item names from the catalog; what it does not know is named by its id."""

    organizations: Mapping[UUID, str] = field(default_factory=dict)
    items: Mapping[UUID, str] = field(default_factory=dict)

    def organization(self, organization_id: UUID) -> Json:
        """An OCDS OrganizationReference."""
        text = str(organization_id)
        return {"id": text, "name": self.organizations.get(organization_id, text)}

    def item_list(self, item_ids: Iterable[UUID]) -> list[Json]:
        """OCDS Items: the catalog's service items (事项), by id and name."""
        return [{"id": str(i), "description": self.items.get(i, str(i))} for i in item_ids]


@dataclass
class Story:
    """The process's aggregates replayed to one position, and moments they do not keep."""

    budget: Budget | None = None
    project: PurchaseProject | None = None
    contract: Contract | None = None
    committed_fen: int | None = None
    awarded_at: datetime | None = None
    closed_at: datetime | None = None


def award_id(project: PurchaseProject) -> str:
    """A project is awarded at most once, so its award is named by the project's id."""
    return str(project.id)


def parties(story: Story, names: Names) -> list[Json]:
    """Every organization in the process so far, each with all of its roles (a whole list)."""
    roles: dict[UUID, list[str]] = {}

    def play(organization_id: UUID, *played: str) -> None:
        held = roles.setdefault(organization_id, [])
        held.extend(role for role in played if role not in held)

    project, budget, contract = story.project, story.budget, story.contract
    assert project is not None
    assert budget is not None
    play(project.purchaser_id, "buyer", "procuringEntity")
    play(budget.holder_id, "funder")
    for application in project.applications.values():
        play(application.provider_id, "tenderer")
    if project.awarded_provider_id is not None:
        play(project.awarded_provider_id, "supplier")
    if contract is not None:
        play(contract.implementer_id, COMMUNITY_ROLE)
        if contract.payments:
            play(budget.holder_id, "payer")
            play(contract.provider_id, "payee")
    return [{**names.organization(o), "roles": played} for o, played in roles.items()]


def planning(story: Story) -> Json:
    """The budget line (the street office's allocation) and what it reserves for this process."""
    project, budget = story.project, story.budget
    assert project is not None
    assert budget is not None
    # Until the contract commits its value the reservation is the project's estimate; after,
    # the commitment, less what completion or termination released.
    reserved = project.estimated_value_fen if story.committed_fen is None else story.committed_fen
    return {
        "budget": {
            "id": str(project.allocation_id),
            "description": f"The purchasing street office's allocation of budget "
            f"{budget.reference or budget.id} ({budget.year}, {budget.purpose})",
            "amount": amount(reserved),
            "project": budget.title,
            "projectID": str(budget.id),
        }
    }


def _objection(objection: Objection, names: Names) -> Json:
    objector = names.organization(objection.provider_id)["name"]
    milestone: Json = {
        "id": str(objection.id),
        "title": f"Objection (质疑) to the award by {objector}",
        "type": "assessment",
        "description": objection.text,
        "status": "scheduled",
        "dateModified": when(objection.lodged_at),
    }
    if objection.answer is not None and objection.answered_at is not None:
        milestone.update(
            description=f"{objection.text}\nAnswer: {objection.answer}",
            status="met",
            dateMet=when(objection.answered_at),
            dateModified=when(objection.answered_at),
        )
    return milestone


def tender(story: Story, names: Names) -> Json:
    """The purchase project as a tender: method, period, tenderers, and objections to the award."""
    project = story.project
    assert project is not None
    method, details = PROCUREMENT_METHODS[project.method]
    section: Json = {
        "id": str(project.id),
        "title": project.title,
        "status": TENDER_STATUSES[project.state],
        "items": names.item_list(project.item_ids),
        "value": amount(project.estimated_value_fen),
        "procuringEntity": names.organization(project.purchaser_id),
        "procurementMethod": method,
        "procurementMethodDetails": f"{details} ({project.method.value})",
        "mainProcurementCategory": "services",
    }
    if project.method in NON_COMPETITIVE:
        if project.justification:
            section["procurementMethodRationale"] = project.justification
        return section
    assert project.applications_open_at is not None
    assert project.applications_close_at is not None
    section["awardCriteria"] = "ratedCriteria"
    section["awardCriteriaDetails"] = "An evaluation panel scores each application from 0 to 100"
    tracks = " or ".join(project.eligible_tracks)
    section["eligibilityCriteria"] = f"Providers on the {tracks} track of the catalog"
    section["tenderPeriod"] = {
        "startDate": when(project.applications_open_at),
        "endDate": when(project.applications_close_at),
    }
    if story.closed_at is not None:
        award_period = {"startDate": when(story.closed_at)}
        if story.awarded_at is not None:
            award_period["endDate"] = when(story.awarded_at)
        section["awardPeriod"] = award_period
    # Withdrawn applicants are kept: they did apply, and a merge cannot take a tenderer away.
    applicants = list(dict.fromkeys(a.provider_id for a in project.applications.values()))
    if applicants:
        section["numberOfTenderers"] = len(applicants)
        section["tenderers"] = [names.organization(a) for a in applicants]
    if project.objections:
        section["milestones"] = [_objection(o, names) for o in project.objections.values()]
    return section


def awards(story: Story, names: Names) -> list[Json]:
    """The award, pending through publicity (公示) and objections until the contract is signed."""
    project = story.project
    assert project is not None
    assert project.awarded_provider_id is not None
    assert project.awarded_price_fen is not None
    assert story.awarded_at is not None
    status = {ProjectState.CONTRACTED: "active", ProjectState.CANCELLED: "cancelled"}
    award: Json = {
        "id": award_id(project),
        "title": project.title,
        "status": status.get(project.state, "pending"),
        "date": when(story.awarded_at),
        "value": amount(project.awarded_price_fen),
        "suppliers": [names.organization(project.awarded_provider_id)],
        "items": names.item_list(project.item_ids),
    }
    notes = []
    # A direct award's justification is the method's, already the tender's method rationale.
    if project.award_justification and project.method not in NON_COMPETITIVE:
        notes.append(f"Justification: {project.award_justification}")
    if project.publicity_ends_at is not None:
        notes.append(f"Publicity (公示) until {when(project.publicity_ends_at)}")
    if notes:
        award["description"] = "\n".join(notes)
    return [award]


def contract_terms(contract: Contract, project: PurchaseProject, names: Names) -> Json:
    """The signed tri-party contract, without its implementation (each release adds its own)."""
    ended = contract.state in (ContractState.COMPLETED, ContractState.TERMINATED)
    description = f"Contract {contract.reference}"
    if contract.variation:
        description += f"\nVariation from the award: {contract.variation}"
    if ended and contract.release is not None:
        description += f"\nEnded: {contract.release.reason}"
    return {
        "id": str(contract.id),
        "awardID": award_id(project),
        "title": contract.title,
        "description": description,
        "status": "terminated" if ended else "active",
        "period": {
            "startDate": day_start(contract.period_start),
            "endDate": day_end(contract.period_end),
        },
        "value": amount(contract.value_fen),
        "items": names.item_list(contract.item_ids),
        "dateSigned": when(contract.signed_at),
    }


def milestone(delivery: Delivery) -> Json:
    """A delivery as an implementation milestone; its acceptance decides the status."""
    status = MILESTONE_STATUSES[delivery.state]
    if delivery.state is DeliveryState.ACCEPTED and delivery.accepted_fen < delivery.amount_fen:
        status = "partiallyMet"
    description = (
        f"{delivery.quantity} {delivery.unit} from {delivery.period_start} to "
        f"{delivery.period_end}: {yuan(delivery.amount_fen)} {CURRENCY} claimed, "
        f"{yuan(delivery.accepted_fen)} {CURRENCY} accepted"
    )
    if delivery.score is not None:
        description += f", score {delivery.score}"
    if delivery.decision_note:
        description += f"\n{delivery.decision_note}"
    moment = delivery.decided_at or delivery.reported_at
    section: Json = {
        "id": str(delivery.id),
        "title": f"Delivery {delivery.reference or delivery.period_start.isoformat()}",
        "type": "delivery",
        "description": description,
        "status": status,
        "dueDate": day_end(delivery.period_end),
        "dateModified": when(moment),
    }
    if delivery.state is DeliveryState.ACCEPTED:
        section["dateMet"] = when(moment)
    elif delivery.state is DeliveryState.REVERSED:
        section["dateMet"] = None  # null takes the date met out of the compiled release
    return section


def transaction(
    payment: LedgerPayment, contract: Contract, budget: Budget, names: Names, *, reversal: bool
) -> Json:
    """A treasury payment from the finance bureau to the provider, or its negative reversal."""
    # Negative, so that a contract's transactions sum to what it has paid.
    if reversal:
        assert payment.reversed_at is not None
        return {
            "id": f"reversal:{payment.reference}",
            "date": when(payment.reversed_at),
            "value": amount(-payment.amount_fen),
            "payer": names.organization(budget.holder_id),
            "payee": names.organization(contract.provider_id),
        }
    return {
        "id": f"payment:{payment.reference}",
        "date": when(payment.paid_at),
        "value": amount(payment.amount_fen),
        "payer": names.organization(budget.holder_id),
        "payee": names.organization(contract.provider_id),
    }
