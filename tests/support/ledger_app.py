"""A ledger application used directly, below its HTTP layer, for tests that race writers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from services.common.auth import AuthSettings, ServiceToken
from services.ledger.application import LedgerApplication
from services.ledger.catalog import HttpCatalog
from services.ledger.sealing import PriceSealer
from services.ledger.store.config import eventsourcing_env


@contextmanager
def ledger_application(
    database_url: str, catalog_url: str, *, group_commit_seconds: float = 0.0
) -> Iterator[LedgerApplication]:
    """A ledger on `database_url` asking the catalog at `catalog_url`; closed afterwards."""
    token = ServiceToken(AuthSettings(), UUID(int=0), "ledger-under-test")
    catalog = HttpCatalog(catalog_url, token=token)
    app = LedgerApplication(
        eventsourcing_env(database_url),
        beneficiary_key=b"test",
        catalog=catalog,
        price_sealer=PriceSealer(b"test"),
    )
    if group_commit_seconds > 0:
        app.start_group_commit(group_commit_seconds)
    try:
        yield app
    finally:
        app.close()
        catalog.close()
