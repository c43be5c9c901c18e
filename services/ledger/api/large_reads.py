"""Reads that build their whole answer in memory take one of `LEDGER_LARGE_READS` slots.

A budget's whole flow (as JSON or CSV, read or replayed) and a reconciliation of the ledger do;
a flow read to its contracts stays small, and one answered from a kept answer is built by no
one, so neither takes a slot. The gate itself is services/common/gate.py.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request

from services.common.gate import Gate
from services.common.problems import RETRY_AFTER_HEADER

_BUSY = (
    "The ledger is already building as many large answers as it allows (`LEDGER_LARGE_READS`) "
    "and none finished within `LEDGER_LARGE_READ_WAIT_SECONDS`; ask again after `Retry-After` "
    "seconds. Also: a service this one needs did not answer"
)


def large_reads(request: Request) -> Gate:
    """The app's gate on large reads, made at startup."""
    gate: Gate = request.app.state.large_reads
    return gate


def slot_for(what: str) -> Callable[[Request], AsyncIterator[None]]:
    """A dependency holding a slot through the whole request, named `what` in a refusal."""

    async def held(request: Request) -> AsyncIterator[None]:
        async with large_reads(request).slot(what):
            yield

    return held


def with_busy_answer(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, Any]:
    """A route's documented responses, its 503 saying why a large read waits, and how long."""
    documented = copy.deepcopy(responses)
    busy = documented[503]
    busy["description"] = _BUSY
    busy["headers"] = {"Retry-After": copy.deepcopy(RETRY_AFTER_HEADER)}
    return documented
