"""Purchase projects to the API's Read models."""

from __future__ import annotations

from proto.money import Money
from services.ledger.api.project_schemas import (
    ApplicationRead,
    AwardRead,
    ObjectionRead,
    ProjectRead,
)
from services.ledger.domain.procurement import Application, PurchaseProject


def application_view(application: Application) -> ApplicationRead:
    """An application; its price only once disclosed."""
    return ApplicationRead(
        id=application.id,
        provider_id=application.provider_id,
        proposal_sha256=application.proposal_sha256,
        price_commitment=application.price_commitment,
        price=Money.from_fen(application.price_fen) if application.price_fen is not None else None,
        submitted_at=application.submitted_at,
        withdrawn_at=application.withdrawn_at,
        score=application.score,
        acceptable=application.acceptable,
        score_reason=application.score_reason,
    )


def project_view(project: PurchaseProject) -> ProjectRead:
    """A project with its applications, objections and award."""
    award = None
    if project.awarded_provider_id is not None:
        assert project.awarded_price_fen is not None
        award = AwardRead(
            application_id=project.awarded_application_id,
            provider_id=project.awarded_provider_id,
            price=Money.from_fen(project.awarded_price_fen),
            justification=project.award_justification,
            publicity_ends_at=project.publicity_ends_at,
        )
    return ProjectRead(
        id=project.id,
        version=project.version,
        reference=project.reference,
        title=project.title,
        state=project.state.value,
        method=project.method.value,
        purchaser_id=project.purchaser_id,
        budget_id=project.budget_id,
        allocation_id=project.allocation_id,
        item_ids=project.item_ids,
        estimated_value=Money.from_fen(project.estimated_value_fen),
        eligible_tracks=project.eligible_tracks,
        invited_provider_ids=project.invited_provider_ids,
        applications_open_at=project.applications_open_at,
        applications_close_at=project.applications_close_at,
        fair=project.fair,
        justification=project.justification,
        opened_at=project.opened_at,
        panel=project.panel,
        applications=[application_view(a) for a in project.applications.values()],
        objections=[
            ObjectionRead(
                id=o.id,
                provider_id=o.provider_id,
                text=o.text,
                lodged_at=o.lodged_at,
                answer=o.answer,
                answered_at=o.answered_at,
            )
            for o in project.objections.values()
        ],
        award=award,
        contract_id=project.contract_id,
        ending_reason=project.ending_reason,
    )
