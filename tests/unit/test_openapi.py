"""Each service publishes an OpenAPI document whose operations have stable, unique ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from services.catalog.main import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.ledger.main import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from services.notifier.main import create_app as create_notifier
from services.notifier.settings import NotifierSettings

# Building an app opens no database: that happens at startup, which these tests do not run.
APPS: dict[str, Callable[[], FastAPI]] = {
    "catalog": lambda: create_catalog(CatalogSettings(database_url="sqlite:///unused.sqlite3")),
    "ledger": lambda: create_ledger(LedgerSettings(database_url="sqlite:///unused.sqlite3")),
    "notifier": lambda: create_notifier(NotifierSettings(database_url="sqlite:///unused.sqlite3")),
}


@pytest.mark.parametrize("service", sorted(APPS))
def test_operation_ids_are_explicit_and_unique(service: str) -> None:
    document = APPS[service]().openapi()
    operations = [op for path in document["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    # FastAPI's generated ids contain the path and method; ours are short camelCase names.
    assert all("_" not in i for i in ids), ids
    assert all(op.get("description") or op.get("summary") for op in operations)


def test_ledger_documents_its_problem_responses() -> None:
    document = APPS["ledger"]().openapi()
    pay = document["paths"]["/contracts/{contract_id}/payments"]["post"]
    assert {"409", "422"} <= set(pay["responses"])
    assert "application/problem+json" in pay["responses"]["409"]["content"]
