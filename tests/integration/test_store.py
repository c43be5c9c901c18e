"""The event store is configured by the ledger's settings alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ledger.domain.budget import SourceKind
from tests.support.ledger_app import ledger_application


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
            occurred_at=datetime(2014, 1, 1, tzinfo=UTC),
        )
        assert [row.position for row, _ in app.feed(after=0, limit=10)] == [1]
