"""Money on the wire: exact decimal strings, never floats, never negative, at most two decimals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from proto.money import Money
from services.ledger.domain.money import format_fen


@pytest.mark.parametrize(
    ("amount", "fen"),
    [("30850000.00", 3_085_000_000), ("0.01", 1), ("12.5", 1_250), ("7", 700), ("0", 0)],
)
def test_decimal_strings_become_exact_fen(amount: str, fen: int) -> None:
    assert Money(amount=amount).fen == fen


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (1200.5, "not a JSON number"),
        (1200, "not a JSON number"),
        (True, "not a JSON number"),
        ("-1.00", "must not be negative"),
        ("1.005", "at most two decimals"),
        ("1e3", "at most two decimals"),
        ("01.00", "at most two decimals"),
        (" 1.00", "at most two decimals"),
    ],
)
def test_floats_negatives_and_extra_decimals_are_refused(amount: Any, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Money(amount=amount)


def test_only_yuan_renminbi() -> None:
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": "1.00", "currency": "USD"})


def test_round_trip_through_fen() -> None:
    for fen in (0, 1, 99, 100, 3_085_000_000, 4_500_000_000):
        assert Money.from_fen(fen).fen == fen
    assert Money.from_fen(3_085_000_000).amount == "30850000.00"
    with pytest.raises(ValueError, match="never negative"):
        Money.from_fen(-1)


def test_messages_show_yuan_with_separators() -> None:
    assert format_fen(120_000) == "1,200.00"
    assert format_fen(3_085_000_000) == "30,850,000.00"
    assert format_fen(-5) == "-0.05"
