"""The event store is configured by the ledger's settings alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ledger.application import LedgerApplication
from services.ledger.domain.budget import SourceKind
from services.ledger.store.config import eventsourcing_env


@pytest.mark.postgres
def test_feed_is_kept_whatever_the_environment_says(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Variables the library would read, were it not given its settings alone.
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    monkeypatch.setenv("LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    monkeypatch.setenv("LEDGER_PERSISTENCE_MODULE", "eventsourcing.popo")
    app = LedgerApplication(eventsourcing_env(postgres_url), beneficiary_key=b"k")
    try:
        app.open_budget(
            reference=None,
            year=2014,
            purpose="p",
            title="t",
            sources=[(SourceKind.OTHER, "s", 100)],
            occurred_at=datetime(2014, 1, 1, tzinfo=UTC),
        )
        assert [row.position for row, _ in app.feed(after=0, limit=10)] == [1]
    finally:
        app.close()
