"""The Grant's invariants: tranches within the grant, reports within tranches, an accounted end."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from proto.catalog import Organization, OrganizationKind, ProviderCategory, Registration, Track
from proto.ledger_events import EVENT_PAYLOADS
from services.ledger.domain.eligibility import NotGrantable, check_grant_parties
from services.ledger.domain.errors import InvalidCommand, ReferenceConflict
from services.ledger.domain.grant import (
    Grant,
    GrantFullyDisbursed,
    GrantNotInState,
    GrantState,
    NothingDisbursed,
    SpendingExceedsDisbursed,
    TrancheExceedsGrant,
    UseNotReported,
)
from services.ledger.feed import EVENT_TYPES
from tests.unit.test_wire_contracts import domain_event_names

WHEN = datetime(2014, 5, 6, tzinfo=UTC)
REPORT = "ab" * 32
LATER_REPORT = "cd" * 32
# Bao'an: 159 organizations funded with 7,350,000.00 CNY, about 46,000.00 each.
GRANT_FEN = 4_600_000


def award(amount_fen: int = GRANT_FEN, **overrides: Any) -> Grant:
    terms: dict[str, Any] = {
        "reference": "BA-2014-G-017",
        "purpose": "elderly mutual-help activities in Haiyu community",
        "budget_id": uuid4(),
        "allocation_id": uuid4(),
        "grantor_id": uuid4(),
        "grantee_id": uuid4(),
        "amount_fen": amount_fen,
        "occurred_at": WHEN,
    }
    terms.update(overrides)
    return Grant.award(**terms)


def report(grant: Grant, spent_fen: int, digest: str = REPORT) -> None:
    grant.report_use(
        report_sha256=digest, summary="activities held", spent_fen=spent_fen, occurred_at=WHEN
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"amount_fen": 0}, "grant must be more than 0.00, got 0.00"),
        ({"reference": "  "}, "needs its reference"),
        ({"purpose": ""}, "needs its purpose"),
    ],
)
def test_awarding_refuses_malformed_terms(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        award(**overrides)


def test_grantor_and_grantee_differ() -> None:
    same = uuid4()
    with pytest.raises(InvalidCommand, match="two different organizations"):
        award(grantor_id=same, grantee_id=same)


def test_a_new_grant_holds_its_whole_amount() -> None:
    grant = award()
    assert grant.state is GrantState.AWARDED
    assert (grant.committed_fen, grant.disbursed_fen, grant.undisbursed_fen) == (
        GRANT_FEN,
        0,
        GRANT_FEN,
    )


def test_tranches_never_exceed_the_grant() -> None:
    grant = award(100_000)
    grant.disburse(reference="GK-1", amount_fen=60_000, occurred_at=WHEN)
    with pytest.raises(TrancheExceedsGrant) as raised:
        grant.disburse(reference="GK-2", amount_fen=40_001, occurred_at=WHEN)
    assert str(raised.value) == (
        "tranche 400.01 exceeds the undisbursed 400.00 of grant 1,000.00 (disbursed 600.00)"
    )
    grant.disburse(reference="GK-2", amount_fen=40_000, occurred_at=WHEN)
    assert (grant.disbursed_fen, grant.undisbursed_fen) == (100_000, 0)
    assert [t.reference for t in grant.tranches.values()] == ["GK-1", "GK-2"]


@pytest.mark.parametrize(
    ("reference", "amount_fen", "message"),
    [
        (" ", 1, "needs the treasury's payment reference"),
        ("GK-1", 0, "tranche must be more than 0.00, got 0.00"),
    ],
)
def test_tranches_refuse_malformed_terms(reference: str, amount_fen: int, message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        award().disburse(reference=reference, amount_fen=amount_fen, occurred_at=WHEN)


def test_a_treasury_reference_is_one_tranche() -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=1_000, occurred_at=WHEN)
    with pytest.raises(ReferenceConflict, match="'GK-1' is already used on grant BA-2014-G-017"):
        grant.disburse(reference="GK-1", amount_fen=1_000, occurred_at=WHEN)
    assert grant.disbursed_fen == 1_000


def test_reports_need_a_tranche_first() -> None:
    grant = award()
    with pytest.raises(NothingDisbursed) as raised:
        report(grant, 0)
    assert str(raised.value) == (
        "cannot report on use: nothing of grant BA-2014-G-017 (46,000.00) has been disbursed yet"
    )


def test_reported_spending_never_exceeds_what_was_disbursed() -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=3_000_000, occurred_at=WHEN)
    with pytest.raises(SpendingExceedsDisbursed) as raised:
        report(grant, 3_000_001)
    assert str(raised.value) == "reported spending 30,000.01 exceeds the 30,000.00 disbursed"
    report(grant, 2_800_000)
    assert (grant.spent_fen, grant.unspent_fen) == (2_800_000, 200_000)
    assert grant.reports[0].disbursed_fen == 3_000_000


@pytest.mark.parametrize(
    ("digest", "spent_fen", "message"),
    [
        ("AB" * 32, 1, "64 lowercase hex digits"),
        ("ab" * 31, 1, "64 lowercase hex digits"),
        (REPORT, -1, "spending must not be negative, got -0.01"),
    ],
)
def test_reports_refuse_malformed_terms(digest: str, spent_fen: int, message: str) -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=1_000, occurred_at=WHEN)
    with pytest.raises(InvalidCommand, match=message):
        report(grant, spent_fen, digest)


def test_a_report_document_is_recorded_once() -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=1_000, occurred_at=WHEN)
    report(grant, 500)
    with pytest.raises(ReferenceConflict, match="already on record for grant BA-2014-G-017"):
        report(grant, 600)
    assert [r.spent_fen for r in grant.reports] == [500]


def test_closing_needs_a_tranche() -> None:
    grant = award()
    with pytest.raises(NothingDisbursed) as raised:
        grant.close(occurred_at=WHEN)
    assert str(raised.value) == (
        "cannot close: nothing of grant BA-2014-G-017 (46,000.00) was disbursed; revoke it instead"
    )


def test_closing_needs_a_report_on_use() -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=2_000_000, occurred_at=WHEN)
    with pytest.raises(UseNotReported) as raised:
        grant.close(occurred_at=WHEN)
    assert str(raised.value) == (
        "cannot close: grant BA-2014-G-017 disbursed 20,000.00 and has no report on use"
    )


def test_closing_needs_a_report_covering_every_tranche() -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=2_000_000, occurred_at=WHEN)
    report(grant, 2_000_000)
    grant.disburse(reference="GK-2", amount_fen=1_000_000, occurred_at=WHEN)
    with pytest.raises(UseNotReported) as raised:
        grant.close(occurred_at=WHEN)
    assert str(raised.value) == (
        "cannot close: the latest report on use of grant BA-2014-G-017 covers 20,000.00 of the "
        "30,000.00 disbursed; report on every tranche first"
    )
    assert grant.state is GrantState.AWARDED


def test_closing_releases_the_undisbursed_remainder_and_keeps_the_unspent() -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=3_000_000, occurred_at=WHEN)
    grant.disburse(reference="GK-2", amount_fen=1_000_000, occurred_at=WHEN)
    report(grant, 3_850_000)
    assert grant.close(occurred_at=WHEN + timedelta(days=1)) == 600_000
    assert grant.state is GrantState.CLOSED
    assert (grant.released_fen, grant.committed_fen, grant.unspent_fen) == (
        600_000,
        4_000_000,
        150_000,
    )
    assert grant.ended_at == WHEN + timedelta(days=1)
    closed: Any = grant.collect_events()[-1]
    assert (type(closed).__qualname__, closed.released_fen, closed.unspent_fen) == (
        "Grant.Closed",
        600_000,
        150_000,
    )


def test_a_fully_disbursed_grant_closes_releasing_nothing() -> None:
    grant = award(100_000)
    grant.disburse(reference="GK-1", amount_fen=100_000, occurred_at=WHEN)
    report(grant, 100_000)
    assert grant.close(occurred_at=WHEN) == 0
    assert (grant.committed_fen, grant.unspent_fen) == (100_000, 0)


def test_nothing_happens_to_a_closed_grant() -> None:
    grant = award(100_000)
    grant.disburse(reference="GK-1", amount_fen=50_000, occurred_at=WHEN)
    report(grant, 50_000)
    grant.close(occurred_at=WHEN)
    with pytest.raises(GrantNotInState, match="cannot disburse a tranche: grant BA-2014-G-017 is"):
        grant.disburse(reference="GK-2", amount_fen=1, occurred_at=WHEN)
    with pytest.raises(GrantNotInState, match="is closed, not awarded or revoked"):
        report(grant, 50_000, LATER_REPORT)
    with pytest.raises(GrantNotInState, match="cannot close: grant BA-2014-G-017 is closed"):
        grant.close(occurred_at=WHEN)
    with pytest.raises(GrantNotInState, match="cannot revoke: grant BA-2014-G-017 is closed"):
        grant.revoke(reason="late", occurred_at=WHEN)


def test_revocation_needs_a_reason_and_releases_the_undisbursed_part() -> None:
    grant = award()
    grant.disburse(reference="GK-1", amount_fen=1_500_000, occurred_at=WHEN)
    with pytest.raises(InvalidCommand, match="a reason is required"):
        grant.revoke(reason=" ", occurred_at=WHEN)
    assert grant.revoke(reason="organization deregistered", occurred_at=WHEN) == 3_100_000
    assert grant.state is GrantState.REVOKED
    assert (grant.released_fen, grant.committed_fen) == (3_100_000, 1_500_000)
    assert grant.revocation_reason == "organization deregistered"
    with pytest.raises(GrantNotInState, match="is revoked, not awarded"):
        grant.disburse(reference="GK-2", amount_fen=1, occurred_at=WHEN)
    with pytest.raises(GrantNotInState, match="cannot close: grant BA-2014-G-017 is revoked"):
        grant.close(occurred_at=WHEN)
    # What was disbursed before the revocation must still be accounted for.
    report(grant, 1_200_000)
    assert grant.unspent_fen == 300_000


def test_a_fully_disbursed_grant_cannot_be_revoked() -> None:
    grant = award(100_000)
    grant.disburse(reference="GK-1", amount_fen=100_000, occurred_at=WHEN)
    with pytest.raises(GrantFullyDisbursed) as raised:
        grant.revoke(reason="misuse suspected", occurred_at=WHEN)
    assert str(raised.value) == (
        "cannot revoke: grant BA-2014-G-017 is fully disbursed (1,000.00 of 1,000.00); "
        "report on its use and close it"
    )
    assert grant.state is GrantState.AWARDED


def test_nothing_is_dated_before_the_grant_was_awarded() -> None:
    grant = award()
    with pytest.raises(InvalidCommand, match="is before this grant began"):
        grant.disburse(reference="GK-1", amount_fen=1, occurred_at=WHEN - timedelta(seconds=1))
    assert grant.tranches == {}


# --- who may give and receive a grant, as the catalog says ----------------------------------

CHINA = timezone(timedelta(hours=8))
AWARDED = datetime(2014, 5, 6, 0, 30, tzinfo=CHINA)
FILED = Registration(track=Track.FILED, category=ProviderCategory.COMMUNITY_PUBLIC_INTEREST)


def organization(kind: OrganizationKind, name: str, **fields: Any) -> Organization:
    return Organization(id=uuid4(), version=1, kind=kind, name=name, **fields)


def test_a_street_office_grants_to_a_filed_organization() -> None:
    office = organization(OrganizationKind.STREET_OFFICE, "Xixiang street office")
    grantee = organization(
        OrganizationKind.SOCIAL_ORGANIZATION, "Haiyu volunteers", registration=FILED
    )
    check_grant_parties(
        grantor_id=office.id,
        grantee_id=grantee.id,
        organizations={office.id: office, grantee.id: grantee},
        as_of=AWARDED,
    )


def test_grant_parties_are_refused_naming_the_party_and_why() -> None:
    office = organization(OrganizationKind.STREET_OFFICE, "Xixiang street office")
    community = organization(
        OrganizationKind.COMMUNITY, "Haiyu community", street_office_id=office.id
    )
    unregistered = organization(OrganizationKind.SOCIAL_WORK_AGENCY, "Tongxin social work")
    known = {o.id: o for o in (office, community, unregistered)}

    def refusal(grantor_id: Any, grantee_id: Any) -> str:
        with pytest.raises(NotGrantable) as raised:
            check_grant_parties(
                grantor_id=grantor_id,
                grantee_id=grantee_id,
                organizations=known,
                as_of=AWARDED,
            )
        return str(raised.value)

    assert refusal(community.id, unregistered.id) == (
        f"grantor {community.id} (Haiyu community) is a community, not a street_office"
    )
    assert refusal(office.id, community.id) == (
        f"grantee {community.id} (Haiyu community) is a community, not a social_organization "
        "or social_work_agency"
    )
    assert refusal(office.id, unregistered.id) == (
        f"grantee {unregistered.id} (Tongxin social work) is neither registered nor filed"
    )
    stranger = uuid4()
    # The day is the awarding day in the caller's timezone, not UTC's day before.
    assert re.fullmatch(
        f"grantee {stranger} is not in the catalog as of 2014-05-06", refusal(office.id, stranger)
    )
    assert issubclass(NotGrantable, InvalidCommand)


def test_every_grant_event_has_a_wire_type_and_payload() -> None:
    names = domain_event_names(Grant)
    assert names == {
        "Grant.Awarded",
        "Grant.TrancheDisbursed",
        "Grant.UseReported",
        "Grant.Closed",
        "Grant.Revoked",
    }
    assert names <= set(EVENT_TYPES)
    assert {EVENT_TYPES[name] for name in names} <= set(EVENT_PAYLOADS)
