"""Grants to the API's Read models."""

from __future__ import annotations

from uuid import UUID

from proto.money import Money
from services.ledger.api.grant_schemas import GrantRead, TrancheRead, UseReportRead
from services.ledger.domain.grant import Grant, Tranche, UseReport

money = Money.from_fen


def grant_view(grant: Grant) -> GrantRead:
    """A grant with its running figures, tranches and reports on use."""
    return GrantRead(
        id=grant.id,
        version=grant.version,
        reference=grant.reference,
        purpose=grant.purpose,
        state=grant.state.value,
        budget_id=grant.budget_id,
        allocation_id=grant.allocation_id,
        grantor_id=grant.grantor_id,
        grantee_id=grant.grantee_id,
        amount=money(grant.amount_fen),
        awarded_at=grant.awarded_at,
        committed=money(grant.committed_fen),
        disbursed=money(grant.disbursed_fen),
        undisbursed=money(grant.undisbursed_fen),
        spent=money(grant.spent_fen),
        unspent=money(grant.unspent_fen),
        released=money(grant.released_fen),
        ended_at=grant.ended_at,
        revocation_reason=grant.revocation_reason,
        tranches=[tranche_view(grant.id, t) for t in grant.tranches.values()],
        reports=[use_report_view(grant.id, r) for r in grant.reports],
    )


def tranche_view(grant_id: UUID, tranche: Tranche) -> TrancheRead:
    """One tranche paid out of a grant."""
    return TrancheRead(
        grant_id=grant_id,
        reference=tranche.reference,
        amount=money(tranche.amount_fen),
        disbursed_at=tranche.disbursed_at,
    )


def use_report_view(grant_id: UUID, report: UseReport) -> UseReportRead:
    """One report on use, with what it covers."""
    return UseReportRead(
        grant_id=grant_id,
        report_sha256=report.report_sha256,
        summary=report.summary,
        spent=money(report.spent_fen),
        disbursed=money(report.disbursed_fen),
        reported_at=report.reported_at,
    )
