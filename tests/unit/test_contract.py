"""The Contract's invariants: deliveries, acceptances and payments never outrun the value."""

from __future__ import annotations

import copy
import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.errors import DomainError
from services.ledger.domain.contract import Contract, ContractState, DeliveryState
from services.ledger.domain.errors import (
    AcceptanceBelowPayments,
    AcceptanceExceedsClaim,
    ClaimsExceedContractValue,
    ContractNotInState,
    DeliveryNotInState,
    InvalidCommand,
    PaymentAlreadyReversed,
    PaymentBeforeAcceptance,
    PaymentExceedsAccepted,
    PendingDeliveries,
    ReferenceConflict,
)
from services.ledger.domain.money import format_fen

WHEN = datetime(2014, 4, 14, tzinfo=UTC)


def sign(value_fen: int = 100_000, **overrides: Any) -> Contract:
    terms: dict[str, Any] = {
        "reference": "CQ-2014-001",
        "title": "Management services for elderly people over 60 on minimum living allowance",
        "project_id": uuid4(),
        "variation": None,
        "budget_id": uuid4(),
        "allocation_id": uuid4(),
        "purchaser_id": uuid4(),
        "implementer_id": uuid4(),
        "provider_id": uuid4(),
        "item_ids": [uuid4()],
        "value_fen": value_fen,
        "period_start": date(2014, 4, 14),
        "period_end": date(2014, 12, 31),
        "occurred_at": WHEN,
    }
    terms.update(overrides)
    return Contract.sign(**terms)


def active(value_fen: int = 100_000) -> Contract:
    contract = sign(value_fen)
    contract.activate(occurred_at=WHEN)
    return contract


