"""The Budget's invariants: allocations within the appropriation, commitments within allocations."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.ledger.domain.budget import Budget, CommitmentKind, Direction, SourceKind
from services.ledger.domain.errors import (
    AllocationBelowCommitments,
    AllocationExceedsAppropriation,
    AppropriationBelowAllocations,
    CommitmentExceedsAllocation,
    FundingSourceOverdrawn,
    InvalidCommand,
    NotFound,
    StreetOfficeAlreadyAllocated,
)

WHEN = datetime(2014, 3, 31, tzinfo=UTC)
PUSH_DOWN_FEN = 3_085_000_000  # 30,850,000.00 CNY


FINANCE_ID = uuid4()


def open_budget(*sources: tuple[SourceKind, str, int]) -> Budget:
    return Budget.open(
        holder_id=FINANCE_ID,
        year=2014,
        purpose="push-down services",
        title="Wuhou 2014 push-down items",
        sources=list(sources) or [(SourceKind.DISTRICT_FINANCE, "district finance", PUSH_DOWN_FEN)],
        occurred_at=WHEN,
    )


def test_appropriation_is_the_sum_of_funding_sources() -> None:
    budget = open_budget(
        (SourceKind.DISTRICT_FINANCE, "district finance", 2_500_000_000),
        (SourceKind.STREET_OFFICE, "street offices", 500_000_000),
        (SourceKind.SOCIAL_CAPITAL, "property companies", 85_000_000),
    )
    assert budget.appropriation_fen == PUSH_DOWN_FEN
    assert budget.unallocated_fen == PUSH_DOWN_FEN


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([], "at least one funding source"),
        ([(SourceKind.OTHER, "a", 0)], "must be more than 0.00"),
        ([(SourceKind.OTHER, "a", 1), (SourceKind.OTHER, "a", 2)], "distinct"),
    ],
)
def test_opening_refuses_bad_sources(
    sources: list[tuple[SourceKind, str, int]], message: str
) -> None:
    with pytest.raises(InvalidCommand, match=message):
        Budget.open(
            holder_id=FINANCE_ID,
            year=2014,
            purpose="p",
            title="t",
            sources=sources,
            occurred_at=WHEN,
        )


def test_allocations_never_exceed_the_appropriation() -> None:
    budget = open_budget((SourceKind.DISTRICT_FINANCE, "district finance", 100_000))
    budget.allocate(street_office_id=uuid4(), amount_fen=60_000, occurred_at=WHEN)
    with pytest.raises(AllocationExceedsAppropriation) as raised:
        budget.allocate(street_office_id=uuid4(), amount_fen=40_001, occurred_at=WHEN)
    assert str(raised.value) == (
        "allocation 400.01 exceeds unallocated 400.00 of appropriation 1,000.00"
    )
    budget.allocate(street_office_id=uuid4(), amount_fen=40_000, occurred_at=WHEN)
    assert budget.unallocated_fen == 0


def test_a_street_office_has_one_allocation_per_budget() -> None:
    budget = open_budget()
    street = uuid4()
    budget.allocate(street_office_id=street, amount_fen=1_000, occurred_at=WHEN)
    with pytest.raises(StreetOfficeAlreadyAllocated, match="adjust it instead"):
        budget.allocate(street_office_id=street, amount_fen=2_000, occurred_at=WHEN)


def test_commitments_never_exceed_the_allocation() -> None:
    budget = open_budget()
    allocation = budget.allocate(street_office_id=uuid4(), amount_fen=100_000, occurred_at=WHEN)
    budget.commit(
        allocation_id=allocation.id,
        commitment_id=uuid4(),
        kind=CommitmentKind.CONTRACT,
        amount_fen=70_000,
        occurred_at=WHEN,
    )
    with pytest.raises(CommitmentExceedsAllocation) as raised:
        budget.commit(
            allocation_id=allocation.id,
            commitment_id=uuid4(),
            kind=CommitmentKind.CONTRACT,
            amount_fen=30_001,
            occurred_at=WHEN,
        )
    assert (
        str(raised.value)
        == "contract value 300.01 exceeds the uncommitted 300.00 of allocation 1,000.00"
    )
    assert allocation.available_fen == 30_000


def test_release_returns_commitment_to_the_allocation() -> None:
    budget = open_budget()
    allocation = budget.allocate(street_office_id=uuid4(), amount_fen=100_000, occurred_at=WHEN)
    contract = uuid4()
    budget.commit(
        allocation_id=allocation.id,
        commitment_id=contract,
        kind=CommitmentKind.CONTRACT,
        amount_fen=80_000,
        occurred_at=WHEN,
    )
    budget.release(
        allocation_id=allocation.id,
        commitment_id=contract,
        amount_fen=30_000,
        reason="done",
        occurred_at=WHEN,
    )
    assert allocation.committed_fen == 50_000
    with pytest.raises(
        InvalidCommand, match=re.escape("cannot release 500.01 of a commitment of 500.00")
    ):
        budget.release(
            allocation_id=allocation.id,
            commitment_id=contract,
            amount_fen=50_001,
            reason="x",
            occurred_at=WHEN,
        )


def test_adjustments_need_a_reason_and_keep_allocations_covered() -> None:
    budget = open_budget((SourceKind.DISTRICT_FINANCE, "district finance", 100_000))
    budget.allocate(street_office_id=uuid4(), amount_fen=80_000, occurred_at=WHEN)
    with pytest.raises(InvalidCommand, match="reason is required"):
        budget.adjust(
            source_name="district finance",
            direction=Direction.DECREASE,
            amount_fen=1,
            reason=" ",
            occurred_at=WHEN,
        )
    with pytest.raises(
        AppropriationBelowAllocations, match=re.escape("exceeds unallocated 200.00")
    ):
        budget.adjust(
            source_name="district finance",
            direction=Direction.DECREASE,
            amount_fen=20_001,
            reason="mid-year cut",
            occurred_at=WHEN,
        )
    budget.adjust(
        source_name="street co-funding",
        source_kind=SourceKind.STREET_OFFICE,
        direction=Direction.INCREASE,
        amount_fen=50_000,
        reason="street co-funding",
        occurred_at=WHEN,
    )
    assert budget.appropriation_fen == 150_000
    with pytest.raises(FundingSourceOverdrawn):
        budget.adjust(
            source_name="street co-funding",
            direction=Direction.DECREASE,
            amount_fen=50_001,
            reason="x",
            occurred_at=WHEN,
        )


def test_allocation_adjustments_respect_commitments_and_appropriation() -> None:
    budget = open_budget((SourceKind.DISTRICT_FINANCE, "district finance", 100_000))
    allocation = budget.allocate(street_office_id=uuid4(), amount_fen=50_000, occurred_at=WHEN)
    budget.commit(
        allocation_id=allocation.id,
        commitment_id=uuid4(),
        kind=CommitmentKind.CONTRACT,
        amount_fen=40_000,
        occurred_at=WHEN,
    )
    with pytest.raises(AllocationBelowCommitments):
        budget.adjust_allocation(
            allocation_id=allocation.id,
            direction=Direction.DECREASE,
            amount_fen=10_001,
            reason="x",
            occurred_at=WHEN,
        )
    with pytest.raises(AllocationExceedsAppropriation):
        budget.adjust_allocation(
            allocation_id=allocation.id,
            direction=Direction.INCREASE,
            amount_fen=50_001,
            reason="x",
            occurred_at=WHEN,
        )
    budget.adjust_allocation(
        allocation_id=allocation.id,
        direction=Direction.DECREASE,
        amount_fen=10_000,
        reason="returned to district",
        occurred_at=WHEN,
    )
    assert (allocation.amount_fen, budget.unallocated_fen) == (40_000, 60_000)
    with pytest.raises(NotFound):
        budget.allocation(uuid4())


def test_replaying_the_events_rebuilds_the_same_budget() -> None:
    budget = open_budget()
    allocation = budget.allocate(street_office_id=uuid4(), amount_fen=100_000, occurred_at=WHEN)
    budget.commit(
        allocation_id=allocation.id,
        commitment_id=uuid4(),
        kind=CommitmentKind.CONTRACT,
        amount_fen=40_000,
        occurred_at=WHEN,
    )
    replayed = None
    for domain_event in budget.collect_events():
        replayed = domain_event.mutate(replayed)
    assert isinstance(replayed, Budget)
    assert replayed.allocations == budget.allocations
    assert replayed.appropriation_fen == budget.appropriation_fen


def test_nothing_is_dated_before_the_budget_opened() -> None:
    budget = open_budget()
    with pytest.raises(InvalidCommand, match="is before this budget began"):
        budget.allocate(
            street_office_id=uuid4(), amount_fen=1, occurred_at=datetime(2013, 12, 31, tzinfo=UTC)
        )
    assert budget.allocations == {}


def test_no_total_grows_past_what_the_wire_can_carry() -> None:
    largest = 10**17 - 1  # 999,999,999,999,999.99
    with pytest.raises(InvalidCommand, match="above the largest amount the ledger records"):
        open_budget(
            (SourceKind.DISTRICT_FINANCE, "a", largest),
            (SourceKind.STREET_OFFICE, "b", 1),
        )
    budget = open_budget((SourceKind.DISTRICT_FINANCE, "a", largest))
    with pytest.raises(InvalidCommand, match="above the largest amount"):
        budget.adjust(
            source_name="a",
            direction=Direction.INCREASE,
            amount_fen=1,
            reason="more",
            occurred_at=WHEN,
        )
