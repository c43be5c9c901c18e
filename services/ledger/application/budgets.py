"""Use cases of budgets: opening, adjusting, allocating, reading."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from proto.actor import Actor, Role
from services.common.permissions import require_role
from services.ledger.application.base import KnownAt, LedgerBase, Page
from services.ledger.domain.budget import Allocation, Budget, Direction, SourceKind
from services.ledger.store.recorders import ReferenceClaim, StreamEntry


class BudgetUseCases(LedgerBase):
    """A year's appropriation and its allocations to street offices."""

    def open_budget(
        self,
        *,
        reference: str | None,
        year: int,
        purpose: str,
        title: str,
        sources: list[tuple[SourceKind, str, int]],
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Budget, bool]:
        """Open a budget held by the caller's finance bureau; a known reference finds it."""
        require_role(by, (Role.FINANCE,), "open budgets")
        if reference is not None:
            existing = self._by_reference(Budget, "budget", reference)
            if existing is not None:
                same = (existing.holder_id, existing.year, existing.purpose, existing.sources) == (
                    by.organization_id,
                    year,
                    purpose,
                    {name: (kind, fen) for kind, name, fen in sources},
                )
                return self._same_or_conflict(existing, same, "budget", reference, by)
        budget = Budget.open(
            holder_id=by.organization_id,
            reference=reference,
            year=year,
            purpose=purpose,
            title=title,
            sources=sources,
            occurred_at=occurred_at,
        )
        self._save(
            budget,
            references=[ReferenceClaim("budget", reference, budget.id)] if reference else [],
            streams=[StreamEntry(budget.id, "budget", {"year": year, "purpose": purpose})],
            caused_by=by,
        )
        return budget, True

    def adjust_budget(
        self,
        budget_id: UUID,
        *,
        source_name: str,
        source_kind: SourceKind | None,
        direction: Direction,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
        by: Actor,
    ) -> Budget:
        """Raise or lower a budget's appropriation through one funding source, with a reason."""
        budget = self._for(Budget, budget_id, by, (Role.FINANCE,), "adjust this budget")
        budget.adjust(
            source_name=source_name,
            source_kind=source_kind,
            direction=direction,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )
        self._save(budget, caused_by=by)
        return budget

    def allocate(
        self,
        budget_id: UUID,
        *,
        street_office_id: UUID,
        amount_fen: int,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Budget, Allocation, bool]:
        """Allocate part of a budget to a street office; retrying the same allocation is a no-op."""
        budget = self._for(Budget, budget_id, by, (Role.FINANCE,), "allocate this budget")
        existing = budget.allocation_for(street_office_id)
        if existing is not None and existing.amount_fen == amount_fen:
            return budget, existing, False
        allocation = budget.allocate(
            street_office_id=street_office_id, amount_fen=amount_fen, occurred_at=occurred_at
        )
        self._save(budget, caused_by=by)
        return budget, allocation, True

    def adjust_allocation(
        self,
        budget_id: UUID,
        allocation_id: UUID,
        *,
        direction: Direction,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
        by: Actor,
    ) -> Budget:
        """Enlarge or shrink an allocation, with a reason."""
        budget = self._for(
            Budget, budget_id, by, (Role.FINANCE,), "adjust this budget's allocations"
        )
        budget.adjust_allocation(
            allocation_id=allocation_id,
            direction=direction,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )
        self._save(budget, caused_by=by)
        return budget

    def get_budget(
        self,
        budget_id: UUID,
        *,
        by: Actor,
        as_of: datetime | None = None,
        known_at: KnownAt | None = None,
    ) -> Budget:
        """A budget now, as of a business time, and/or as the ledger knew it at a record time."""
        return self._read(Budget, budget_id, by, as_of=as_of, known_at=known_at)

    def list_budgets(
        self, *, year: int | None, purpose: str | None, after: int, limit: int
    ) -> Page:
        """Budgets, oldest first, filtered by year and purpose."""
        facts: dict[str, str | int] = {}
        if year is not None:
            facts["year"] = year
        if purpose is not None:
            facts["purpose"] = purpose
        return self._page("budget", facts, after, limit)