def deliver(contract: Contract, amount_fen: int, reference: str | None = None) -> UUID:
    return contract.report_delivery(
        reference=reference,
        period_start=date(2014, 5, 1),
        period_end=date(2014, 5, 31),
        quantity=120,
        unit="person-times",
        amount_fen=amount_fen,
        evidence_sha256=["ab" * 32],
        beneficiary_digests=[],
        description="home visits",
        occurred_at=WHEN,
    ).id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"value_fen": 0}, "value must be more than 0.00"),
        ({"period_end": date(2014, 1, 1)}, "ends 2014-01-01 before it starts 2014-04-14"),
        ({"item_ids": []}, "at least one catalog item"),
        ({"reference": "  "}, "needs its reference"),
    ],
)
def test_signing_refuses_malformed_terms(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        sign(**overrides)


def test_three_distinct_parties() -> None:
    same = uuid4()
    with pytest.raises(InvalidCommand, match="three different organizations"):
        sign(purchaser_id=same, implementer_id=same)


def test_deliveries_only_while_active() -> None:
    contract = sign()
    with pytest.raises(ContractNotInState, match="is signed, not active"):
        deliver(contract, 1_000)


def test_claims_never_exceed_the_contract_value() -> None:
    contract = active(100_000)
    deliver(contract, 60_000)
    with pytest.raises(ClaimsExceedContractValue) as raised:
        deliver(contract, 40_001)
    assert str(raised.value) == (
        "delivery claims 400.01 but only 400.00 of the contract value 1,000.00 is neither "
        "accepted nor awaiting acceptance"
    )


def test_delivery_period_within_contract_period() -> None:
    contract = active()
    with pytest.raises(InvalidCommand, match="outside the contract period"):
        contract.report_delivery(
            reference=None,
            period_start=date(2014, 1, 1),
            period_end=date(2014, 1, 31),
            quantity=1,
            unit="activities",
            amount_fen=1,
            evidence_sha256=[],
            beneficiary_digests=[],
            description="",
            occurred_at=WHEN,
        )


def test_acceptance_in_part_never_above_claim() -> None:
    contract = active()
    delivery_id = deliver(contract, 50_000)
    with pytest.raises(AcceptanceExceedsClaim):
        contract.accept_delivery(
            delivery_id=delivery_id, amount_fen=50_001, score=90, note="", occurred_at=WHEN
        )
    contract.accept_delivery(
        delivery_id=delivery_id,
        amount_fen=45_000,
        score=90,
        note="one visit missing",
        occurred_at=WHEN,
    )
    assert (contract.accepted_fen, contract.pending_fen) == (45_000, 0)
    with pytest.raises(DeliveryNotInState, match="it is accepted, not pending"):
        contract.reject_delivery(delivery_id=delivery_id, reason="x", score=None, occurred_at=WHEN)


def test_rejection_needs_a_reason_and_a_valid_score() -> None:
    contract = active()
    delivery_id = deliver(contract, 10_000)
    with pytest.raises(InvalidCommand, match="reason is required"):
        contract.reject_delivery(delivery_id=delivery_id, reason="", score=None, occurred_at=WHEN)
    with pytest.raises(InvalidCommand, match="score must be between 0 and 100"):
        contract.reject_delivery(
            delivery_id=delivery_id, reason="no proof", score=101, occurred_at=WHEN
        )
    contract.reject_delivery(delivery_id=delivery_id, reason="no proof", score=20, occurred_at=WHEN)
    assert contract.delivery(delivery_id).state is DeliveryState.REJECTED
    assert contract.accepted_fen == 0


def test_payment_never_exceeds_accepted_but_unpaid() -> None:
    contract = active(500_000)
    contract.accept_delivery(
        delivery_id=deliver(contract, 100_000),
        amount_fen=None,
        score=None,
        note="",
        occurred_at=WHEN,
    )
    with pytest.raises(PaymentExceedsAccepted) as raised:
        contract.record_payment(reference="T-1", amount_fen=120_000, occurred_at=WHEN)
    assert str(raised.value) == "payment 1,200.00 exceeds accepted-but-unpaid 1,000.00"
    contract.record_payment(reference="T-1", amount_fen=100_000, occurred_at=WHEN)
    with pytest.raises(ReferenceConflict):
        contract.record_payment(reference="T-1", amount_fen=1, occurred_at=WHEN)
    assert contract.unpaid_accepted_fen == 0


def test_no_payment_is_dated_before_the_acceptance_it_pays_for() -> None:
    contract = active(500_000)
    june, mid_july, august = (
        datetime(2014, m, d, tzinfo=UTC) for m, d in ((6, 1), (7, 15), (8, 1))
    )
    for accepted_on in (datetime(2014, 7, 1, tzinfo=UTC), datetime(2014, 9, 1, tzinfo=UTC)):
        contract.accept_delivery(
            delivery_id=deliver(contract, 100_000),
            amount_fen=None,
            score=None,
            note="",
            occurred_at=accepted_on,
        )
    with pytest.raises(PaymentBeforeAcceptance) as raised:
        contract.record_payment(reference="T-1", amount_fen=50_000, occurred_at=june)
    assert "exceed what was accepted by then (0.00)" in str(raised.value)
    contract.record_payment(reference="T-2", amount_fen=90_000, occurred_at=august)
    # Paid in mid-July, it would leave August's payments above what was accepted by August.
    with pytest.raises(PaymentBeforeAcceptance) as raised:
        contract.record_payment(reference="T-3", amount_fen=50_000, occurred_at=mid_july)
    assert "(1,400.00) exceed what was accepted by then (1,000.00)" in str(raised.value)
    contract.record_payment(reference="T-3", amount_fen=10_000, occurred_at=mid_july)
    assert contract.paid_fen == 100_000


def _by_the_rule(
    accepted: list[tuple[datetime, int]], paid: list[tuple[datetime, int]], fen: int, at: datetime
) -> str | None:
    """Why a payment of `fen` dated `at` is refused, by the rules as written, summing every
    record at every date they name; None if it is not."""
    if fen > sum(f for _, f in accepted) - sum(f for _, f in paid):
        return "exceeds accepted-but-unpaid"
    for moment in sorted({at, *(d for d, _ in paid if d > at)}):
        by_then = sum(f for d, f in accepted if d <= moment)
        paid_by_then = fen + sum(f for d, f in paid if d <= moment)
        if paid_by_then > by_then:
            return (
                f"the payments by {moment.isoformat()} ({format_fen(paid_by_then)}) exceed "
                f"what was accepted by then ({format_fen(by_then)})"
            )
    return None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["accept", "pay", "pay", "reverse"]),
            st.integers(1, 300),
            st.integers(0, 6),
        ),
        max_size=30,
    )
)
def test_payments_dated_in_any_order_are_held_to_what_was_accepted_by_each_payment_date(
    steps: list[tuple[str, int, int]],
) -> None:
    contract = active(10_000_000)
    accepted: list[tuple[datetime, int]] = []
    paid: dict[str, tuple[datetime, int]] = {}  # not reversed
    for n, (kind, fen, day) in enumerate(steps):
        at = WHEN + timedelta(days=day)
        if kind == "accept":
            delivery_id = deliver(contract, fen)
            contract.accept_delivery(
                delivery_id=delivery_id, amount_fen=None, score=None, note="", occurred_at=at
            )
            accepted.append((at, fen))
        elif kind == "reverse" and paid:
            reference = sorted(paid)[fen % len(paid)]
            contract.reverse_payment(reference=reference, reason="returned", occurred_at=at)
            del paid[reference]
        elif kind == "pay":
            refused = _by_the_rule(accepted, list(paid.values()), fen, at)
            if refused is None:
                contract.record_payment(reference=f"T-{n}", amount_fen=fen, occurred_at=at)
                paid[f"T-{n}"] = (at, fen)
                continue
            with pytest.raises((PaymentBeforeAcceptance, PaymentExceedsAccepted)) as raised:
                contract.record_payment(reference=f"T-{n}", amount_fen=fen, occurred_at=at)
            assert refused in str(raised.value)
    assert contract.paid_fen == sum(f for _, f in paid.values())


