"""proto/ defines once what crosses a boundary; its JSON Schema files match the models."""

from __future__ import annotations

import pytest
from eventsourcing.domain import Aggregate

from proto.generate import SCHEMA_DIR, schemas
from proto.ledger_events import EVENT_PAYLOADS
from services.ledger.domain.budget import Budget
from services.ledger.domain.contract import Contract
from services.ledger.domain.grant import Grant
from services.ledger.domain.procurement import PurchaseProject
from services.ledger.feed import EVENT_TYPES


@pytest.mark.parametrize("name", sorted(schemas()))
def test_schema_files_match_the_models(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{name} is missing: run `make schemas`"
    assert path.read_text(encoding="utf-8") == schemas()[name], (
        f"proto/schema/{name} drifted from the models: run `make schemas`"
    )


def test_no_stale_schema_files() -> None:
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == set(schemas())


def domain_event_names(aggregate: type[Aggregate]) -> set[str]:
    # The library adds a generic Event and Created to every aggregate; ours are the rest.
    return {
        value.__qualname__
        for name, value in vars(aggregate).items()
        if isinstance(value, type) and name not in {"Event", "Created"}
    }


def test_every_domain_event_has_a_wire_type_and_payload() -> None:
    aggregates = (Budget, Contract, Grant, PurchaseProject)
    assert set().union(*(domain_event_names(a) for a in aggregates)) == set(EVENT_TYPES)
    assert set(EVENT_TYPES.values()) == set(EVENT_PAYLOADS)
