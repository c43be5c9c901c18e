"""The PurchaseProject aggregate: how a contract came about, from publication to award.

States: draft → published → closed → evaluated → awarded → contracted, or cancelled, or
unsuccessful. Single-source purchases and direct entrustment skip the competition and go from
draft to awarded, with a recorded justification.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from services.ledger.domain.dated import DatedAggregate
from services.ledger.domain.errors import InvalidCommand, NotFound, RuleViolation
from services.ledger.domain.money import format_fen


class Method(StrEnum):
    """How the purchase is made: the methods of Chinese government procurement, and entrustment."""

    OPEN_CALL = "open_call"  # 公开招标
    INVITATION = "invitation"  # 邀请招标
    COMPETITIVE_NEGOTIATION = "competitive_negotiation"  # 竞争性谈判
    COMPETITIVE_CONSULTATION = "competitive_consultation"  # 竞争性磋商
    PRICE_ENQUIRY = "price_enquiry"  # 询价
    SINGLE_SOURCE = "single_source"  # 单一来源
    DIRECT_ENTRUSTMENT = "direct_entrustment"  # 直接委托


NON_COMPETITIVE = frozenset({Method.SINGLE_SOURCE, Method.DIRECT_ENTRUSTMENT})


class ProjectState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CLOSED = "closed"
    EVALUATED = "evaluated"
    AWARDED = "awarded"
    CONTRACTED = "contracted"
    CANCELLED = "cancelled"
    UNSUCCESSFUL = "unsuccessful"


class ProjectNotInState(RuleViolation):
    """The project's state does not allow this step."""


class OutsideApplicationPeriod(RuleViolation):
    """An application or withdrawal before the period opens or after it closes."""


class IneligibleApplicant(RuleViolation):
    """The applicant does not meet the project's eligibility rules."""


class EvaluationIncomplete(InvalidCommand):
    """Scores must cover every application, once each."""


class AwardNotJustified(RuleViolation):
    """An award to other than the best acceptable application needs a justification."""


class ContractingBlocked(RuleViolation):
    """The publicity period is not over, or an objection awaits its answer."""


class ObjectionNotAllowed(RuleViolation):
    """Only applicants may object, and only during the publicity period."""


class SealBroken(RuleViolation):
    """A disclosed price does not match the commitment made at application time."""


@dataclass
class Application:
    """A provider's bid: its price stays sealed until the period closes."""

    id: UUID
    provider_id: UUID
    proposal_sha256: str
    price_commitment: str
    sealed_price: str
    submitted_at: datetime
    withdrawn_at: datetime | None = None
    price_fen: int | None = None
    score: int | None = None
    acceptable: bool | None = None
    score_reason: str = ""

    @property
    def is_live(self) -> bool:
        return self.withdrawn_at is None


@dataclass
class Objection:
    """An applicant's objection (质疑) to the award, and the purchaser's answer."""

    id: UUID
    provider_id: UUID
    text: str
    lodged_at: datetime
    answer: str | None = None
    answered_at: datetime | None = None


def _reason(text: str | None, what: str) -> str:
    if text is None or not text.strip():
        raise InvalidCommand(f"{what} is required")
    return text.strip()