def test_reversing_a_payment_is_a_new_fact_and_happens_once() -> None:
    contract = active()
    contract.accept_delivery(
        delivery_id=deliver(contract, 10_000),
        amount_fen=None,
        score=None,
        note="",
        occurred_at=WHEN,
    )
    contract.record_payment(reference="T-1", amount_fen=10_000, occurred_at=WHEN)
    contract.reverse_payment(reference="T-1", reason="paid to the wrong account", occurred_at=WHEN)
    assert contract.paid_fen == 0
    assert contract.payment("T-1").amount_fen == 10_000  # the original stays on record
    with pytest.raises(PaymentAlreadyReversed):
        contract.reverse_payment(reference="T-1", reason="again", occurred_at=WHEN)
    contract.record_payment(reference="T-2", amount_fen=10_000, occurred_at=WHEN)
    assert contract.paid_fen == 10_000


def test_acceptance_reversal_cannot_strand_payments() -> None:
    contract = active()
    delivery_id = deliver(contract, 10_000)
    contract.accept_delivery(
        delivery_id=delivery_id, amount_fen=None, score=None, note="", occurred_at=WHEN
    )
    contract.record_payment(reference="T-1", amount_fen=6_000, occurred_at=WHEN)
    with pytest.raises(
        AcceptanceBelowPayments, match=re.escape("payments 60.00 would exceed the 0.00")
    ):
        contract.reverse_acceptance(delivery_id=delivery_id, reason="wrong", occurred_at=WHEN)
    contract.reverse_payment(reference="T-1", reason="wrong", occurred_at=WHEN)
    contract.reverse_acceptance(delivery_id=delivery_id, reason="wrong", occurred_at=WHEN)
    assert contract.accepted_fen == 0


