"""The event store is configured by the ledger's settings alone, and stores only events someone
answers for."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from proto.actor import Actor, Role
from services.common.auth import AuthSettings
from services.ledger.domain.budget import SourceKind
from services.ledger.main import open_ledger
from services.ledger.settings import LedgerSettings
from tests.support.actors import AUDIT_OFFICE_ID, WUHOU_FINANCE_ID
from tests.support.ledger_app import ledger_application

WHEN = datetime(2014, 1, 1, tzinfo=UTC)
# The callers below the HTTP layer, as a verified token would name them.
FINANCE_CLERK = Actor(
    role=Role.FINANCE, organization_id=UUID(WUHOU_FINANCE_ID), subject="finance-clerk"
)
AUDITOR = Actor(role=Role.AUDITOR, organization_id=UUID(AUDIT_OFFICE_ID), subject="auditor")


@pytest.mark.postgres
def test_feed_is_kept_whatever_the_environment_says(
    postgres_url: str, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Variables the library would read, were it not given its settings alone.
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    monkeypatch.setenv("LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    monkeypatch.setenv("LEDGER_PERSISTENCE_MODULE", "eventsourcing.popo")
    with ledger_application(postgres_url, catalog_url) as app:
        app.open_budget(
            reference=None,
            year=2014,
            purpose="p",
            title="t",
            sources=[(SourceKind.OTHER, "s", 100)],
            occurred_at=WHEN,
            by=FINANCE_CLERK,
        )
        feed = app.feed(after=0, limit=10, by=AUDITOR)
        assert [(row.position, row.caused_by) for row, _ in feed] == [(1, FINANCE_CLERK)]


def test_events_without_the_actor_who_caused_them_are_refused(
    database_url: str, catalog_url: str
) -> None:
    with ledger_application(database_url, catalog_url) as app:
        budget, _ = app.open_budget(
            reference=None,
            year=2014,
            purpose="p",
            title="t",
            sources=[(SourceKind.OTHER, "s", 100)],
            occurred_at=WHEN,
            by=FINANCE_CLERK,
        )
        unanswered = app.get_budget(budget.id, by=FINANCE_CLERK)
        unanswered.allocate(street_office_id=uuid4(), amount_fen=10, occurred_at=WHEN)
        with pytest.raises(ValueError, match="only with the actor who caused them"):
            app.save(unanswered)
        # Nothing of it was stored: neither the event nor a feed position.
        assert app.get_budget(budget.id, by=FINANCE_CLERK).allocated_fen == 0
        assert app.reads.head() == 1
        # The store is none the worse: the next write, with its actor, takes the next position.
        app.allocate(
            budget.id,
            street_office_id=uuid4(),
            amount_fen=20,
            occurred_at=WHEN,
            by=FINANCE_CLERK,
        )
        feed = app.feed(after=0, limit=10, by=AUDITOR)
        assert [(row.position, row.caused_by) for row, _ in feed] == [
            (1, FINANCE_CLERK),
            (2, FINANCE_CLERK),
        ]
        assert app.get_budget(budget.id, by=FINANCE_CLERK).allocated_fen == 20


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("configured", "shown"), [({}, "1min"), ({"database_idle_in_transaction_seconds": 90}, "90s")]
)
def test_the_ledgers_transactions_may_sit_idle_as_long_as_its_settings_say(
    postgres_url: str, catalog_url: str, configured: dict[str, int], shown: str
) -> None:
    settings = LedgerSettings.model_validate(
        {"database_url": postgres_url, "catalog_url": catalog_url, **configured}
    )
    ledger, catalog = open_ledger(settings, AuthSettings())
    try:
        datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("SHOW idle_in_transaction_session_timeout")
            assert cursor.fetchone()["idle_in_transaction_session_timeout"] == shown
    finally:
        ledger.close()
        catalog.close()