class PurchaseProject(DatedAggregate):
    """A purchase of catalog items against a budget allocation, and how it was awarded."""

    @classmethod
    def open(
        cls,
        *,
        reference: str,
        title: str,
        purchaser_id: UUID,
        budget_id: UUID,
        allocation_id: UUID,
        item_ids: list[UUID],
        estimated_value_fen: int,
        method: Method,
        eligible_tracks: list[str],
        invited_provider_ids: list[UUID],
        applications_open_at: datetime | None,
        applications_close_at: datetime | None,
        fair: str | None,
        justification: str | None,
        occurred_at: datetime,
    ) -> PurchaseProject:
        """Draft a project; competitive methods need an application period, others a reason."""
        if estimated_value_fen <= 0:
            raise InvalidCommand(
                f"estimated value must be more than 0.00, got {format_fen(estimated_value_fen)}"
            )
        if not item_ids or len(set(item_ids)) != len(item_ids):
            raise InvalidCommand("a project buys one or more distinct catalog items")
        if not eligible_tracks:
            raise InvalidCommand("say which providers may apply: registered, filed, or both")
        if method in NON_COMPETITIVE:
            justification = _reason(justification, f"a {method.value} purchase's justification")
        else:
            if applications_open_at is None or applications_close_at is None:
                raise InvalidCommand(f"a {method.value} project needs its application period")
            if applications_close_at <= applications_open_at:
                raise InvalidCommand("the application period must end after it opens")
        if method is Method.INVITATION and not invited_provider_ids:
            raise InvalidCommand("an invitation names the providers invited")
        return cls(
            reference=reference,
            title=title,
            purchaser_id=purchaser_id,
            budget_id=budget_id,
            allocation_id=allocation_id,
            item_ids=item_ids,
            estimated_value_fen=estimated_value_fen,
            method=method.value,
            eligible_tracks=sorted(set(eligible_tracks)),
            invited_provider_ids=invited_provider_ids,
            applications_open_at=applications_open_at,
            applications_close_at=applications_close_at,
            fair=fair,
            justification=justification,
            occurred_at=occurred_at,
        )

    @event("Opened")
    def __init__(
        self,
        *,
        reference: str,
        title: str,
        purchaser_id: UUID,
        budget_id: UUID,
        allocation_id: UUID,
        item_ids: list[UUID],
        estimated_value_fen: int,
        method: str,
        eligible_tracks: list[str],
        invited_provider_ids: list[UUID],
        applications_open_at: datetime | None,
        applications_close_at: datetime | None,
        fair: str | None,
        justification: str | None,
        occurred_at: datetime,
    ) -> None:
        self.reference = reference
        self.title = title
        self.purchaser_id = purchaser_id
        self.budget_id = budget_id
        self.allocation_id = allocation_id
        self.item_ids = list(item_ids)
        self.estimated_value_fen = estimated_value_fen
        self.method = Method(method)
        self.eligible_tracks = list(eligible_tracks)
        self.invited_provider_ids = list(invited_provider_ids)
        self.applications_open_at = applications_open_at
        self.applications_close_at = applications_close_at
        self.fair = fair
        self.justification = justification
        self.opened_at = occurred_at
        self.state = ProjectState.DRAFT
        self.applications: dict[UUID, Application] = {}
        self.objections: dict[UUID, Objection] = {}
        self.panel: list[str] = []
        self.awarded_application_id: UUID | None = None
        self.awarded_provider_id: UUID | None = None
        self.awarded_price_fen: int | None = None
        self.award_justification: str | None = None
        self.publicity_ends_at: datetime | None = None
        self.contract_id: UUID | None = None
        self.ending_reason: str | None = None

    @property
    def began_at(self) -> datetime:
        return self.opened_at

    @property
    def live_applications(self) -> list[Application]:
        return [a for a in self.applications.values() if a.is_live]

    def application(self, application_id: UUID) -> Application:
        """The application with this id, or NotFound."""
        try:
            return self.applications[application_id]
        except KeyError:
            raise NotFound(
                f"project {self.reference} has no application {application_id}"
            ) from None

    def _require(self, action: str, *states: ProjectState) -> None:
        if self.state not in states:
            names = " or ".join(s.value for s in states)
            raise ProjectNotInState(
                f"cannot {action}: project {self.reference} is {self.state.value}, not {names}"
            )

    def _require_competitive(self, action: str) -> None:
        if self.method in NON_COMPETITIVE:
            raise ProjectNotInState(
                f"cannot {action}: project {self.reference} is a {self.method.value} purchase"
            )

    # --- publication and applications -----------------------------------------------------

    def publish(self, *, occurred_at: datetime) -> None:
        """Publish a drafted competitive project: applications can come in during its period."""
        self._require("publish", ProjectState.DRAFT)
        self._require_competitive("publish")
        self._published(occurred_at=occurred_at)

    @event("Published")
    def _published(self, *, occurred_at: datetime) -> None:
        self.state = ProjectState.PUBLISHED

    def _require_in_period(self, action: str, occurred_at: datetime) -> None:
        assert self.applications_open_at is not None
        assert self.applications_close_at is not None
        if occurred_at < self.applications_open_at:
            raise OutsideApplicationPeriod(
                f"cannot {action}: applications open at {self.applications_open_at.isoformat()}"
            )
        if occurred_at > self.applications_close_at:
            raise OutsideApplicationPeriod(
                f"cannot {action}: applications closed at "
                f"{self.applications_close_at.isoformat()}; this came at {occurred_at.isoformat()}"
            )

    def apply(
        self,
        *,
        application_id: UUID,
        provider_id: UUID,
        provider_track: str | None,
        proposal_sha256: str,
        price_commitment: str,
        sealed_price: str,
        occurred_at: datetime,
    ) -> Application:
        """A provider applies with its sealed price and the SHA-256 of its proposal."""
        self._require("apply", ProjectState.PUBLISHED)
        self._require_in_period("apply", occurred_at)
        if provider_track not in self.eligible_tracks:
            shown = provider_track or "neither registered nor filed"
            raise IneligibleApplicant(
                f"provider {provider_id} is {shown}; project {self.reference} admits "
                f"{' or '.join(self.eligible_tracks)} organizations only"
            )
        if self.method is Method.INVITATION and provider_id not in self.invited_provider_ids:
            raise IneligibleApplicant(
                f"provider {provider_id} was not invited to project {self.reference}"
            )
        if any(a.provider_id == provider_id for a in self.live_applications):
            raise RuleViolation(
                f"provider {provider_id} already has an application in project {self.reference}; "
                "withdraw it first to apply again"
            )
        self._applied(
            application_id=application_id,
            provider_id=provider_id,
            proposal_sha256=proposal_sha256,
            price_commitment=price_commitment,
            sealed_price=sealed_price,
            occurred_at=occurred_at,
        )
        return self.applications[application_id]

    @event("ApplicationSubmitted")
    def _applied(
        self,
        *,
        application_id: UUID,
        provider_id: UUID,
        proposal_sha256: str,
        price_commitment: str,
        sealed_price: str,
        occurred_at: datetime,
    ) -> None:
        self.applications[application_id] = Application(
            application_id,
            provider_id,
            proposal_sha256,
            price_commitment,
            sealed_price,
            occurred_at,
        )

    def withdraw(self, *, application_id: UUID, provider_id: UUID, occurred_at: datetime) -> None:
        """The applicant withdraws its application before the deadline."""
        application = self.application(application_id)
        self._require("withdraw an application", ProjectState.PUBLISHED)
        self._require_in_period("withdraw", occurred_at)
        if application.provider_id != provider_id:
            raise RuleViolation("only the applicant can withdraw its application")
        if not application.is_live:
            raise RuleViolation(f"application {application_id} was already withdrawn")
        self._withdrawn(application_id=application_id, occurred_at=occurred_at)

    @event("ApplicationWithdrawn")
    def _withdrawn(self, *, application_id: UUID, occurred_at: datetime) -> None:
        self.applications[application_id].withdrawn_at = occurred_at

    def close(self, *, disclosures: list[dict[str, Any]], occurred_at: datetime) -> None:
        """Close the period and disclose every live application's price and nonce."""
        self._require("close applications", ProjectState.PUBLISHED)
        assert self.applications_close_at is not None
        if occurred_at < self.applications_close_at:
            raise OutsideApplicationPeriod(
                f"cannot close applications before {self.applications_close_at.isoformat()}"
            )
        live = {a.id for a in self.live_applications}
        if {d["application_id"] for d in disclosures} != live or len(disclosures) != len(live):
            raise InvalidCommand("closing discloses each live application's price exactly once")
        for disclosed in disclosures:
            application = self.applications[disclosed["application_id"]]
            text = f"{disclosed['price_fen']}:{disclosed['nonce']}"
            if hashlib.sha256(text.encode()).hexdigest() != application.price_commitment:
                raise SealBroken(
                    f"the price disclosed for application {application.id} does not match its "
                    "commitment"
                )
        self._closed(disclosures=disclosures, occurred_at=occurred_at)

    @event("ApplicationsClosed")
    def _closed(self, *, disclosures: list[dict[str, Any]], occurred_at: datetime) -> None:
        self.state = ProjectState.CLOSED
        for disclosed in disclosures:
            self.applications[disclosed["application_id"]].price_fen = disclosed["price_fen"]

    # --- evaluation and award -------------------------------------------------------------

    def evaluate(
        self, *, panel: list[str], scores: list[dict[str, Any]], occurred_at: datetime
    ) -> None:
        """The panel scores every live application, with its reasons and whether acceptable."""
        self._require("evaluate", ProjectState.CLOSED)
        if not panel:
            raise InvalidCommand("name the evaluation panel")
        live = {a.id for a in self.live_applications}
        scored = [s["application_id"] for s in scores]
        if set(scored) != live or len(scored) != len(live):
            raise EvaluationIncomplete(
                f"score each of the {len(live)} live applications once; got {len(scored)} scores"
            )
        for score in scores:
            if not 0 <= score["score"] <= 100:
                raise InvalidCommand(f"scores run from 0 to 100, got {score['score']}")
            _reason(score["reason"], "each score's reason")
        self._evaluated(panel=panel, scores=scores, occurred_at=occurred_at)

    @event("Evaluated")
    def _evaluated(
        self, *, panel: list[str], scores: list[dict[str, Any]], occurred_at: datetime
    ) -> None:
        self.state = ProjectState.EVALUATED
        self.panel = list(panel)
        for score in scores:
            application = self.applications[score["application_id"]]
            application.score = score["score"]
            application.acceptable = score["acceptable"]
            application.score_reason = score["reason"]

    def award(
        self,
        *,
        application_id: UUID,
        publicity_ends_at: datetime,
        justification: str | None,
        occurred_at: datetime,
    ) -> None:
        """Award to an acceptable application; a publicity period (公示) follows."""
        self._require("award", ProjectState.EVALUATED)
        application = self.application(application_id)
        if not application.is_live or not application.acceptable:
            raise RuleViolation(f"application {application_id} is not acceptable")
        best = max((a.score or 0) for a in self.live_applications if a.acceptable)
        if (application.score or 0) < best and not (justification and justification.strip()):
            raise AwardNotJustified(
                f"application {application_id} scored {application.score}, below the best "
                f"acceptable score {best}; an award to it needs a justification"
            )
        if publicity_ends_at <= occurred_at:
            raise InvalidCommand("the publicity period must end after the award")
        assert application.price_fen is not None
        self._awarded(
            application_id=application_id,
            provider_id=application.provider_id,
            price_fen=application.price_fen,
            justification=justification,
            publicity_ends_at=publicity_ends_at,
            occurred_at=occurred_at,
        )

    def award_directly(
        self,
        *,
        provider_id: UUID,
        price_fen: int,
        publicity_ends_at: datetime | None,
        occurred_at: datetime,
    ) -> None:
        """Award a single-source or entrusted purchase without competition, as justified."""
        self._require("award directly", ProjectState.DRAFT)
        if self.method not in NON_COMPETITIVE:
            raise ProjectNotInState(
                f"project {self.reference} is a {self.method.value} purchase: it is awarded "
                "after applications and evaluation"
            )
        if price_fen <= 0:
            raise InvalidCommand(f"price must be more than 0.00, got {format_fen(price_fen)}")
        if publicity_ends_at is not None and publicity_ends_at <= occurred_at:
            raise InvalidCommand("the publicity period must end after the award")
        self._awarded(
            application_id=None,
            provider_id=provider_id,
            price_fen=price_fen,
            justification=self.justification,
            publicity_ends_at=publicity_ends_at,
            occurred_at=occurred_at,
        )

    @event("Awarded")
    def _awarded(
        self,
        *,
        application_id: UUID | None,
        provider_id: UUID,
        price_fen: int,
        justification: str | None,
        publicity_ends_at: datetime | None,
        occurred_at: datetime,
    ) -> None:
        self.state = ProjectState.AWARDED
        self.awarded_application_id = application_id
        self.awarded_provider_id = provider_id
        self.awarded_price_fen = price_fen
        self.award_justification = justification
        self.publicity_ends_at = publicity_ends_at

    # --- publicity and objections ---------------------------------------------------------

    def lodge_objection(
        self, *, objection_id: UUID, provider_id: UUID, text: str, occurred_at: datetime
    ) -> Objection:
        """An applicant objects (质疑) to the award during the publicity period."""
        self._require("object", ProjectState.AWARDED)
        if not any(a.provider_id == provider_id for a in self.applications.values()):
            raise ObjectionNotAllowed(
                f"provider {provider_id} did not apply to project {self.reference}"
            )
        if self.publicity_ends_at is None or occurred_at > self.publicity_ends_at:
            raise ObjectionNotAllowed(
                f"the publicity period of project {self.reference} is over"
                if self.publicity_ends_at
                else f"project {self.reference} has no publicity period"
            )
        self._objected(
            objection_id=objection_id,
            provider_id=provider_id,
            text=_reason(text, "an objection's grounds"),
            occurred_at=occurred_at,
        )
        return self.objections[objection_id]

    @event("ObjectionLodged")
    def _objected(
        self, *, objection_id: UUID, provider_id: UUID, text: str, occurred_at: datetime
    ) -> None:
        self.objections[objection_id] = Objection(objection_id, provider_id, text, occurred_at)

    def answer_objection(self, *, objection_id: UUID, answer: str, occurred_at: datetime) -> None:
        """The purchaser answers an objection; the contract waits for every answer."""
        self._require("answer an objection", ProjectState.AWARDED)
        objection = self.objections.get(objection_id)
        if objection is None:
            raise NotFound(f"project {self.reference} has no objection {objection_id}")
        if objection.answer is not None:
            raise RuleViolation(f"objection {objection_id} was already answered")
        self._answered(
            objection_id=objection_id,
            answer=_reason(answer, "the answer"),
            occurred_at=occurred_at,
        )

    @event("ObjectionAnswered")
    def _answered(self, *, objection_id: UUID, answer: str, occurred_at: datetime) -> None:
        self.objections[objection_id].answer = answer
        self.objections[objection_id].answered_at = occurred_at

    # --- ending ---------------------------------------------------------------------------

    def check_contract(
        self, *, provider_id: UUID, value_fen: int, variation: str | None, occurred_at: datetime
    ) -> None:
        """Refuse a contract the award does not support, or one signed too early."""
        self._require("sign its contract", ProjectState.AWARDED)
        if self.publicity_ends_at is not None and occurred_at < self.publicity_ends_at:
            raise ContractingBlocked(
                f"the publicity period of project {self.reference} runs until "
                f"{self.publicity_ends_at.isoformat()}"
            )
        waiting = [o for o in self.objections.values() if o.answer is None]
        if waiting:
            raise ContractingBlocked(
                f"{len(waiting)} objection(s) to project {self.reference} await an answer"
            )
        if provider_id != self.awarded_provider_id:
            raise RuleViolation(
                f"project {self.reference} was awarded to {self.awarded_provider_id}, "
                f"not to {provider_id}"
            )
        assert self.awarded_price_fen is not None
        if value_fen != self.awarded_price_fen and not (variation and variation.strip()):
            raise RuleViolation(
                f"contract value {format_fen(value_fen)} differs from the award "
                f"{format_fen(self.awarded_price_fen)}; a variation needs its justification"
            )

    def record_contract(self, *, contract_id: UUID, occurred_at: datetime) -> None:
        """The awarded project is now under contract."""
        self._require("record its contract", ProjectState.AWARDED)
        self._contracted(contract_id=contract_id, occurred_at=occurred_at)

    @event("Contracted")
    def _contracted(self, *, contract_id: UUID, occurred_at: datetime) -> None:
        self.state = ProjectState.CONTRACTED
        self.contract_id = contract_id

    def cancel(self, *, reason: str, occurred_at: datetime) -> None:
        """Cancel the project, with a reason, any time before its contract."""
        self._require(
            "cancel",
            ProjectState.DRAFT,
            ProjectState.PUBLISHED,
            ProjectState.CLOSED,
            ProjectState.EVALUATED,
            ProjectState.AWARDED,
        )
        self._cancelled(reason=_reason(reason, "a reason"), occurred_at=occurred_at)

    @event("Cancelled")
    def _cancelled(self, *, reason: str, occurred_at: datetime) -> None:
        self.state = ProjectState.CANCELLED
        self.ending_reason = reason

    def declare_unsuccessful(self, *, reason: str, occurred_at: datetime) -> None:
        """No acceptable application: the project ends without an award."""
        self._require("declare unsuccessful", ProjectState.CLOSED, ProjectState.EVALUATED)
        self._unsuccessful(reason=_reason(reason, "a reason"), occurred_at=occurred_at)

    @event("Unsuccessful")
    def _unsuccessful(self, *, reason: str, occurred_at: datetime) -> None:
        self.state = ProjectState.UNSUCCESSFUL
        self.ending_reason = reason
