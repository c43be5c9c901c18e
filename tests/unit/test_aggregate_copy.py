"""A command's copy of an aggregate: equal to the one kept in memory, and independent of it."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from services.ledger.domain.budget import Budget, CommitmentKind, SourceKind
from services.ledger.domain.contract import Contract, DeliveryState

WHEN = datetime(2014, 4, 14, tzinfo=UTC)


def contract_with_deliveries(count: int) -> Contract:
    contract = Contract.sign(
        reference="C-1",
        title="t",
        project_id=uuid4(),
        variation=None,
        budget_id=uuid4(),
        allocation_id=uuid4(),
        purchaser_id=uuid4(),
        implementer_id=uuid4(),
        provider_id=uuid4(),
        item_ids=[uuid4()],
        value_fen=1_000_000,
        period_start=date(2014, 4, 14),
        period_end=date(2014, 12, 31),
        occurred_at=WHEN,
    )
    contract.activate(occurred_at=WHEN)
    for _ in range(count):
        contract.report_delivery(
            reference=None,
            period_start=date(2014, 5, 1),
            period_end=date(2014, 5, 31),
            quantity=1,
            unit="visit",
            amount_fen=100,
            evidence_sha256=["ab" * 32],
            beneficiary_digests=["cd" * 32],
            description="d",
            occurred_at=WHEN,
        )
    contract.collect_events()
    return contract


def test_a_copied_contract_has_the_same_state_and_changes_apart() -> None:
    kept = contract_with_deliveries(3)
    mine = copy.deepcopy(kept)
    assert vars(mine).keys() == vars(kept).keys()
    assert mine.deliveries == kept.deliveries
    assert (mine.id, mine.version, mine.state) == (kept.id, kept.version, kept.state)

    first = next(iter(mine.deliveries))
    mine.accept_delivery(delivery_id=first, amount_fen=100, score=90, note="ok", occurred_at=WHEN)
    assert mine.deliveries[first].state is DeliveryState.ACCEPTED
    assert kept.deliveries[first].state is DeliveryState.PENDING
    assert kept.accepted_fen == 0
    # Records are shared between copies, so none can be changed in place: a change replaces it.
    with pytest.raises(dataclasses.FrozenInstanceError):
        kept.deliveries[first].state = DeliveryState.ACCEPTED  # type: ignore[misc]
    assert kept.deliveries[first].evidence_sha256 == ("ab" * 32,)
    # The kept one has no events of the command made on the copy.
    assert len(mine.collect_events()) == 1
    assert kept.collect_events() == []


def test_a_copied_budget_keeps_its_commitments_apart() -> None:
    kept = Budget.open(
        holder_id=uuid4(),
        reference=None,
        year=2014,
        purpose="p",
        title="t",
        sources=[(SourceKind.DISTRICT_FINANCE, "district finance", 10_000)],
        occurred_at=WHEN,
    )
    allocation = kept.allocate(street_office_id=uuid4(), amount_fen=5_000, occurred_at=WHEN)
    kept.collect_events()
    mine = copy.deepcopy(kept)
    mine.commit(
        allocation_id=allocation.id,
        commitment_id=uuid4(),
        kind=CommitmentKind.CONTRACT,
        amount_fen=1_000,
        occurred_at=WHEN,
    )
    assert mine.allocation(allocation.id).committed_fen == 1_000
    assert kept.allocation(allocation.id).committed_fen == 0
