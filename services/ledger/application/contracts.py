"""Use cases of contracts: signing against an allocation, and the life cycle."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from proto.actor import Actor, Role
from services.common.permissions import require_acting_for
from services.ledger.application.access import scoped
from services.ledger.application.base import KnownAt, LedgerBase, Page
from services.ledger.domain.budget import Budget, CommitmentKind
from services.ledger.domain.contract import Contract
from services.ledger.domain.eligibility import check_contract_parties
from services.ledger.domain.errors import ReferenceConflict
from services.ledger.domain.procurement import PurchaseProject
from services.ledger.store.recorders import ReferenceClaim, StreamEntry

# Which indexed fact holds the caller's organization when it is party to a contract.
CONTRACT_PARTY_FACTS = {
    Role.STREET: "purchaser_id",
    Role.COMMUNITY: "implementer_id",
    Role.PROVIDER: "provider_id",
}


class ContractUseCases(LedgerBase):
    """Tri-party contracts, committed against budget allocations."""

    def sign_contract(
        self,
        *,
        reference: str,
        title: str,
        project_id: UUID,
        variation: str | None,
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
        by: Actor,
    ) -> tuple[Contract, bool]:
        """Record a signed contract and commit its value against the budget allocation."""
        require_acting_for(by, Role.STREET, purchaser_id, "sign contracts")
        existing = self._by_reference(Contract, "contract", reference)
        if existing is not None:
            same = (
                existing.project_id,
                existing.budget_id,
                existing.allocation_id,
                existing.purchaser_id,
                existing.implementer_id,
                existing.provider_id,
                existing.value_fen,
            ) == (
                project_id,
                budget_id,
                allocation_id,
                purchaser_id,
                implementer_id,
                provider_id,
                value_fen,
            )
            return self._same_or_conflict(existing, same, "contract", reference, by)
        budget = self._get(Budget, budget_id)
        allocation = budget.allocation(allocation_id)
        if allocation.street_office_id != purchaser_id:
            raise ReferenceConflict(
                f"allocation {allocation_id} belongs to street office "
                f"{allocation.street_office_id}, not to the purchaser {purchaser_id}"
            )
        project = self._get(PurchaseProject, project_id)
        project.check_contract(
            provider_id=provider_id,
            value_fen=value_fen,
            variation=variation,
            occurred_at=occurred_at,
        )
        if (project.budget_id, project.allocation_id, project.purchaser_id) != (
            budget_id,
            allocation_id,
            purchaser_id,
        ):
            raise ReferenceConflict(
                f"contract and project {project.reference} differ in budget, allocation or "
                "purchaser"
            )
        outside = [str(i) for i in item_ids if i not in project.item_ids]
        if outside:
            raise ReferenceConflict(
                f"items {', '.join(outside)} were not purchased by project {project.reference}"
            )
        contract = Contract.sign(
            reference=reference,
            title=title,
            project_id=project_id,
            variation=variation,
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
            commitment_id=contract.id,
            kind=CommitmentKind.CONTRACT,
            amount_fen=value_fen,
            occurred_at=occurred_at,
        )
        # Asked last: the catalog is another service, so every local check goes first.
        check_contract_parties(
            purchaser_id=purchaser_id,
            implementer_id=implementer_id,
            provider_id=provider_id,
            item_ids=item_ids,
            organizations=self.catalog.organizations(
                [purchaser_id, implementer_id, provider_id], occurred_at
            ),
            items=self.catalog.items(item_ids, occurred_at),
            as_of=occurred_at,
        )
        facts: dict[str, str | int | None] = {
            "budget_id": str(budget_id),
            "purchaser_id": str(purchaser_id),
            "implementer_id": str(implementer_id),
            "provider_id": str(provider_id),
        }
        project.record_contract(contract_id=contract.id, occurred_at=occurred_at)
        self._save(
            contract,
            budget,
            project,
            references=[ReferenceClaim("contract", reference, contract.id)],
            streams=[StreamEntry(contract.id, "contract", facts)],
            caused_by=by,
        )
        return contract, True

    def activate_contract(self, contract_id: UUID, *, occurred_at: datetime, by: Actor) -> Contract:
        """Start a signed contract's service."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "activate this contract")
        contract.activate(occurred_at=occurred_at)
        self._save(contract, caused_by=by)
        return contract

    def complete_contract(self, contract_id: UUID, *, occurred_at: datetime, by: Actor) -> Contract:
        """Close a fulfilled contract and release its unspent value to the allocation."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "complete this contract")
        unspent = contract.complete(occurred_at=occurred_at)
        self._save_releasing(
            contract,
            contract.budget_id,
            contract.allocation_id,
            unspent,
            "contract completed",
            occurred_at,
            caused_by=by,
        )
        return contract

    def terminate_contract(
        self, contract_id: UUID, *, reason: str, occurred_at: datetime, by: Actor
    ) -> Contract:
        """End a contract early, with a reason, releasing its unspent value."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "terminate this contract")
        unspent = contract.terminate(reason=reason, occurred_at=occurred_at)
        self._save_releasing(
            contract,
            contract.budget_id,
            contract.allocation_id,
            unspent,
            f"contract terminated: {reason}",
            occurred_at,
            caused_by=by,
        )
        return contract

    def get_contract(
        self,
        contract_id: UUID,
        *,
        by: Actor,
        as_of: datetime | None = None,
        known_at: KnownAt | None = None,
    ) -> Contract:
        """A contract its caller may see, now, as of a business time, or as known at a time."""
        return self._read(Contract, contract_id, by, as_of=as_of, known_at=known_at)

    def list_contracts(
        self,
        *,
        budget_id: UUID | None,
        purchaser_id: UUID | None,
        implementer_id: UUID | None,
        provider_id: UUID | None,
        after: int,
        limit: int,
        by: Actor,
    ) -> Page:
        """Contracts the caller may see, oldest first, filtered by budget and parties."""
        given = {
            "budget_id": budget_id,
            "purchaser_id": purchaser_id,
            "implementer_id": implementer_id,
            "provider_id": provider_id,
        }
        facts: dict[str, str | int] = {k: str(v) for k, v in given.items() if v is not None}
        visible = scoped(by, facts, CONTRACT_PARTY_FACTS, "contracts")
        if visible is None:
            return Page([], None)
        return self._page("contract", visible, after, limit)
