"""Purchase projects: publication, sealed applications, evaluation, award, objections."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.http import created, found_again
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import AsOf, Cursor, KnownAt, Ledger, Limit
from services.ledger.api.project_schemas import (
    ApplicationCreate,
    ApplicationReceipt,
    AwardCreate,
    DirectAwardCreate,
    EvaluationCreate,
    ObjectionAnswerCreate,
    ObjectionCreate,
    ProjectCreate,
    ProjectEnding,
    ProjectPage,
    ProjectRead,
    StateName,
    Withdrawal,
)
from services.ledger.api.project_views import application_view, project_view
from services.ledger.api.schemas import Action
from services.ledger.domain.procurement import Method, ProjectState

router = APIRouter(
    dependencies=[Authenticated],
    prefix="/projects",
    tags=["procurement"],
    responses=PROBLEM_RESPONSES,
)


@router.post("", operation_id="openProject", status_code=201, responses=found_again(ProjectRead))
def open_project(
    body: ProjectCreate, ledger: Ledger, caller: CurrentActor, response: Response
) -> ProjectRead:
    """Draft a purchase project for admitted items against a budget allocation."""
    project, is_new = ledger.open_project(
        reference=body.reference,
        title=body.title,
        purchaser_id=body.purchaser_id,
        budget_id=body.budget_id,
        allocation_id=body.allocation_id,
        item_ids=body.item_ids,
        estimated_value_fen=body.estimated_value.fen,
        method=Method(body.method),
        eligible_tracks=list(body.eligible_tracks),
        invited_provider_ids=body.invited_provider_ids,
        applications_open_at=body.applications_open_at,
        applications_close_at=body.applications_close_at,
        fair=body.fair,
        justification=body.justification,
        occurred_at=body.occurred_at,
        by=caller,
    )
    created(response, is_new, f"/projects/{project.id}")
    return project_view(project)


@router.get("", operation_id="listProjects")
def list_projects(
    ledger: Ledger,
    caller: CurrentActor,
    state: StateName | None = None,
    fair: str | None = None,
    item_id: UUID | None = None,
    purchaser_id: UUID | None = None,
    budget_id: UUID | None = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> ProjectPage:
    """List projects, oldest first: open ones (`state=published`), by fair, item, street office."""
    page = ledger.list_projects(
        state=ProjectState(state) if state else None,
        fair=fair,
        item_id=item_id,
        purchaser_id=purchaser_id,
        budget_id=budget_id,
        after=cursor,
        limit=limit,
    )
    return ProjectPage(
        items=[project_view(ledger.get_project(i, by=caller)) for i in page.ids],
        next_cursor=page.next_cursor,
    )


@router.get("/{project_id}", operation_id="getProject")
def get_project(
    project_id: UUID, ledger: Ledger, caller: CurrentActor, known_at: KnownAt, as_of: AsOf = None
) -> ProjectRead:
    """Read a project now, as of a business time, or as known at a record time or position."""
    return project_view(ledger.get_project(project_id, as_of=as_of, known_at=known_at, by=caller))


@router.post("/{project_id}/publication", operation_id="publishProject", status_code=201)
def publish_project(
    project_id: UUID, body: Action, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """Publish a drafted project; applications come in during its period."""
    return project_view(ledger.publish_project(project_id, occurred_at=body.occurred_at, by=caller))


@router.post("/{project_id}/applications", operation_id="applyToProject", status_code=201)
def apply_to_project(
    project_id: UUID, body: ApplicationCreate, ledger: Ledger, caller: CurrentActor
) -> ApplicationReceipt:
    """Apply with a price, sealed until the period closes, and the proposal's SHA-256."""
    _, application = ledger.apply_to_project(
        project_id,
        provider_id=body.provider_id,
        price_fen=body.price.fen,
        proposal_sha256=body.proposal_sha256,
        occurred_at=body.occurred_at,
        by=caller,
    )
    view = application_view(application)
    return ApplicationReceipt(**view.model_dump(), offered_price=body.price)


@router.post(
    "/{project_id}/applications/{application_id}/withdrawal",
    operation_id="withdrawApplication",
    status_code=201,
)
def withdraw_application(
    project_id: UUID, application_id: UUID, body: Withdrawal, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """The applicant withdraws its application before the deadline."""
    project, _ = ledger.withdraw_application(
        project_id,
        application_id,
        provider_id=body.provider_id,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return project_view(project)


@router.post("/{project_id}/closure", operation_id="closeApplications", status_code=201)
def close_applications(
    project_id: UUID, body: Action, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """Close the application period: every sealed price is disclosed."""
    return project_view(
        ledger.close_applications(project_id, occurred_at=body.occurred_at, by=caller)
    )


@router.post("/{project_id}/evaluation", operation_id="evaluateProject", status_code=201)
def evaluate_project(
    project_id: UUID, body: EvaluationCreate, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """Record the panel's score, reasons and verdict for every application."""
    project = ledger.evaluate_project(
        project_id,
        panel=body.panel,
        scores=[s.model_dump() for s in body.scores],
        occurred_at=body.occurred_at,
        by=caller,
    )
    return project_view(project)


@router.post("/{project_id}/award", operation_id="awardProject", status_code=201)
def award_project(
    project_id: UUID, body: AwardCreate, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """Award to an acceptable application; the publicity period (公示) begins."""
    project = ledger.award_project(
        project_id,
        application_id=body.application_id,
        publicity_ends_at=body.publicity_ends_at,
        justification=body.justification,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return project_view(project)


@router.post("/{project_id}/direct-award", operation_id="awardDirectly", status_code=201)
def award_directly(
    project_id: UUID, body: DirectAwardCreate, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """Award a single-source or directly entrusted purchase, as justified."""
    project = ledger.award_directly(
        project_id,
        provider_id=body.provider_id,
        price_fen=body.price.fen,
        publicity_ends_at=body.publicity_ends_at,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return project_view(project)


@router.post("/{project_id}/objections", operation_id="lodgeObjection", status_code=201)
def lodge_objection(
    project_id: UUID, body: ObjectionCreate, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """An applicant objects (质疑) to the award during publicity."""
    project, _ = ledger.lodge_objection(
        project_id,
        provider_id=body.provider_id,
        text=body.text,
        occurred_at=body.occurred_at,
        by=caller,
    )
    return project_view(project)


@router.post(
    "/{project_id}/objections/{objection_id}/answer",
    operation_id="answerObjection",
    status_code=201,
)
def answer_objection(
    project_id: UUID,
    objection_id: UUID,
    body: ObjectionAnswerCreate,
    ledger: Ledger,
    caller: CurrentActor,
) -> ProjectRead:
    """The purchaser answers an objection; the contract waits for every answer."""
    project = ledger.answer_objection(
        project_id, objection_id, answer=body.answer, occurred_at=body.occurred_at, by=caller
    )
    return project_view(project)


@router.post("/{project_id}/cancellation", operation_id="cancelProject", status_code=201)
def cancel_project(
    project_id: UUID, body: ProjectEnding, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """Cancel a project before its contract, with a reason."""
    return project_view(
        ledger.cancel_project(
            project_id, reason=body.reason, occurred_at=body.occurred_at, by=caller
        )
    )


@router.post("/{project_id}/failure", operation_id="declareUnsuccessful", status_code=201)
def declare_unsuccessful(
    project_id: UUID, body: ProjectEnding, ledger: Ledger, caller: CurrentActor
) -> ProjectRead:
    """End a project with no acceptable application."""
    return project_view(
        ledger.declare_unsuccessful(
            project_id, reason=body.reason, occurred_at=body.occurred_at, by=caller
        )
    )
