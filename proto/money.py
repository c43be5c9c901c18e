"""Money on the wire: a decimal string in yuan with at most two decimals, and its currency."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FEN_PER_YUAN = 100
# A JSON number would be parsed as a binary float by many clients, so amounts travel as strings.
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$"
_AMOUNT = re.compile(AMOUNT_PATTERN)


class Money(BaseModel):
    """An exact, non-negative amount of money, e.g. {"amount": "30850000.00", "currency": "CNY"}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: str = Field(
        description="Yuan as a decimal string with at most two decimals; never a JSON number.",
        examples=["30850000.00"],
        json_schema_extra={"pattern": AMOUNT_PATTERN},
    )
    currency: Literal["CNY"] = "CNY"

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_decimal_string(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str):
            raise ValueError(
                'amount must be a decimal string such as "1200.00", not a JSON number '
                "(numbers lose cents in many clients)"
            )
        if value.startswith("-"):
            raise ValueError(f"amount must not be negative, got {value!r}")
        if not _AMOUNT.match(value):
            raise ValueError(
                f"amount {value!r} is not a decimal string with at most two decimals, "
                'e.g. "1200.00"'
            )
        return value

    @property
    def fen(self) -> int:
        """The amount in integer fen (分)."""
        yuan, _, cents = self.amount.partition(".")
        return int(yuan) * FEN_PER_YUAN + int(cents.ljust(2, "0"))

    @classmethod
    def from_fen(cls, fen: int) -> Money:
        """The wire form of an amount in fen."""
        return cls(amount=amount_of(fen))


def amount_of(fen: int) -> str:
    """An amount in fen as the wire's decimal string in yuan, e.g. 120050 -> "1200.50"."""
    if fen < 0:
        raise ValueError(f"money on the wire is never negative, got {fen} fen")
    yuan, cents = divmod(fen, FEN_PER_YUAN)
    return f"{yuan}.{cents:02d}"
