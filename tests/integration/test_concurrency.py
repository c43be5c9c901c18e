"""Racing writers: exactly one wins, nothing is lost, and a failed write leaves no trace."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from proto.actor import Actor, Role
from services.ledger.application import LedgerApplication
from services.ledger.domain.budget import Budget, CommitmentKind, SourceKind
from services.ledger.domain.contract import Contract
from services.ledger.domain.errors import ConcurrentWrite
from services.ledger.domain.procurement import Method
from services.ledger.store.recorders import ReferenceClaim
from tests.support.actors import AUDIT_OFFICE_ID, FINANCE, WUHOU_FINANCE_ID
from tests.support.catalog import Parties
from tests.support.ledger_api import cny, ok, open_budget
from tests.support.ledger_app import ledger_application

WHEN = datetime(2014, 4, 14, tzinfo=UTC)
# The callers below the HTTP layer, as a verified token would name them.
FINANCE_CLERK = Actor(
    role=Role.FINANCE, organization_id=UUID(WUHOU_FINANCE_ID), subject="finance-clerk"
)
AUDITOR = Actor(role=Role.AUDITOR, organization_id=UUID(AUDIT_OFFICE_ID), subject="auditor")


@pytest.mark.asyncio
async def test_two_writers_race_on_one_budget_and_exactly_one_wins(
    ledger: httpx.AsyncClient,
) -> None:
    budget = await open_budget(ledger, amount="100.00")
    # Each allocation fits alone; any two together would exceed the appropriation.
    responses = await asyncio.gather(
        *(
            ledger.post(
                f"/budgets/{budget['id']}/allocations",
                json={"street_office_id": str(uuid4()), "amount": cny("60.00")},
                headers=FINANCE,
            )
            for _ in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7, [r.text for r in responses]
    budget = ok(await ledger.get(f"/budgets/{budget['id']}", headers=FINANCE), 200)
    assert budget["allocated"] == cny("60.00")
    assert len(budget["allocations"]) == 1


def open_budget_of(app: LedgerApplication, amount_fen: int) -> Budget:
    budget, _ = app.open_budget(
        reference=None,
        year=2014,
        purpose="p",
        title="t",
        sources=[(SourceKind.DISTRICT_FINANCE, "district finance", amount_fen)],
        occurred_at=WHEN,
        by=FINANCE_CLERK,
    )
    return budget


def test_a_stale_write_is_refused_not_lost(database_url: str, catalog_url: str) -> None:
    with (
        ledger_application(database_url, catalog_url) as first,
        ledger_application(database_url, catalog_url) as second,
    ):
        budget = open_budget_of(first, 10_000)
        mine = first.get_budget(budget.id, by=FINANCE_CLERK)
        theirs = second.get_budget(budget.id, by=FINANCE_CLERK)
        mine.allocate(street_office_id=uuid4(), amount_fen=1_000, occurred_at=WHEN)
        theirs.allocate(street_office_id=uuid4(), amount_fen=2_000, occurred_at=WHEN)
        first.save(mine, caused_by=FINANCE_CLERK)
        with pytest.raises(ConcurrentWrite, match="changed while this request was processed"):
            second._save(theirs, caused_by=FINANCE_CLERK)
        assert first.get_budget(budget.id, by=FINANCE_CLERK).allocated_fen == 1_000


def test_the_feed_stays_dense_when_a_write_fails_midway(
    database_url: str, catalog_url: str, parties: Parties
) -> None:
    with (
        ledger_application(database_url, catalog_url) as first,
        ledger_application(database_url, catalog_url) as second,
    ):
        street = Actor(
            role=Role.STREET,
            organization_id=UUID(parties.street_office_id),
            subject="street-clerk",
        )
        budget = open_budget_of(first, 10_000)
        _, allocation, _ = first.allocate(
            budget.id,
            street_office_id=UUID(parties.street_office_id),
            amount_fen=10_000,
            occurred_at=WHEN,
            by=FINANCE_CLERK,
        )

        def awarded_project(reference: str) -> UUID:
            project, _ = first.open_project(
                reference=reference,
                title="t",
                purchaser_id=allocation.street_office_id,
                budget_id=budget.id,
                allocation_id=allocation.id,
                item_ids=[UUID(parties.item_id)],
                estimated_value_fen=1_000,
                method=Method.DIRECT_ENTRUSTMENT,
                eligible_tracks=["registered"],
                invited_provider_ids=[],
                applications_open_at=None,
                applications_close_at=None,
                fair=None,
                justification="entrusted",
                occurred_at=WHEN,
                by=street,
            )
            first.award_directly(
                project.id,
                provider_id=UUID(parties.provider_id),
                price_fen=1_000,
                publicity_ends_at=None,
                occurred_at=WHEN,
                by=street,
            )
            return project.id

        terms: dict[str, Any] = {
            "title": "t",
            "variation": None,
            "budget_id": budget.id,
            "allocation_id": allocation.id,
            "purchaser_id": allocation.street_office_id,
            "implementer_id": UUID(parties.community_id),
            "provider_id": UUID(parties.provider_id),
            "item_ids": [UUID(parties.item_id)],
            "value_fen": 1_000,
            "period_start": date(2014, 4, 14),
            "period_end": date(2014, 12, 31),
            "occurred_at": WHEN,
        }
        projects = {name: awarded_project(f"P-{name}") for name in ("A", "B", "C")}
        # The second writer prepares a contract on the budget as it loaded it...
        stale = second.get_budget(budget.id, by=FINANCE_CLERK)
        contract = Contract.sign(reference="B-1", project_id=projects["B"], **terms)
        stale.commit(
            allocation_id=allocation.id,
            commitment_id=contract.id,
            kind=CommitmentKind.CONTRACT,
            amount_fen=1_000,
            occurred_at=WHEN,
        )
        # ...the first signs meanwhile...
        first.sign_contract(reference="A-1", project_id=projects["A"], **terms, by=street)
        # ...so the second's save inserts the contract's event, then fails on the budget's, and
        # the whole transaction rolls back (on PostgreSQL, after drawing notification ids).
        with pytest.raises(ConcurrentWrite):
            second._save(
                contract,
                stale,
                caused_by=street,
                references=[ReferenceClaim("contract", "B-1", contract.id)],
            )
        first.sign_contract(reference="C-1", project_id=projects["C"], **terms, by=street)

        entries = first.feed(after=0, limit=100, by=AUDITOR)
        positions = [row.position for row, _ in entries]
        assert positions == list(range(1, len(positions) + 1))
        assert [type(e).__qualname__ for _, e in entries][-6:] == [
            "Contract.Signed",
            "Budget.Committed",
            "PurchaseProject.Contracted",
            "Contract.Signed",
            "Budget.Committed",
            "PurchaseProject.Contracted",
        ]
        assert {row.caused_by for row, _ in entries[-6:]} == {street}
        # Nothing of the failed write remains, so its reference is still free.
        assert first.reads.referenced_stream("contract", "B-1") is None
        assert first.get_budget(budget.id, by=FINANCE_CLERK).committed_fen == 2_000
        if database_url.startswith("postgresql"):
            ids = [n.id for n in first.recorder.select_notifications(start=1, limit=100)]
            assert ids != list(range(ids[0], ids[0] + len(ids))), "the event store has a hole"
