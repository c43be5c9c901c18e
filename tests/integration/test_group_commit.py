"""Group commit on a real database: writes share transactions; nothing of a refused one stays."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from proto.actor import Actor, Role
from services.ledger.application import LedgerApplication
from services.ledger.domain.budget import Budget, SourceKind
from services.ledger.domain.errors import ConcurrentWrite
from services.ledger.store.group_commit import GroupCommitting, Write
from services.ledger.store.recorders import ReferenceClaim
from tests.support.actors import AUDIT_OFFICE_ID, WUHOU_FINANCE_ID
from tests.support.ledger_app import ledger_application

WHEN = datetime(2014, 4, 14, tzinfo=UTC)
AUDITOR = Actor(role=Role.AUDITOR, organization_id=UUID(AUDIT_OFFICE_ID), subject="auditor")
WRITERS = 24


def clerk(number: int) -> Actor:
    return Actor(
        role=Role.FINANCE, organization_id=UUID(WUHOU_FINANCE_ID), subject=f"clerk-{number}"
    )


def open_budget(app: LedgerApplication, by: Actor, reference: str | None = None) -> Budget:
    budget, _ = app.open_budget(
        reference=reference,
        year=2014,
        purpose="p",
        title="t",
        sources=[(SourceKind.DISTRICT_FINANCE, "district finance", 10_000)],
        occurred_at=WHEN,
        by=by,
    )
    return budget


def recorder(app: LedgerApplication) -> GroupCommitting:
    assert isinstance(app.recorder, GroupCommitting)
    return app.recorder


def test_racing_writers_all_land_in_a_dense_feed_each_under_its_own_caller(
    database_url: str, catalog_url: str
) -> None:
    with ledger_application(database_url, catalog_url, group_commit_seconds=0.002) as app:
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            budgets = list(pool.map(lambda n: open_budget(app, clerk(n)), range(WRITERS)))
        committer = recorder(app).group_commit
        assert committer is not None
        assert committer.stats.writes == WRITERS
        entries = app.feed(after=0, limit=1000, by=AUDITOR)
        assert [row.position for row, _ in entries] == list(range(1, WRITERS + 1))
        opener = {b.id: f"clerk-{n}" for n, b in enumerate(budgets)}
        assert {event.originator_id: row.caused_by.subject for row, event in entries} == opener


def test_racing_writers_on_one_budget_each_get_an_answer_and_one_wins(
    database_url: str, catalog_url: str
) -> None:
    with ledger_application(database_url, catalog_url, group_commit_seconds=0.002) as app:
        budget = open_budget(app, clerk(0))

        def allocate(number: int) -> str:
            try:
                app.allocate(
                    budget.id,
                    street_office_id=uuid4(),
                    amount_fen=6_000,
                    occurred_at=WHEN,
                    by=clerk(number),
                )
            except ConcurrentWrite:
                return "raced"
            except Exception as error:  # the appropriation refuses a second 6,000
                return type(error).__name__
            return "allocated"

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(allocate, range(8)))
        assert outcomes.count("allocated") == 1, outcomes
        assert app.get_budget(budget.id, by=clerk(0)).allocated_fen == 6_000


def test_a_batch_holding_a_stale_write_leaves_nothing_of_any_of_its_writes(
    database_url: str, catalog_url: str
) -> None:
    with ledger_application(database_url, catalog_url) as app:
        first = open_budget(app, clerk(1))
        head = app.reads.head()
        stale = app.get_budget(first.id, by=clerk(1))
        fresh = Budget.open(
            holder_id=UUID(WUHOU_FINANCE_ID),
            reference="B-2014-2",
            year=2014,
            purpose="p",
            title="t",
            sources=[(SourceKind.DISTRICT_FINANCE, "district finance", 10_000)],
            occurred_at=WHEN,
        )
        app.allocate(
            first.id, street_office_id=uuid4(), amount_fen=1, occurred_at=WHEN, by=clerk(1)
        )
        stale.allocate(street_office_id=uuid4(), amount_fen=2, occurred_at=WHEN)

        def write(budget: Budget, by: Actor, references: list[ReferenceClaim]) -> Write:
            events = [app.mapper.to_stored_event(e) for e in budget.collect_events()]
            return events, {"caused_by": by, "references": references}

        batch = [
            write(fresh, clerk(2), [ReferenceClaim("budget", "B-2014-2", fresh.id)]),
            write(stale, clerk(3), []),
        ]
        with pytest.raises(IntegrityError):
            recorder(app)._insert_together(batch)
        assert app.reads.head() == head + 1
        assert app.reads.referenced_stream("budget", "B-2014-2") is None
        # Without the stale write, the same batch commits, feed rows and reference included.
        ids = recorder(app)._insert_together(batch[:1])
        assert len(ids) == 1
        assert len(ids[0] or []) == 1
        assert app.reads.referenced_stream("budget", "B-2014-2") == fresh.id
        last_row, last_event = app.feed(after=head + 1, limit=10, by=AUDITOR)[0]
        assert (last_row.position, last_event.originator_id) == (head + 2, fresh.id)
        assert last_row.caused_by == clerk(2)
