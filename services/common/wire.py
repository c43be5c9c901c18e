"""Bounds on what requests may carry, shared by every service's API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

# Positions, cursors and years beyond these are nonsense and would overflow the databases.
MAX_POSITION = 2**62
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _plausible(moment: datetime) -> datetime:
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(
            f"{moment.isoformat()} lies outside {EARLIEST.year}–{LATEST.year}: not a time the "
            "ledger can record"
        )
    return moment


# A timezone-aware time within the years a database can store on every backend.
Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]
