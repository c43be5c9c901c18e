"""The PurchaseProject's rules: who applies when, sealed prices, scoring, award, objections."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.ledger.domain.errors import InvalidCommand, RuleViolation
from services.ledger.domain.procurement import (
    AwardNotJustified,
    ContractingBlocked,
    EvaluationIncomplete,
    IneligibleApplicant,
    Method,
    ObjectionNotAllowed,
    OutsideApplicationPeriod,
    ProjectNotInState,
    ProjectState,
    PurchaseProject,
    SealBroken,
)
from services.ledger.sealing import PriceSealer

OPENED = datetime(2014, 3, 31, tzinfo=UTC)
PERIOD_OPENS = datetime(2014, 4, 1, tzinfo=UTC)
PERIOD_CLOSES = datetime(2014, 4, 10, tzinfo=UTC)
DURING = datetime(2014, 4, 5, tzinfo=UTC)
AFTER = datetime(2014, 4, 11, tzinfo=UTC)
SEALER = PriceSealer(b"unit-test key")


def draft(method: Method = Method.OPEN_CALL, **overrides: Any) -> PurchaseProject:
    terms: dict[str, Any] = {
        "reference": "WH-2014-P-001",
        "title": "Home care for elderly people on minimum living allowance",
        "purchaser_id": uuid4(),
        "budget_id": uuid4(),
        "allocation_id": uuid4(),
        "item_ids": [uuid4()],
        "estimated_value_fen": 40_000_000,
        "method": method,
        "eligible_tracks": ["registered"],
        "invited_provider_ids": [],
        "applications_open_at": PERIOD_OPENS,
        "applications_close_at": PERIOD_CLOSES,
        "fair": "Chengdu 2014",
        "justification": None,
        "occurred_at": OPENED,
    }
    terms.update(overrides)
    return PurchaseProject.open(**terms)


def published() -> PurchaseProject:
    project = draft()
    project.publish(occurred_at=OPENED)
    return project


def apply(
    project: PurchaseProject,
    price_fen: int,
    provider_id: UUID | None = None,
    track: str = "registered",
    when: datetime = DURING,
) -> UUID:
    application_id = uuid4()
    sealed = SEALER.seal(application_id, price_fen)
    project.apply(
        application_id=application_id,
        provider_id=provider_id or uuid4(),
        provider_track=track,
        proposal_sha256="ab" * 32,
        price_commitment=sealed.commitment,
        sealed_price=sealed.sealed,
        occurred_at=when,
    )
    return application_id


def close(project: PurchaseProject, when: datetime = AFTER) -> None:
    disclosures = []
    for application in project.live_applications:
        price, nonce = SEALER.open(application.id, application.sealed_price)
        disclosures.append({"application_id": application.id, "price_fen": price, "nonce": nonce})
    project.close(disclosures=disclosures, occurred_at=when)


def scored(project: PurchaseProject, scores: dict[UUID, tuple[int, bool]]) -> None:
    project.evaluate(
        panel=["Panel member A", "Panel member B", "Panel member C"],
        scores=[
            {"application_id": a, "score": s, "acceptable": ok, "reason": f"scored {s}"}
            for a, (s, ok) in scores.items()
        ],
        occurred_at=AFTER,
    )


def test_competitive_methods_need_a_period_and_direct_ones_a_justification() -> None:
    with pytest.raises(InvalidCommand, match="needs its application period"):
        draft(applications_open_at=None)
    with pytest.raises(InvalidCommand, match="must end after it opens"):
        draft(applications_close_at=PERIOD_OPENS)
    with pytest.raises(InvalidCommand, match="justification is required"):
        draft(Method.DIRECT_ENTRUSTMENT)
    with pytest.raises(InvalidCommand, match="names the providers invited"):
        draft(Method.INVITATION)
    assert (
        draft(Method.SINGLE_SOURCE, justification="only provider on site").state
        is ProjectState.DRAFT
    )


def test_applications_only_in_the_period_and_only_from_the_eligible() -> None:
    project = published()
    with pytest.raises(OutsideApplicationPeriod, match="applications open at"):
        apply(project, 1_000, when=OPENED)
    with pytest.raises(OutsideApplicationPeriod, match="applications closed at"):
        apply(project, 1_000, when=AFTER)
    with pytest.raises(IneligibleApplicant, match="admits registered organizations only"):
        apply(project, 1_000, track="filed")
    provider = uuid4()
    apply(project, 1_000, provider)
    with pytest.raises(RuleViolation, match="already has an application"):
        apply(project, 900, provider)


def test_an_invitation_admits_only_the_invited() -> None:
    invited = uuid4()
    project = draft(Method.INVITATION, invited_provider_ids=[invited])
    project.publish(occurred_at=OPENED)
    with pytest.raises(IneligibleApplicant, match="was not invited"):
        apply(project, 1_000)
    apply(project, 1_000, invited)


def test_prices_stay_sealed_until_closing_then_match_their_commitments() -> None:
    project = published()
    first = apply(project, 35_000_000)
    assert project.applications[first].price_fen is None
    close(project)
    assert project.applications[first].price_fen == 35_000_000
    other = published()
    application = other.applications[apply(other, 1_000)]
    with pytest.raises(SealBroken, match="does not match its commitment"):
        other.close(
            disclosures=[{"application_id": application.id, "price_fen": 999, "nonce": "x"}],
            occurred_at=AFTER,
        )


def test_withdrawal_by_the_applicant_before_the_deadline() -> None:
    project = published()
    provider = uuid4()
    application = apply(project, 1_000, provider)
    with pytest.raises(RuleViolation, match="only the applicant"):
        project.withdraw(application_id=application, provider_id=uuid4(), occurred_at=DURING)
    with pytest.raises(OutsideApplicationPeriod):
        project.withdraw(application_id=application, provider_id=provider, occurred_at=AFTER)
    project.withdraw(application_id=application, provider_id=provider, occurred_at=DURING)
    assert project.live_applications == []
    with pytest.raises(OutsideApplicationPeriod, match="before"):
        project.close(disclosures=[], occurred_at=DURING)


def test_every_live_application_is_scored_once_with_reasons() -> None:
    project = published()
    a, b = apply(project, 1_000), apply(project, 2_000)
    close(project)
    with pytest.raises(EvaluationIncomplete, match="score each of the 2 live applications"):
        scored(project, {a: (80, True)})
    with pytest.raises(InvalidCommand, match="scores run from 0 to 100"):
        scored(project, {a: (101, True), b: (50, True)})
    scored(project, {a: (80, True), b: (90, False)})
    assert project.state is ProjectState.EVALUATED


def test_the_award_goes_to_the_best_acceptable_unless_justified() -> None:
    project = published()
    a, b, c = apply(project, 38_000_000), apply(project, 36_000_000), apply(project, 30_000_000)
    close(project)
    scored(project, {a: (92, True), b: (85, True), c: (40, False)})
    ends = AFTER + timedelta(days=7)
    with pytest.raises(RuleViolation, match="is not acceptable"):
        project.award(
            application_id=c, publicity_ends_at=ends, justification=None, occurred_at=AFTER
        )
    with pytest.raises(
        AwardNotJustified, match=re.escape("scored 85, below the best acceptable score 92")
    ):
        project.award(
            application_id=b, publicity_ends_at=ends, justification=None, occurred_at=AFTER
        )
    project.award(application_id=a, publicity_ends_at=ends, justification=None, occurred_at=AFTER)
    assert (project.awarded_price_fen, project.state) == (38_000_000, ProjectState.AWARDED)


def awarded_with_publicity() -> tuple[PurchaseProject, UUID, UUID]:
    project = published()
    winner, loser = uuid4(), uuid4()
    a, b = apply(project, 1_000, winner), apply(project, 900, loser)
    close(project)
    scored(project, {a: (90, True), b: (70, True)})
    project.award(
        application_id=a,
        publicity_ends_at=AFTER + timedelta(days=7),
        justification=None,
        occurred_at=AFTER,
    )
    return project, winner, loser


def test_objections_come_from_applicants_during_publicity_and_block_the_contract() -> None:
    project, winner, loser = awarded_with_publicity()
    in_publicity, after_publicity = AFTER + timedelta(days=2), AFTER + timedelta(days=8)
    with pytest.raises(ObjectionNotAllowed, match="did not apply"):
        project.lodge_objection(
            objection_id=uuid4(), provider_id=uuid4(), text="x", occurred_at=in_publicity
        )
    with pytest.raises(ObjectionNotAllowed, match=r"publicity period .* is over"):
        project.lodge_objection(
            objection_id=uuid4(), provider_id=loser, text="x", occurred_at=after_publicity
        )
    objection = project.lodge_objection(
        objection_id=uuid4(),
        provider_id=loser,
        text="the winner's staff are not certified",
        occurred_at=in_publicity,
    )
    with pytest.raises(ContractingBlocked, match="publicity period"):
        project.check_contract(
            provider_id=winner, value_fen=1_000, variation=None, occurred_at=in_publicity
        )
    with pytest.raises(ContractingBlocked, match="1 objection"):
        project.check_contract(
            provider_id=winner, value_fen=1_000, variation=None, occurred_at=after_publicity
        )
    project.answer_objection(
        objection_id=objection.id,
        answer="certificates checked: all valid",
        occurred_at=after_publicity,
    )
    with pytest.raises(RuleViolation, match="already answered"):
        project.answer_objection(
            objection_id=objection.id, answer="again", occurred_at=after_publicity
        )
    project.check_contract(
        provider_id=winner, value_fen=1_000, variation=None, occurred_at=after_publicity
    )


def test_the_contract_follows_the_award_unless_a_variation_is_justified() -> None:
    project, winner, loser = awarded_with_publicity()
    later = AFTER + timedelta(days=8)
    with pytest.raises(RuleViolation, match="was awarded to"):
        project.check_contract(
            provider_id=loser, value_fen=1_000, variation=None, occurred_at=later
        )
    with pytest.raises(RuleViolation, match="a variation needs its justification"):
        project.check_contract(
            provider_id=winner, value_fen=1_100, variation=None, occurred_at=later
        )
    project.check_contract(
        provider_id=winner, value_fen=1_100, variation="scope +10%", occurred_at=later
    )
    project.record_contract(contract_id=uuid4(), occurred_at=later)
    assert project.state is ProjectState.CONTRACTED
    with pytest.raises(ProjectNotInState):
        project.cancel(reason="too late", occurred_at=later)


def test_direct_entrustment_skips_the_competition() -> None:
    project = draft(
        Method.DIRECT_ENTRUSTMENT,
        justification="the center already runs the street's home-care center",
    )
    with pytest.raises(ProjectNotInState, match="direct_entrustment purchase"):
        project.publish(occurred_at=OPENED)
    provider = uuid4()
    project.award_directly(
        provider_id=provider, price_fen=36_000_000, publicity_ends_at=None, occurred_at=OPENED
    )
    assert project.award_justification == "the center already runs the street's home-care center"
    project.check_contract(
        provider_id=provider, value_fen=36_000_000, variation=None, occurred_at=OPENED
    )
    competitive = draft()
    with pytest.raises(ProjectNotInState, match="awarded after applications"):
        competitive.award_directly(
            provider_id=provider, price_fen=1, publicity_ends_at=None, occurred_at=OPENED
        )


def test_unsuccessful_and_cancelled_projects_keep_their_reasons() -> None:
    project = published()
    close(project)
    with pytest.raises(InvalidCommand, match="a reason is required"):
        project.declare_unsuccessful(reason=" ", occurred_at=AFTER)
    project.declare_unsuccessful(reason="no applications", occurred_at=AFTER)
    assert (project.state, project.ending_reason) == (ProjectState.UNSUCCESSFUL, "no applications")
    other = draft()
    other.cancel(reason="item retired", occurred_at=OPENED)
    assert other.state is ProjectState.CANCELLED
