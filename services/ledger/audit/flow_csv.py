"""A budget's funding flow as CSV for spreadsheets: one row per node, root first, depth first.

Every row carries the ids of its ancestors, so a sheet can be filtered or pivoted by allocation
or contract without the tree; and the position and as_of the answer reflects, so a saved file
still says which state of the ledger it shows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.ledger.audit.flow_tree import LEVELS, Branch, FlowAnswer
from services.ledger.store.tables import FLOW_FIGURES

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


def _rows(branch: Branch, ancestors: dict[str, str]) -> Iterator[dict[str, str]]:
    level = LEVELS[branch.kind]
    ids = {**ancestors, _ID_COLUMN[level]: branch.id}
    details = branch.node.details
    row = {
        **ids,
        "level": str(level),
        "kind": branch.kind,
        "reference": _text(details.get("reference")),
        "title": _text(details.get("title")),
        "state": branch.node.state or "",
        "occurred_at": details.get("occurred_at") or "",
        "holder_id": details.get("holder_id") or "",
        "street_office_id": details.get("street_office_id") or "",
        "implementer_id": details.get("implementer_id") or "",
        "provider_id": details.get("provider_id") or "",
        "item_ids": " ".join(details.get("item_ids", ())),
    }
    for figure, amount in branch.amounts().items():
        row[figure] = amount or ""
    # Payment and tranche ids are treasury references: free text, like any other.
    row["entry_id"] = _text(row.get("entry_id"))
    yield row
    for child in branch.children:
        yield from _rows(child, ids)


def flow_csv(flow: FlowAnswer) -> str:
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
