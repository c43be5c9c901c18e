"""Use cases of grants: awarding against an allocation, tranches, reports on use, the end."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from proto.actor import Actor, Role
from services.common.permissions import require_acting_for
from services.ledger.application.access import scoped
from services.ledger.application.base import TREASURY_SCOPE, KnownAt, LedgerBase, Page
from services.ledger.domain.budget import Budget, CommitmentKind
from services.ledger.domain.eligibility import check_grant_parties
from services.ledger.domain.errors import ReferenceConflict
from services.ledger.domain.grant import Grant, Tranche, UseReport
from services.ledger.store.recorders import ReferenceClaim, StreamEntry


class GrantUseCases(LedgerBase):
    """Grants to organizations, committed against budget allocations like contracts."""

    def award_grant(
        self,
        *,
        reference: str,
        purpose: str,
        budget_id: UUID,
        allocation_id: UUID,
        grantor_id: UUID,
        grantee_id: UUID,
        amount_fen: int,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Grant, bool]:
        """Record an awarded grant and commit its amount against the budget allocation."""
        require_acting_for(by, Role.STREET, grantor_id, "award grants")
        existing = self._by_reference(Grant, "grant", reference)
        if existing is not None:
            same = (
                existing.budget_id,
                existing.allocation_id,
                existing.grantor_id,
                existing.grantee_id,
                existing.amount_fen,
            ) == (budget_id, allocation_id, grantor_id, grantee_id, amount_fen)
            return self._same_or_conflict(existing, same, "grant", reference, by)
        budget = self._get(Budget, budget_id)
        allocation = budget.allocation(allocation_id)
        if allocation.street_office_id != grantor_id:
            raise ReferenceConflict(
                f"allocation {allocation_id} belongs to street office "
                f"{allocation.street_office_id}, not to the grantor {grantor_id}"
            )
        grant = Grant.award(
            reference=reference,
            purpose=purpose,
            budget_id=budget_id,
            allocation_id=allocation_id,
            grantor_id=grantor_id,
            grantee_id=grantee_id,
            amount_fen=amount_fen,
            occurred_at=occurred_at,
        )
        budget.commit(
            allocation_id=allocation_id,
            commitment_id=grant.id,
            kind=CommitmentKind.GRANT,
            amount_fen=amount_fen,
            occurred_at=occurred_at,
        )
        # Asked last: the catalog is another service, so every local check goes first.
        check_grant_parties(
            grantor_id=grantor_id,
            grantee_id=grantee_id,
            organizations=self.catalog.organizations([grantor_id, grantee_id], occurred_at),
            as_of=occurred_at,
        )
        facts: dict[str, str | int | None] = {
            "budget_id": str(budget_id),
            "purchaser_id": str(grantor_id),
            "provider_id": str(grantee_id),
        }
        self._save(
            grant,
            budget,
            references=[ReferenceClaim("grant", reference, grant.id)],
            streams=[StreamEntry(grant.id, "grant", facts)],
            caused_by=by,
        )
        return grant, True

    def disburse_tranche(
        self, grant_id: UUID, *, reference: str, amount_fen: int, occurred_at: datetime, by: Actor
    ) -> tuple[Grant, Tranche, bool]:
        """Record a tranche paid out; the same treasury reference twice is the same tranche."""
        grant = self._for(Grant, grant_id, by, (Role.STREET,), "record this grant's tranches")
        if self._treasury_reference_is_ours(reference, grant_id, by):
            tranche = grant.tranche(reference)
            if tranche.amount_fen != amount_fen:
                raise ReferenceConflict(
                    f"treasury reference {reference!r} is already a tranche of a different amount"
                )
            return grant, tranche, False
        tranche = grant.disburse(
            reference=reference, amount_fen=amount_fen, occurred_at=occurred_at
        )
        self._save(
            grant, references=[ReferenceClaim(TREASURY_SCOPE, reference, grant_id)], caused_by=by
        )
        return grant, tranche, True

    def report_grant_use(
        self,
        grant_id: UUID,
        *,
        report_sha256: str,
        summary: str,
        spent_fen: int,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Grant, UseReport, bool]:
        """Record the grantee's report on use; the same report (by digest) twice is one report."""
        grant = self._for(Grant, grant_id, by, (Role.PROVIDER,), "report on this grant's use")
        found = next((r for r in grant.reports if r.report_sha256 == report_sha256), None)
        if found is not None:
            if found.spent_fen != spent_fen:
                raise ReferenceConflict(
                    f"report {report_sha256} is already on record for this grant with "
                    "different spending"
                )
            return grant, found, False
        report = grant.report_use(
            report_sha256=report_sha256,
            summary=summary,
            spent_fen=spent_fen,
            occurred_at=occurred_at,
        )
        self._save(grant, caused_by=by)
        return grant, report, True

    def close_grant(self, grant_id: UUID, *, occurred_at: datetime, by: Actor) -> Grant:
        """Close an accounted-for grant and release its undisbursed remainder."""
        grant = self._for(Grant, grant_id, by, (Role.STREET,), "close this grant")
        remainder = grant.close(occurred_at=occurred_at)
        self._save_releasing(
            grant,
            grant.budget_id,
            grant.allocation_id,
            remainder,
            "grant closed",
            occurred_at,
            caused_by=by,
        )
        return grant

    def revoke_grant(
        self, grant_id: UUID, *, reason: str, occurred_at: datetime, by: Actor
    ) -> Grant:
        """Revoke a grant not fully disbursed, with a reason, releasing the undisbursed part."""
        grant = self._for(Grant, grant_id, by, (Role.STREET,), "revoke this grant")
        remainder = grant.revoke(reason=reason, occurred_at=occurred_at)
        self._save_releasing(
            grant,
            grant.budget_id,
            grant.allocation_id,
            remainder,
            f"grant revoked: {reason}",
            occurred_at,
            caused_by=by,
        )
        return grant

    def get_grant(
        self,
        grant_id: UUID,
        *,
        by: Actor,
        as_of: datetime | None = None,
        known_at: KnownAt | None = None,
    ) -> Grant:
        """A grant its caller may see, now, as of a business time, or as known at a time."""
        return self._read(Grant, grant_id, by, as_of=as_of, known_at=known_at)

    def list_grants(
        self,
        *,
        budget_id: UUID | None,
        grantor_id: UUID | None,
        grantee_id: UUID | None,
        after: int,
        limit: int,
        by: Actor,
    ) -> Page:
        """Grants the caller may see, oldest first, filtered by budget, grantor and grantee."""
        given = {"budget_id": budget_id, "purchaser_id": grantor_id, "provider_id": grantee_id}
        facts: dict[str, str | int] = {k: str(v) for k, v in given.items() if v is not None}
        visible = scoped(
            by, facts, {Role.STREET: "purchaser_id", Role.PROVIDER: "provider_id"}, "grants"
        )
        if visible is None:
            return Page([], None)
        return self._page("grant", visible, after, limit)