def test_completion_waits_for_decisions_and_releases_unspent_value() -> None:
    contract = active(100_000)
    delivery_id = deliver(contract, 70_000)
    with pytest.raises(
        PendingDeliveries, match=re.escape("1 deliveries worth 700.00 await acceptance")
    ):
        contract.complete(occurred_at=WHEN)
    contract.accept_delivery(
        delivery_id=delivery_id, amount_fen=None, score=95, note="", occurred_at=WHEN
    )
    assert contract.complete(occurred_at=WHEN) == 30_000
    assert contract.state is ContractState.COMPLETED
    assert contract.committed_fen == 70_000
    with pytest.raises(ContractNotInState):
        deliver(contract, 1)
    # Accepted work is still owed after completion.
    contract.record_payment(reference="T-9", amount_fen=70_000, occurred_at=WHEN)


def test_termination_needs_a_reason_and_releases_unspent_value() -> None:
    contract = active(100_000)
    with pytest.raises(InvalidCommand):
        contract.terminate(reason="", occurred_at=WHEN)
    assert contract.terminate(reason="provider dissolved", occurred_at=WHEN) == 100_000
    with pytest.raises(ContractNotInState, match="is terminated"):
        contract.activate(occurred_at=WHEN)


def test_nothing_is_dated_before_the_contract_was_signed() -> None:
    contract = sign()
    with pytest.raises(InvalidCommand, match="is before this contract began"):
        contract.activate(occurred_at=datetime(2014, 4, 13, tzinfo=UTC))
    assert contract.state is ContractState.SIGNED


def sums(contract: Contract) -> tuple[int, int, int]:
    """Accepted, pending and paid, summed over the contract's records."""
    deliveries = contract.deliveries.values()
    return (
        sum(d.accepted_fen for d in deliveries),
        sum(d.amount_fen for d in deliveries if d.state is DeliveryState.PENDING),
        sum(p.amount_fen for p in contract.payments.values() if not p.is_reversed),
    )


@pytest.mark.parametrize("seed", range(8))
def test_the_totals_a_contract_keeps_are_its_records_sums_whatever_happens(seed: int) -> None:
    chance = random.Random(seed)  # noqa: S311 -- test data; seeded so runs repeat
    contract = active(2_000_000)
    days = [datetime(2014, 5, day, tzinfo=UTC) for day in range(1, 29)]
    for step in range(150):
        when = chance.choice(days)
        try:
            match chance.randrange(6):
                case 0:
                    reference = chance.choice([None, f"R-{chance.randrange(20)}"])
                    deliver(contract, chance.randrange(1, 50_000), reference)
                case 1 | 2 if contract.deliveries:
                    contract.accept_delivery(
                        delivery_id=chance.choice(list(contract.deliveries)),
                        amount_fen=chance.choice([None, chance.randrange(1, 20_000)]),
                        score=None,
                        note="",
                        occurred_at=when,
                    )
                case 3 if contract.deliveries:
                    target = chance.choice(list(contract.deliveries))
                    if chance.random() < 0.5:
                        contract.reject_delivery(
                            delivery_id=target, reason="no", score=None, occurred_at=when
                        )
                    else:
                        contract.reverse_acceptance(
                            delivery_id=target, reason="error", occurred_at=when
                        )
                case 4:
                    contract.record_payment(
                        reference=f"T-{step}",
                        amount_fen=chance.randrange(1, 30_000),
                        occurred_at=when,
                    )
                case 5 if contract.payments:
                    contract.reverse_payment(
                        reference=chance.choice(list(contract.payments)),
                        reason="returned",
                        occurred_at=when,
                    )
        except DomainError:
            pass  # refused, as the rules say: nothing changed
        kept = (contract.accepted_fen, contract.pending_fen, contract.paid_fen)
        assert kept == sums(contract), step
    # A copy and a replay of the events keep the same totals; and the checks agree.
    assert (copy.deepcopy(contract).accepted_fen, copy.deepcopy(contract).paid_fen) == kept[::2]
    events = contract.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert (replayed.accepted_fen, replayed.pending_fen, replayed.paid_fen) == sums(replayed)
    assert sums(replayed) == sums(contract)
    assert replayed.unpaid_accepted_fen == kept[0] - kept[2] >= 0
