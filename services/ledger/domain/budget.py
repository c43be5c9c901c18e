"""The Budget aggregate: a year's appropriation, its funding sources and its allocations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from services.ledger.domain.dated import DatedAggregate
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
from services.ledger.domain.money import MAX_FEN, format_fen


class SourceKind(StrEnum):
    """Where public money for community services comes from (多元筹资)."""

    DISTRICT_FINANCE = "district_finance"
    STREET_OFFICE = "street_office"
    SOCIAL_CAPITAL = "social_capital"
    OTHER = "other"


class CommitmentKind(StrEnum):
    """What holds money of an allocation: a purchase contract or a grant."""

    CONTRACT = "contract"
    GRANT = "grant"


class Direction(StrEnum):
    """Which way an adjustment moves an amount; amounts themselves are never negative."""

    INCREASE = "increase"
    DECREASE = "decrease"


@dataclass
class Allocation:
    """Money a budget sets aside for one street office, and what contracts have committed of it."""

    id: UUID
    street_office_id: UUID
    amount_fen: int
    commitments: dict[UUID, int] = field(default_factory=dict)

    @property
    def committed_fen(self) -> int:
        return sum(self.commitments.values())

    @property
    def available_fen(self) -> int:
        return self.amount_fen - self.committed_fen


def _require_positive(amount_fen: int, what: str) -> None:
    if amount_fen <= 0:
        raise InvalidCommand(f"{what} must be more than 0.00, got {format_fen(amount_fen)}")


def _require_representable(amount_fen: int, what: str) -> None:
    if amount_fen > MAX_FEN:
        raise InvalidCommand(
            f"{what} would be {format_fen(amount_fen)}, above the largest amount the ledger "
            f"records, {format_fen(MAX_FEN)}"
        )


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidCommand("a reason is required: corrections must say why")


def _signed(direction: Direction, amount_fen: int) -> int:
    return amount_fen if direction is Direction.INCREASE else -amount_fen


class Budget(DatedAggregate):
    """A year's appropriation for a purpose, e.g. Wuhou's 2014 push-down services, 30,850,000.00."""

    @classmethod
    def open(
        cls,
        *,
        holder_id: UUID,
        year: int,
        purpose: str,
        title: str,
        sources: list[tuple[SourceKind, str, int]],
        occurred_at: datetime,
        reference: str | None = None,
    ) -> Budget:
        """Open a budget, held by a finance bureau, appropriating the sum of its sources."""
        if not 1949 <= year <= 2200:
            raise InvalidCommand(f"year {year} is not a plausible budget year")
        if not sources:
            raise InvalidCommand("a budget needs at least one funding source")
        names = [name for _, name, _ in sources]
        if len(set(names)) != len(names):
            raise InvalidCommand("funding source names must be distinct within a budget")
        for _, name, amount_fen in sources:
            _require_positive(amount_fen, f"funding source {name!r}")
        _require_representable(sum(amount for _, _, amount in sources), "the appropriation")
        return cls(
            holder_id=holder_id,
            reference=reference,
            year=year,
            purpose=purpose,
            title=title,
            sources=[
                {"kind": kind.value, "name": name, "amount_fen": amount}
                for kind, name, amount in sources
            ],
            occurred_at=occurred_at,
        )

    @event("Opened")
    def __init__(
        self,
        *,
        holder_id: UUID,
        reference: str | None,
        year: int,
        purpose: str,
        title: str,
        sources: list[dict[str, Any]],
        occurred_at: datetime,
    ) -> None:
        self.holder_id = holder_id
        self.reference = reference
        self.year = year
        self.purpose = purpose
        self.title = title
        self.opened_at = occurred_at
        self.sources: dict[str, tuple[SourceKind, int]] = {
            s["name"]: (SourceKind(s["kind"]), s["amount_fen"]) for s in sources
        }
        self.allocations: dict[UUID, Allocation] = {}

    @property
    def began_at(self) -> datetime:
        return self.opened_at

    @property
    def appropriation_fen(self) -> int:
        return sum(amount for _, amount in self.sources.values())

    @property
    def allocated_fen(self) -> int:
        return sum(a.amount_fen for a in self.allocations.values())

    @property
    def unallocated_fen(self) -> int:
        return self.appropriation_fen - self.allocated_fen

    @property
    def committed_fen(self) -> int:
        return sum(a.committed_fen for a in self.allocations.values())

    def allocation(self, allocation_id: UUID) -> Allocation:
        """The allocation with this id, or NotFound."""
        try:
            return self.allocations[allocation_id]
        except KeyError:
            raise NotFound(f"budget {self.id} has no allocation {allocation_id}") from None

    def allocation_for(self, street_office_id: UUID) -> Allocation | None:
        """The allocation of a street office, if it has one."""
        return next(
            (a for a in self.allocations.values() if a.street_office_id == street_office_id),
            None,
        )

    # --- appropriation --------------------------------------------------------------------

    def adjust(
        self,
        *,
        source_name: str,
        direction: Direction,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
        source_kind: SourceKind | None = None,
    ) -> None:
        """Raise or lower the appropriation through one funding source, with a reason."""
        _require_positive(amount_fen, "an adjustment")
        _require_reason(reason)
        current = self.sources.get(source_name)
        if current is None and direction is Direction.DECREASE:
            raise NotFound(f"budget {self.id} has no funding source {source_name!r}")
        if current is None and source_kind is None:
            raise InvalidCommand(f"a new funding source {source_name!r} needs its kind")
        if direction is Direction.DECREASE:
            assert current is not None
            if amount_fen > current[1]:
                raise FundingSourceOverdrawn(
                    f"decrease {format_fen(amount_fen)} exceeds funding source "
                    f"{source_name!r} {format_fen(current[1])}"
                )
            if amount_fen > self.unallocated_fen:
                raise AppropriationBelowAllocations(
                    f"decrease {format_fen(amount_fen)} exceeds unallocated "
                    f"{format_fen(self.unallocated_fen)} (appropriation "
                    f"{format_fen(self.appropriation_fen)}, allocated "
                    f"{format_fen(self.allocated_fen)})"
                )
        if direction is Direction.INCREASE:
            _require_representable(self.appropriation_fen + amount_fen, "the appropriation")
        kind = current[0] if current is not None else source_kind
        assert kind is not None
        self._adjusted(
            source_kind=kind.value,
            source_name=source_name,
            direction=direction.value,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )

    @event("Adjusted")
    def _adjusted(
        self,
        *,
        source_kind: str,
        source_name: str,
        direction: str,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
    ) -> None:
        _, amount = self.sources.get(source_name, (SourceKind(source_kind), 0))
        delta = _signed(Direction(direction), amount_fen)
        self.sources[source_name] = (SourceKind(source_kind), amount + delta)

    # --- allocations ----------------------------------------------------------------------

    def allocate(
        self, *, street_office_id: UUID, amount_fen: int, occurred_at: datetime
    ) -> Allocation:
        """Set money aside for a street office; allocations never exceed the appropriation."""
        _require_positive(amount_fen, "an allocation")
        existing = self.allocation_for(street_office_id)
        if existing is not None:
            raise StreetOfficeAlreadyAllocated(
                f"street office {street_office_id} already has allocation {existing.id} of "
                f"{format_fen(existing.amount_fen)} in this budget; adjust it instead"
            )
        if amount_fen > self.unallocated_fen:
            raise AllocationExceedsAppropriation(
                f"allocation {format_fen(amount_fen)} exceeds unallocated "
                f"{format_fen(self.unallocated_fen)} of appropriation "
                f"{format_fen(self.appropriation_fen)}"
            )
        allocation_id = uuid4()
        self._allocated(
            allocation_id=allocation_id,
            street_office_id=street_office_id,
            amount_fen=amount_fen,
            occurred_at=occurred_at,
        )
        return self.allocations[allocation_id]

    @event("Allocated")
    def _allocated(
        self,
        *,
        allocation_id: UUID,
        street_office_id: UUID,
        amount_fen: int,
        occurred_at: datetime,
    ) -> None:
        self.allocations[allocation_id] = Allocation(allocation_id, street_office_id, amount_fen)

    def adjust_allocation(
        self,
        *,
        allocation_id: UUID,
        direction: Direction,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
    ) -> None:
        """Enlarge or shrink an allocation, with a reason."""
        _require_positive(amount_fen, "an adjustment")
        _require_reason(reason)
        allocation = self.allocation(allocation_id)
        if direction is Direction.INCREASE and amount_fen > self.unallocated_fen:
            raise AllocationExceedsAppropriation(
                f"increase {format_fen(amount_fen)} exceeds unallocated "
                f"{format_fen(self.unallocated_fen)} of appropriation "
                f"{format_fen(self.appropriation_fen)}"
            )
        if direction is Direction.DECREASE and amount_fen > allocation.available_fen:
            raise AllocationBelowCommitments(
                f"decrease {format_fen(amount_fen)} exceeds the uncommitted "
                f"{format_fen(allocation.available_fen)} of allocation "
                f"{format_fen(allocation.amount_fen)}"
            )
        self._allocation_adjusted(
            allocation_id=allocation_id,
            direction=direction.value,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )

    @event("AllocationAdjusted")
    def _allocation_adjusted(
        self,
        *,
        allocation_id: UUID,
        direction: str,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
    ) -> None:
        self.allocations[allocation_id].amount_fen += _signed(Direction(direction), amount_fen)

    # --- commitments ----------------------------------------------------------------------

    def commit(
        self,
        *,
        allocation_id: UUID,
        commitment_id: UUID,
        kind: CommitmentKind,
        amount_fen: int,
        occurred_at: datetime,
    ) -> None:
        """Commit a contract's or grant's value against an allocation; never beyond what is left."""
        _require_positive(amount_fen, "a commitment")
        allocation = self.allocation(allocation_id)
        if amount_fen > allocation.available_fen:
            raise CommitmentExceedsAllocation(
                f"{kind.value} value {format_fen(amount_fen)} exceeds the uncommitted "
                f"{format_fen(allocation.available_fen)} of allocation "
                f"{format_fen(allocation.amount_fen)}"
            )
        self._committed(
            allocation_id=allocation_id,
            commitment_id=commitment_id,
            commitment_kind=kind.value,
            amount_fen=amount_fen,
            occurred_at=occurred_at,
        )

    @event("Committed")
    def _committed(
        self,
        *,
        allocation_id: UUID,
        commitment_id: UUID,
        commitment_kind: str,
        amount_fen: int,
        occurred_at: datetime,
    ) -> None:
        self.allocations[allocation_id].commitments[commitment_id] = amount_fen

    def release(
        self,
        *,
        allocation_id: UUID,
        commitment_id: UUID,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
    ) -> None:
        """Give back the part of a commitment its contract or grant will not spend."""
        allocation = self.allocation(allocation_id)
        committed = allocation.commitments.get(commitment_id, 0)
        if not 0 < amount_fen <= committed:
            raise InvalidCommand(
                f"cannot release {format_fen(amount_fen)} of a commitment of "
                f"{format_fen(committed)}"
            )
        self._released(
            allocation_id=allocation_id,
            commitment_id=commitment_id,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )

    @event("Released")
    def _released(
        self,
        *,
        allocation_id: UUID,
        commitment_id: UUID,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
    ) -> None:
        self.allocations[allocation_id].commitments[commitment_id] -= amount_fen
