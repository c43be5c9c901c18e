"""The ledger's use cases: one method each, loading aggregates, calling the domain, saving.

Saving several aggregates (a contract and the budget it commits against) is one transaction;
a write that raced another on the same aggregate is refused as a `ConcurrentWrite`, never lost.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from services.ledger.domain.budget import Allocation, Budget, Direction, SourceKind
from services.ledger.domain.contract import Contract, Delivery, Payment
from services.ledger.domain.errors import ConcurrentWrite, NotFound, ReferenceConflict
from services.ledger.history import project_as_of
from services.ledger.store.reads import FeedRow, LedgerReads
from services.ledger.store.recorders import ReferenceClaim, StreamEntry

A = TypeVar("A", bound=Aggregate)


class DateAsISO(Transcoding):
    """Stores calendar dates (contract periods) as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class Page:
    """Stream ids of one page of a list, and the cursor for the next page (None at the end)."""

    ids: list[UUID]
    next_cursor: int | None


KnownAt = int | datetime


class LedgerApplication(Application[UUID]):
    """The append-only ledger of public money for community services."""

    name = "Ledger"

    def __init__(self, env: dict[str, str], *, beneficiary_key: bytes) -> None:
        super().__init__(env)
        self.reads = LedgerReads(self.recorder)
        self._beneficiary_key = beneficiary_key

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # --- budgets --------------------------------------------------------------------------

    def open_budget(
        self,
        *,
        reference: str | None,
        year: int,
        purpose: str,
        title: str,
        sources: list[tuple[SourceKind, str, int]],
        occurred_at: datetime,
    ) -> tuple[Budget, bool]:
        """Open a budget; with a reference already used for the same budget, return that one."""
        if reference is not None:
            existing = self._by_reference(Budget, "budget", reference)
            if existing is not None:
                same = (existing.year, existing.purpose, existing.sources) == (
                    year,
                    purpose,
                    {name: (kind, fen) for kind, name, fen in sources},
                )
                return self._same_or_conflict(existing, same, "budget", reference)
        budget = Budget.open(
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
    ) -> Budget:
        """Raise or lower a budget's appropriation through one funding source, with a reason."""
        budget = self._get(Budget, budget_id)
        budget.adjust(
            source_name=source_name,
            source_kind=source_kind,
            direction=direction,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )
        self._save(budget)
        return budget

    def allocate(
        self, budget_id: UUID, *, street_office_id: UUID, amount_fen: int, occurred_at: datetime
    ) -> tuple[Budget, Allocation, bool]:
        """Allocate part of a budget to a street office; retrying the same allocation is a no-op."""
        budget = self._get(Budget, budget_id)
        existing = budget.allocation_for(street_office_id)
        if existing is not None and existing.amount_fen == amount_fen:
            return budget, existing, False
        allocation = budget.allocate(
            street_office_id=street_office_id, amount_fen=amount_fen, occurred_at=occurred_at
        )
        self._save(budget)
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
    ) -> Budget:
        """Enlarge or shrink an allocation, with a reason."""
        budget = self._get(Budget, budget_id)
        budget.adjust_allocation(
            allocation_id=allocation_id,
            direction=direction,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )
        self._save(budget)
        return budget

    def get_budget(
        self, budget_id: UUID, *, as_of: datetime | None = None, known_at: KnownAt | None = None
    ) -> Budget:
        """A budget now, as of a business time, and/or as the ledger knew it at a record time."""
        return self._get(Budget, budget_id, as_of=as_of, known_at=known_at)

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

    # --- contracts ------------------------------------------------------------------------

    def sign_contract(
        self,
        *,
        reference: str,
        title: str,
        budget_id: UUID,
        allocation_id: UUID,
        purchaser_id: UUID,
        implementer_id: UUID,
        provider_id: UUID,
        item_ids: list[UUID],
        value_fen: int,
        period_start: date,
        period_end: date,
        occurred_at: datetime,
    ) -> tuple[Contract, bool]:
        """Record a signed contract and commit its value against the budget allocation."""
        existing = self._by_reference(Contract, "contract", reference)
        if existing is not None:
            same = (
                existing.budget_id,
                existing.allocation_id,
                existing.purchaser_id,
                existing.implementer_id,
                existing.provider_id,
                existing.value_fen,
            ) == (budget_id, allocation_id, purchaser_id, implementer_id, provider_id, value_fen)
            return self._same_or_conflict(existing, same, "contract", reference)
        budget = self._get(Budget, budget_id)
        allocation = budget.allocation(allocation_id)
        if allocation.street_office_id != purchaser_id:
            raise ReferenceConflict(
                f"allocation {allocation_id} belongs to street office "
                f"{allocation.street_office_id}, not to the purchaser {purchaser_id}"
            )
        contract = Contract.sign(
            reference=reference,
            title=title,
            budget_id=budget_id,
            allocation_id=allocation_id,
            purchaser_id=purchaser_id,
            implementer_id=implementer_id,
            provider_id=provider_id,
            item_ids=item_ids,
            value_fen=value_fen,
            period_start=period_start,
            period_end=period_end,
            occurred_at=occurred_at,
        )
        budget.commit(
            allocation_id=allocation_id,
            contract_id=contract.id,
            amount_fen=value_fen,
            occurred_at=occurred_at,
        )
        facts: dict[str, str | int | None] = {
            "budget_id": str(budget_id),
            "purchaser_id": str(purchaser_id),
            "implementer_id": str(implementer_id),
            "provider_id": str(provider_id),
        }
        self._save(
            contract,
            budget,
            references=[ReferenceClaim("contract", reference, contract.id)],
            streams=[StreamEntry(contract.id, "contract", facts)],
        )
        return contract, True

    def activate_contract(self, contract_id: UUID, *, occurred_at: datetime) -> Contract:
        """Start a signed contract's service."""
        contract = self._get(Contract, contract_id)
        contract.activate(occurred_at=occurred_at)
        self._save(contract)
        return contract

    def complete_contract(self, contract_id: UUID, *, occurred_at: datetime) -> Contract:
        """Close a fulfilled contract and release its unspent value to the allocation."""
        contract = self._get(Contract, contract_id)
        unspent = contract.complete(occurred_at=occurred_at)
        self._save_with_release(contract, unspent, "contract completed", occurred_at)
        return contract

    def terminate_contract(
        self, contract_id: UUID, *, reason: str, occurred_at: datetime
    ) -> Contract:
        """End a contract early, with a reason, releasing its unspent value."""
        contract = self._get(Contract, contract_id)
        unspent = contract.terminate(reason=reason, occurred_at=occurred_at)
        self._save_with_release(contract, unspent, f"contract terminated: {reason}", occurred_at)
        return contract

    def _save_with_release(
        self, contract: Contract, unspent: int, reason: str, occurred_at: datetime
    ) -> None:
        if unspent == 0:
            self._save(contract)
            return
        budget = self._get(Budget, contract.budget_id)
        budget.release(
            allocation_id=contract.allocation_id,
            contract_id=contract.id,
            amount_fen=unspent,
            reason=reason,
            occurred_at=occurred_at,
        )
        self._save(contract, budget)

    def get_contract(
        self, contract_id: UUID, *, as_of: datetime | None = None, known_at: KnownAt | None = None
    ) -> Contract:
        """A contract now, as of a business time, and/or as known at a record time."""
        return self._get(Contract, contract_id, as_of=as_of, known_at=known_at)

    def list_contracts(
        self,
        *,
        budget_id: UUID | None,
        purchaser_id: UUID | None,
        implementer_id: UUID | None,
        provider_id: UUID | None,
        after: int,
        limit: int,
    ) -> Page:
        """Contracts, oldest first, filtered by budget and parties."""
        given = {
            "budget_id": budget_id,
            "purchaser_id": purchaser_id,
            "implementer_id": implementer_id,
            "provider_id": provider_id,
        }
        facts: dict[str, str | int] = {k: str(v) for k, v in given.items() if v is not None}
        return self._page("contract", facts, after, limit)

    # --- deliveries -----------------------------------------------------------------------

    def report_delivery(
        self,
        contract_id: UUID,
        *,
        reference: str | None,
        period_start: date,
        period_end: date,
        quantity: int,
        unit: str,
        amount_fen: int,
        evidence_sha256: list[str],
        beneficiaries: list[str],
        description: str,
        occurred_at: datetime,
    ) -> tuple[Contract, Delivery, bool]:
        """Record delivered service; beneficiaries are kept only as keyed digests."""
        contract = self._get(Contract, contract_id)
        digests = [self.beneficiary_digest(b) for b in beneficiaries]
        if reference is not None:
            same_ref = [d for d in contract.deliveries.values() if d.reference == reference]
            if same_ref:
                found = same_ref[0]
                same = (found.amount_fen, found.period_start, found.period_end, found.quantity) == (
                    amount_fen,
                    period_start,
                    period_end,
                    quantity,
                )
                if not same:
                    raise ReferenceConflict(
                        f"delivery reference {reference!r} is already used on this contract "
                        "for a different delivery"
                    )
                return contract, found, False
        delivery = contract.report_delivery(
            reference=reference,
            period_start=period_start,
            period_end=period_end,
            quantity=quantity,
            unit=unit,
            amount_fen=amount_fen,
            evidence_sha256=evidence_sha256,
            beneficiary_digests=digests,
            description=description,
            occurred_at=occurred_at,
        )
        self._save(contract)
        return contract, delivery, True

    def beneficiary_digest(self, identity: str) -> str:
        """HMAC-SHA256 of a beneficiary's identity under the ledger's key: linkable, not readable.

        A bare SHA-256 of an ID-card number can be reversed by trying every number; the key
        stops that for anyone who has the data but not the key.
        """
        return hmac.new(self._beneficiary_key, identity.encode(), hashlib.sha256).hexdigest()

    def accept_delivery(
        self,
        contract_id: UUID,
        delivery_id: UUID,
        *,
        amount_fen: int | None,
        score: int | None,
        note: str,
        occurred_at: datetime,
    ) -> tuple[Contract, Delivery]:
        """Accept a delivery in full or in part."""
        contract = self._get(Contract, contract_id)
        contract.accept_delivery(
            delivery_id=delivery_id,
            amount_fen=amount_fen,
            score=score,
            note=note,
            occurred_at=occurred_at,
        )
        self._save(contract)
        return contract, contract.delivery(delivery_id)

    def reject_delivery(
        self,
        contract_id: UUID,
        delivery_id: UUID,
        *,
        reason: str,
        score: int | None,
        occurred_at: datetime,
    ) -> tuple[Contract, Delivery]:
        """Reject a delivery, with a reason."""
        contract = self._get(Contract, contract_id)
        contract.reject_delivery(
            delivery_id=delivery_id, reason=reason, score=score, occurred_at=occurred_at
        )
        self._save(contract)
        return contract, contract.delivery(delivery_id)

    def reverse_acceptance(
        self, contract_id: UUID, delivery_id: UUID, *, reason: str, occurred_at: datetime
    ) -> tuple[Contract, Delivery]:
        """Correct a mistaken acceptance, with a reason."""
        contract = self._get(Contract, contract_id)
        contract.reverse_acceptance(delivery_id=delivery_id, reason=reason, occurred_at=occurred_at)
        self._save(contract)
        return contract, contract.delivery(delivery_id)

    # --- payments -------------------------------------------------------------------------

    def record_payment(
        self, contract_id: UUID, *, reference: str, amount_fen: int, occurred_at: datetime
    ) -> tuple[Contract, Payment, bool]:
        """Record a treasury payment; the same treasury reference twice is the same payment."""
        holder = self.reads.referenced_stream("payment", reference)
        if holder is not None:
            if holder != contract_id:
                raise ReferenceConflict(
                    f"treasury reference {reference!r} is already a payment on contract {holder}"
                )
            contract = self._get(Contract, contract_id)
            payment = contract.payment(reference)
            if payment.amount_fen != amount_fen:
                raise ReferenceConflict(
                    f"treasury reference {reference!r} is already a payment of a different amount"
                )
            return contract, payment, False
        contract = self._get(Contract, contract_id)
        payment = contract.record_payment(
            reference=reference, amount_fen=amount_fen, occurred_at=occurred_at
        )
        self._save(contract, references=[ReferenceClaim("payment", reference, contract_id)])
        return contract, payment, True

    def reverse_payment(
        self, contract_id: UUID, reference: str, *, reason: str, occurred_at: datetime
    ) -> tuple[Contract, Payment]:
        """Correct a payment, with a reason; the original stays on record."""
        contract = self._get(Contract, contract_id)
        contract.reverse_payment(reference=reference, reason=reason, occurred_at=occurred_at)
        self._save(contract)
        return contract, contract.payment(reference)

    # --- the record -----------------------------------------------------------------------

    def feed(self, *, after: int, limit: int) -> list[tuple[FeedRow, Any]]:
        """Feed entries after a position, each with its decoded domain event."""
        return [
            (row, self.mapper.to_domain_event(row.event)) for row in self.reads.feed(after, limit)
        ]

    def stream_history(self, stream_id: UUID) -> list[tuple[FeedRow, Any]]:
        """Every event of one aggregate, with feed positions."""
        rows = self.reads.stream(stream_id)
        if not rows:
            raise NotFound(f"no stream {stream_id}")
        return [(row, self.mapper.to_domain_event(row.event)) for row in rows]

    # --- plumbing -------------------------------------------------------------------------

    def _get(
        self,
        cls: type[A],
        aggregate_id: UUID,
        *,
        as_of: datetime | None = None,
        known_at: KnownAt | None = None,
    ) -> A:
        kind = cls.__name__.lower()
        version: int | None = None
        if known_at is not None:
            position = (
                known_at if isinstance(known_at, int) else self.reads.position_known_at(known_at)
            )
            version = self.reads.stream_version_at(aggregate_id, position)
            if version is None:
                raise NotFound(f"{kind} {aggregate_id} was not yet recorded at position {position}")
        projector: Any = project_aggregate if as_of is None else project_as_of(as_of)
        try:
            aggregate: Aggregate = self.repository.get(
                aggregate_id, version=version, projector_func=projector
            )
        except AggregateNotFoundError:
            when = f" as of {as_of.isoformat()}" if as_of else ""
            raise NotFound(f"no {kind} {aggregate_id}{when}") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"no {kind} {aggregate_id}")
        return aggregate

    def _by_reference(self, cls: type[A], scope: str, reference: str) -> A | None:
        stream_id = self.reads.referenced_stream(scope, reference)
        return None if stream_id is None else self._get(cls, stream_id)

    @staticmethod
    def _same_or_conflict(existing: A, same: bool, scope: str, reference: str) -> tuple[A, bool]:
        if not same:
            raise ReferenceConflict(
                f"{scope} reference {reference!r} is already used by {scope} {existing.id}, "
                "with different terms"
            )
        return existing, False

    def _page(self, stream_type: str, facts: dict[str, str | int], after: int, limit: int) -> Page:
        rows = self.reads.streams(stream_type, facts, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([stream_id for _, stream_id in rows], rows[-1][0] if more else None)

    def _save(
        self,
        *aggregates: Aggregate,
        references: Sequence[ReferenceClaim] = (),
        streams: Sequence[StreamEntry] = (),
    ) -> None:
        try:
            self.save(*aggregates, references=references, streams=streams)
        except IntegrityError:
            for claim in references:
                holder = self.reads.referenced_stream(claim.scope, claim.reference)
                if holder is not None:
                    raise ReferenceConflict(
                        f"{claim.scope} reference {claim.reference!r} was just used by "
                        f"{holder}; retry to get it"
                    ) from None
            names = ", ".join(f"{type(a).__name__.lower()} {a.id}" for a in aggregates)
            raise ConcurrentWrite(
                f"{names} changed while this request was processed; reload and retry"
            ) from None
