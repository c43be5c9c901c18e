"""Writes the JSON Schema of every wire model into proto/schema/ (`make schemas`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from proto.audit import BudgetFlow
from proto.catalog import CATALOG_EVENT_PAYLOADS, CommunityGuide
from proto.feed import FeedEntry, FeedPage
from proto.ledger_events import EVENT_PAYLOADS
from proto.money import Money
from proto.problem import Problem
from proto.reconciliation import Reconciliation, ReconciliationLine

SCHEMA_DIR = Path(__file__).parent / "schema"
_BASE = "urn:community-ledger:schema:"


def _schema(model: type[BaseModel], name: str, title: str | None = None) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _BASE + name,
        **schema,
        **({"title": title} if title else {}),
    }


def schemas() -> dict[str, str]:
    """File name under proto/schema/ to its exact text."""
    models: dict[str, dict[str, Any]] = {
        "money.json": _schema(Money, "money"),
        "problem.json": _schema(Problem, "problem"),
        "feed-entry.json": _schema(FeedEntry, "feed-entry"),
        "feed-page.json": _schema(FeedPage, "feed-page"),
    }
    models["catalog-guide.json"] = _schema(CommunityGuide, "catalog-guide")
    models["audit-budget-flow.json"] = _schema(BudgetFlow, "audit-budget-flow")
    models["reconciliation.json"] = _schema(Reconciliation, "reconciliation")
    models["reconciliation-line.json"] = _schema(ReconciliationLine, "reconciliation-line")
    for feed, payloads in (("ledger", EVENT_PAYLOADS), ("catalog", CATALOG_EVENT_PAYLOADS)):
        for event_type, payload in payloads.items():
            models[f"{feed}-event.{event_type}.json"] = _schema(
                payload, f"{feed}-event:{event_type}", title=f"Payload of {event_type}"
            )
    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in models.items()
    }


def main() -> None:
    """Rewrite proto/schema/ from the models, removing files no model produces any more."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    wanted = schemas()
    for stale in {p.name for p in SCHEMA_DIR.glob("*.json")} - set(wanted):
        (SCHEMA_DIR / stale).unlink()
    for name, text in wanted.items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} schemas to {SCHEMA_DIR.name}/")


if __name__ == "__main__":
    main()
