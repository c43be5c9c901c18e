"""The answer of `GET /audit/reconcile`: the whole ledger replayed from its feed, and every
invariant found broken, with the events involved; and, streamed as NDJSON, how far it has gone."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from proto.problem import Problem

RULE_PATTERN = r"^[a-z]+(-[a-z]+)*$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventRef(_Wire):
    """One event a violation involves, named as the feed names it."""

    # No bounds on the numbers: they are read from a store a violation may have tampered with.
    position: int = Field(description="Its position in the feed")
    stream_id: UUID
    stream_type: str = Field(description="e.g. budget, contract, grant")
    stream_version: int = Field(description="Its number within its stream")
    event_type: str = Field(
        description="e.g. payment.recorded; the stored topic when the event cannot be read"
    )


class Violation(_Wire):
    """An invariant the replay found broken, and the events that break it."""

    rule: str = Field(
        pattern=RULE_PATTERN,
        description="Stable code of the broken rule, e.g. allocations-exceed-appropriation, "
        "commitments-exceed-allocation, accepted-exceeds-contract-value, paid-exceeds-accepted, "
        "payment-before-acceptance, disbursed-exceeds-grant, commitment-differs-from-holder, "
        "stream-versions-not-contiguous, feed-not-dense, event-unreadable, or a rule of the "
        "checkpoint check",
        examples=["paid-exceeds-accepted"],
    )
    message: str = Field(description="What is wrong, with the numbers, in a sentence")
    events: list[EventRef] = Field(
        description="The events involved, by position: the one where the rule broke and those "
        "that set the figures it broke against"
    )


class CheckRun(_Wire):
    """One invariant the reconciliation checks, and whether this run checked it."""

    rule: str = Field(pattern=RULE_PATTERN, description="The code its violations carry")
    invariant: str = Field(description="What must hold, in words")
    ran: bool = Field(description="False when this deployment could not run the check")
    violations: int = Field(ge=0, description="How many violations of it this run found")


class Reconciliation(_Wire):
    """The whole ledger replayed from its feed, independently of the code that wrote it."""

    checked_through: int = Field(
        ge=0,
        description="The feed was replayed from position 1 through this one: the head when the "
        "replay began (events recorded since are left to the next run)",
    )
    events_checked: int = Field(ge=0, description="How many events the replay read")
    checks: list[CheckRun] = Field(description="Every check, whether it ran and what it found")
    violations: list[Violation] = Field(
        description="Every violation found, in feed order; empty on an honest ledger"
    )


class ReconciliationProgress(_Wire):
    """How far a reconciliation running now has gone."""

    stage: Literal["replaying", "checking"] = Field(
        description="replaying: the feed, page by page; checking: what lies beside the feed "
        "(the signed checkpoints, the funding-flow read model), once the replay is done"
    )
    replayed_through: int = Field(ge=0, description="The last feed position replayed so far")
    head: int = Field(ge=0, description="The position the replay runs through")


class ReconciliationLine(BaseModel):
    """One line of `GET /audit/reconcile` asked for as `application/x-ndjson`: while the
    reconciliation runs, its progress about every second; then one last line, its answer, or the
    problem that stopped it. Each line holds exactly one of the three."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    progress: ReconciliationProgress | None = None
    reconciliation: Reconciliation | None = None
    problem: Problem | None = Field(
        default=None,
        description="Why the reconciliation stopped before its answer (RFC 9457): it found "
        "nothing either way, and may be asked for again",
    )
