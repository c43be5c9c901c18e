"""A budget's funding flow as CSV for spreadsheets: one row per node, root first, depth first.

Every row carries the ids of its ancestors, so a sheet can be filtered or pivoted by allocation
or contract without the tree; and the position and as_of the answer reflects, so a saved file
still says which state of the ledger it shows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from proto.audit import BudgetFlow, FlowNode
from services.ledger.store.recorders import FLOW_FIGURES

# The wire's figures: each node's own, and by how much a remaining fell below zero.
FIGURES = (*FLOW_FIGURES, "overdrawn")
COLUMNS = (
    "position",
    "as_of",
    "level",
    "kind",
    "budget_id",
    "allocation_id",
    "commitment_id",
    "entry_id",
    "reference",
    "title",
    "state",
    "occurred_at",
    "holder_id",
    "street_office_id",
    "implementer_id",
    "provider_id",
    "item_ids",
    *FIGURES,
)
# Which id column holds a node's own id; its ancestors fill the columns to the left.
_ID_COLUMN = {0: "budget_id", 1: "allocation_id", 2: "commitment_id", 3: "entry_id"}
# A spreadsheet runs a cell starting with these as a formula (CSV injection, per OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str | None) -> str:
    """Free text as a cell a spreadsheet shows but never evaluates."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _rows(node: FlowNode, ancestors: dict[str, str]) -> Iterator[dict[str, str]]:
    ids = {**ancestors, _ID_COLUMN[node.level]: node.id}
    row = {
        **ids,
        "level": str(node.level),
        "kind": node.kind,
        "reference": _text(node.reference),
        "title": _text(node.title),
        "state": node.state or "",
        "occurred_at": node.occurred_at.isoformat() if node.occurred_at else "",
        "holder_id": str(node.holder_id or ""),
        "street_office_id": str(node.street_office_id or ""),
        "implementer_id": str(node.implementer_id or ""),
        "provider_id": str(node.provider_id or ""),
        "item_ids": " ".join(str(i) for i in node.item_ids),
    }
    for figure in FIGURES:
        money = getattr(node, figure)
        row[figure] = money.amount if money is not None else ""
    # Payment and tranche ids are treasury references: free text, like any other.
    row["entry_id"] = _text(row.get("entry_id"))
    yield row
    for child in node.children:
        yield from _rows(child, ids)


def flow_csv(flow: BudgetFlow) -> str:
    """The flow as RFC 4180 CSV with a header row; figures as decimal strings, blanks for null."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, restval="", lineterminator="\r\n")
    writer.writeheader()
    context = {
        "position": str(flow.position),
        "as_of": flow.as_of.isoformat() if flow.as_of else "",
    }
    for row in _rows(flow.budget, {}):
        writer.writerow({**context, **row})
    return buffer.getvalue()
