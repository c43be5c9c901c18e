"""Reconciliation's business-date check of payments, held to a plain sum over every record.

The replay keeps a contract's acceptances and payments in date order and subtracts what is dated
after a payment from the contract's totals; these cases hold that to the rule as written: what is
paid by a payment's date never exceeds what is accepted by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from proto.feed import FeedEntry
from proto.money import Money
from services.ledger.audit.reconcile import reconcile
from services.ledger.audit.reconcile_replay import PAID_EARLY, Item

CONTRACT = UUID("00000000-0000-4000-8000-00000000c0de")
DAY_ONE = datetime(2026, 3, 1, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Move:
    """An acceptance (`paid` False) or a payment of `fen`, dated `day` days after day one."""

    paid: bool
    fen: int
    day: int


def _entry(position: int, move: Move) -> FeedEntry:
    amount = Money.from_fen(move.fen).model_dump()
    payload = (
        {"reference": f"T-{position}", "amount": amount}
        if move.paid
        else {"delivery_id": str(uuid4()), "accepted": amount, "score": None, "note": ""}
    )
    return FeedEntry(
        position=position,
        stream_id=CONTRACT,
        stream_type="contract",
        stream_version=position,
        event_type="payment.recorded" if move.paid else "delivery.accepted",
        occurred_at=DAY_ONE + timedelta(days=move.day),
        recorded_at=DAY_ONE,
        caused_by=None,
        payload=payload,
    )


def _paid_early(moves: list[Move]) -> list[list[int]]:
    """Each early payment's violation, as the positions it names, by the replay."""
    items: list[Item] = [_entry(n, move) for n, move in enumerate(moves, start=1)]
    report = reconcile(lambda after, limit: items[after : after + limit], head=len(items))
    return [[ref.position for ref in v.events] for v in report.violations if v.rule == PAID_EARLY]


def _by_the_rule(moves: list[Move]) -> list[list[int]]:
    """The same, summing every record so far for each payment covered in record order."""
    found = []
    for n, move in enumerate(moves, start=1):
        so_far = list(enumerate(moves[:n], start=1))
        if not move.paid:
            continue
        if sum(m.fen for _, m in so_far if m.paid) > sum(m.fen for _, m in so_far if not m.paid):
            continue  # not covered in record order at all: another rule's finding
        by_then = [m for _, m in so_far if m.day <= move.day]
        accepted = sum(m.fen for m in by_then if not m.paid)
        if sum(m.fen for m in by_then if m.paid) > accepted:
            later = [p for p, m in so_far if not m.paid and m.day > move.day]
            found.append(sorted([n, *later]))
    return found


moves = st.lists(
    st.builds(Move, paid=st.booleans(), fen=st.integers(1, 500), day=st.integers(0, 6)),
    max_size=40,
)


@given(moves)
@settings(max_examples=300, deadline=None)
def test_early_payments_are_those_the_rule_finds(moves: list[Move]) -> None:
    assert _paid_early(moves) == _by_the_rule(moves)


def test_a_payment_dated_before_the_acceptance_that_covers_it_names_that_acceptance() -> None:
    moves = [
        Move(paid=False, fen=100, day=0),
        Move(paid=False, fen=300, day=5),
        Move(paid=True, fen=200, day=2),  # 200 paid on day 2 against 100 accepted by then
        Move(paid=False, fen=50, day=1),  # dated before the payment: covers part of it
        Move(paid=True, fen=100, day=6),  # covered by day 6
    ]
    assert _paid_early(moves) == [[2, 3]]


def test_payments_dated_in_order_are_not_early() -> None:
    moves = [Move(paid=day % 2 == 1, fen=100, day=day) for day in range(200)]
    assert _paid_early(moves) == []
