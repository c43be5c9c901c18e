"""Use cases of procurement: purchase projects from drafting to award, and their objections."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from proto.actor import Actor, Role
from proto.catalog import OrganizationKind
from services.common.errors import Forbidden
from services.common.permissions import require_acting_for
from services.ledger.application.base import KnownAt, LedgerBase, Page
from services.ledger.domain.budget import Budget
from services.ledger.domain.eligibility import require_admitted, require_party, require_provider
from services.ledger.domain.errors import InvalidCommand, ReferenceConflict
from services.ledger.domain.procurement import (
    Application,
    Method,
    Objection,
    ProjectState,
    PurchaseProject,
)
from services.ledger.store.recorders import ReferenceClaim, StreamEntry


class ProcurementUseCases(LedgerBase):
    """How contracts come about: projects, applications, evaluation, award, objections."""

    def open_project(
        self,
        *,
        reference: str,
        title: str,
        purchaser_id: UUID,
        budget_id: UUID,
        allocation_id: UUID,
        item_ids: list[UUID],
        estimated_value_fen: int,
        method: Method,
        eligible_tracks: list[str],
        invited_provider_ids: list[UUID],
        applications_open_at: datetime | None,
        applications_close_at: datetime | None,
        fair: str | None,
        justification: str | None,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[PurchaseProject, bool]:
        """Draft a purchase project for admitted items; a known reference finds it."""
        require_acting_for(by, Role.STREET, purchaser_id, "open purchase projects")
        existing = self._by_reference(PurchaseProject, "project", reference)
        if existing is not None:
            same = (existing.budget_id, existing.allocation_id, existing.item_ids) == (
                budget_id,
                allocation_id,
                item_ids,
            )
            return self._same_or_conflict(existing, same, "project", reference, by)
        allocation = self._get(Budget, budget_id).allocation(allocation_id)
        if allocation.street_office_id != purchaser_id:
            raise ReferenceConflict(
                f"allocation {allocation_id} belongs to street office "
                f"{allocation.street_office_id}, not to the purchaser {purchaser_id}"
            )
        project = PurchaseProject.open(
            reference=reference,
            title=title,
            purchaser_id=purchaser_id,
            budget_id=budget_id,
            allocation_id=allocation_id,
            item_ids=item_ids,
            estimated_value_fen=estimated_value_fen,
            method=method,
            eligible_tracks=eligible_tracks,
            invited_provider_ids=invited_provider_ids,
            applications_open_at=applications_open_at,
            applications_close_at=applications_close_at,
            fair=fair,
            justification=justification,
            occurred_at=occurred_at,
        )
        # Asked last: the catalog is another service, so every local check goes first.
        organizations = self.catalog.organizations([purchaser_id], occurred_at)
        require_party(
            organizations, "purchaser", purchaser_id, [OrganizationKind.STREET_OFFICE], occurred_at
        )
        require_admitted(self.catalog.items(item_ids, occurred_at), item_ids, occurred_at)
        tags = [f"item:{i}" for i in item_ids] + ([f"fair:{fair}"] if fair else [])
        self._save(
            project,
            references=[ReferenceClaim("project", reference, project.id)],
            streams=[
                StreamEntry(
                    project.id,
                    "project",
                    {"budget_id": str(budget_id), "purchaser_id": str(purchaser_id)},
                    tags=tags,
                )
            ],
            caused_by=by,
        )
        return project, True

    def publish_project(
        self, project_id: UUID, *, occurred_at: datetime, by: Actor
    ) -> PurchaseProject:
        """Publish a drafted project: its application period is announced."""
        project = self._for(PurchaseProject, project_id, by, (Role.STREET,), "publish this project")
        project.publish(occurred_at=occurred_at)
        self._save(project, caused_by=by)
        return project

    def apply_to_project(
        self,
        project_id: UUID,
        *,
        provider_id: UUID,
        price_fen: int,
        proposal_sha256: str,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[PurchaseProject, Application]:
        """A provider applies; its price is sealed until the period closes."""
        require_acting_for(by, Role.PROVIDER, provider_id, "apply to projects")
        project = self._read(PurchaseProject, project_id, by)
        if price_fen <= 0:
            raise InvalidCommand("an offered price must be more than 0.00")
        provider = require_provider(
            self.catalog.organizations([provider_id], occurred_at), provider_id, occurred_at
        )
        assert provider.registration is not None
        application_id = uuid4()
        sealed = self.price_sealer.seal(application_id, price_fen)
        application = project.apply(
            application_id=application_id,
            provider_id=provider_id,
            provider_track=provider.registration.track.value,
            proposal_sha256=proposal_sha256,
            price_commitment=sealed.commitment,
            sealed_price=sealed.sealed,
            occurred_at=occurred_at,
        )
        self._save(project, caused_by=by)
        return project, application

    def withdraw_application(
        self,
        project_id: UUID,
        application_id: UUID,
        *,
        provider_id: UUID,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[PurchaseProject, Application]:
        """The applicant withdraws before the deadline."""
        require_acting_for(by, Role.PROVIDER, provider_id, "withdraw applications")
        project = self._read(PurchaseProject, project_id, by)
        if project.application(application_id).provider_id != by.organization_id:
            raise Forbidden(f"{by} may withdraw only its own applications")
        project.withdraw(
            application_id=application_id, provider_id=provider_id, occurred_at=occurred_at
        )
        self._save(project, caused_by=by)
        return project, project.application(application_id)

    def close_applications(
        self, project_id: UUID, *, occurred_at: datetime, by: Actor
    ) -> PurchaseProject:
        """Close the period, opening every seal and disclosing the prices."""
        project = self._for(
            PurchaseProject, project_id, by, (Role.STREET,), "close this project's applications"
        )
        disclosures = []
        for application in project.live_applications:
            price_fen, nonce = self.price_sealer.open(application.id, application.sealed_price)
            disclosures.append(
                {"application_id": application.id, "price_fen": price_fen, "nonce": nonce}
            )
        project.close(disclosures=disclosures, occurred_at=occurred_at)
        self._save(project, caused_by=by)
        return project

    def evaluate_project(
        self,
        project_id: UUID,
        *,
        panel: list[str],
        scores: list[dict[str, object]],
        occurred_at: datetime,
        by: Actor,
    ) -> PurchaseProject:
        """Record the panel's scores and reasons for every application."""
        project = self._for(
            PurchaseProject, project_id, by, (Role.STREET,), "evaluate this project"
        )
        project.evaluate(panel=panel, scores=scores, occurred_at=occurred_at)
        self._save(project, caused_by=by)
        return project

    def award_project(
        self,
        project_id: UUID,
        *,
        application_id: UUID,
        publicity_ends_at: datetime,
        justification: str | None,
        occurred_at: datetime,
        by: Actor,
    ) -> PurchaseProject:
        """Award to an application; the publicity period (公示) begins."""
        project = self._for(PurchaseProject, project_id, by, (Role.STREET,), "award this project")
        project.award(
            application_id=application_id,
            publicity_ends_at=publicity_ends_at,
            justification=justification,
            occurred_at=occurred_at,
        )
        self._save(project, caused_by=by)
        return project

    def award_directly(
        self,
        project_id: UUID,
        *,
        provider_id: UUID,
        price_fen: int,
        publicity_ends_at: datetime | None,
        occurred_at: datetime,
        by: Actor,
    ) -> PurchaseProject:
        """Award a single-source or entrusted purchase to its provider, as justified."""
        project = self._for(PurchaseProject, project_id, by, (Role.STREET,), "award this project")
        provider = require_provider(
            self.catalog.organizations([provider_id], occurred_at), provider_id, occurred_at
        )
        assert provider.registration is not None
        project.award_directly(
            provider_id=provider_id,
            price_fen=price_fen,
            publicity_ends_at=publicity_ends_at,
            occurred_at=occurred_at,
        )
        self._save(project, caused_by=by)
        return project

    def lodge_objection(
        self, project_id: UUID, *, provider_id: UUID, text: str, occurred_at: datetime, by: Actor
    ) -> tuple[PurchaseProject, Objection]:
        """An applicant objects to the award during publicity."""
        require_acting_for(by, Role.PROVIDER, provider_id, "lodge objections")
        project = self._read(PurchaseProject, project_id, by)
        objection = project.lodge_objection(
            objection_id=uuid4(), provider_id=provider_id, text=text, occurred_at=occurred_at
        )
        self._save(project, caused_by=by)
        return project, objection

    def answer_objection(
        self, project_id: UUID, objection_id: UUID, *, answer: str, occurred_at: datetime, by: Actor
    ) -> PurchaseProject:
        """The purchaser answers an objection."""
        project = self._for(
            PurchaseProject, project_id, by, (Role.STREET,), "answer objections to this project"
        )
        project.answer_objection(objection_id=objection_id, answer=answer, occurred_at=occurred_at)
        self._save(project, caused_by=by)
        return project

    def cancel_project(
        self, project_id: UUID, *, reason: str, occurred_at: datetime, by: Actor
    ) -> PurchaseProject:
        """Cancel a project before its contract, with a reason."""
        project = self._for(PurchaseProject, project_id, by, (Role.STREET,), "cancel this project")
        project.cancel(reason=reason, occurred_at=occurred_at)
        self._save(project, caused_by=by)
        return project

    def declare_unsuccessful(
        self, project_id: UUID, *, reason: str, occurred_at: datetime, by: Actor
    ) -> PurchaseProject:
        """End a project that had no acceptable application."""
        project = self._for(
            PurchaseProject, project_id, by, (Role.STREET,), "declare this project unsuccessful"
        )
        project.declare_unsuccessful(reason=reason, occurred_at=occurred_at)
        self._save(project, caused_by=by)
        return project

    def get_project(
        self,
        project_id: UUID,
        *,
        by: Actor,
        as_of: datetime | None = None,
        known_at: KnownAt | None = None,
    ) -> PurchaseProject:
        """A project now, as of a business time, or as known at a record time."""
        return self._read(PurchaseProject, project_id, by, as_of=as_of, known_at=known_at)

    def list_projects(
        self,
        *,
        state: ProjectState | None,
        fair: str | None,
        item_id: UUID | None,
        purchaser_id: UUID | None,
        budget_id: UUID | None,
        after: int,
        limit: int,
    ) -> Page:
        """Projects, oldest first: open ones, by fair, item, street office or budget."""
        facts: dict[str, str | int] = {}
        if purchaser_id is not None:
            facts["purchaser_id"] = str(purchaser_id)
        if budget_id is not None:
            facts["budget_id"] = str(budget_id)
        tags = ([f"fair:{fair}"] if fair else []) + ([f"item:{item_id}"] if item_id else [])

        def in_state(stream_id: UUID) -> bool:
            return state is None or self._get(PurchaseProject, stream_id).state is state

        return self._page("project", facts, after, limit, tags=tags, keep=in_state)
