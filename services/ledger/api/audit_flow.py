"""The auditor's funding-flow view of a budget, as JSON and as CSV, with as-of replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from proto.audit import BudgetFlow
from services.common.auth import Authenticated, CurrentActor
from services.common.problems import PROBLEM_JSON, PROBLEM_RESPONSES
from services.ledger.api.deps import AsOf, KnownAt, Ledger
from services.ledger.api.large_reads import large_reads, with_busy_answer
from services.ledger.audit.flow import FlowDepth, FlowSource, budget_flow
from services.ledger.audit.flow_csv import flow_csv
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.flow_tree import FlowAnswer

CSV = "text/csv"

# Problems are documented per route: on a CSV route FastAPI would list them as text/csv too.
router = APIRouter(dependencies=[Authenticated], prefix="/audit", tags=["audit"])


class CsvResponse(Response):
    """A CSV document; Starlette appends `; charset=utf-8`."""

    media_type = CSV


# The same problems, by reference to the Problem schema the JSON routes put in the document,
# so that FastAPI does not also attach their model to the route's own media type, text/csv.
_CSV_RESPONSES: dict[int | str, dict[str, object]] = {
    **{
        status: {
            **{key: value for key, value in response.items() if key != "model"},
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, response in with_busy_answer(PROBLEM_RESPONSES).items()
    },
    200: {
        "description": "One row per node of the tree, root first, depth first, with a header "
        "row; figures as decimal strings, empty where a figure does not apply",
        "content": {CSV: {"schema": {"type": "string"}}},
        "headers": {
            "Content-Disposition": {
                "description": "attachment, named after the budget and the feed position",
                "schema": {"type": "string"},
            }
        },
    },
}


Source = Annotated[
    FlowSource,
    Query(
        description="read-model (default): from the flow read model kept from the feed; "
        "replay: from the budget's own events and those of its contracts and grants, replayed "
        "for this answer, for an auditor who trusts nothing else (slower)"
    ),
]


Depth = Annotated[
    FlowDepth,
    Query(
        description="all (default): down to each delivery, payment and tranche; contracts: "
        "down to contracts and grants, whose own figures sum what lies below them (an answer "
        "that stays small however many deliveries a budget has)"
    ),
]


async def read_flow(
    request: Request,
    budget_id: UUID,
    ledger: Ledger,
    caller: CurrentActor,
    known_at: KnownAt,
    as_of: AsOf = None,
    source: Source = "read-model",
    depth: Depth = "all",
) -> AsyncIterator[FlowAnswer]:
    """The flow both routes answer with, from the source asked for, to the depth asked for.

    A whole or replayed flow holds a large-read slot until its answer is written.
    """
    model: FlowModel | None = request.app.state.flow_model if source == "read-model" else None

    def read() -> FlowAnswer:
        return budget_flow(
            ledger, budget_id, by=caller, as_of=as_of, known_at=known_at, model=model, depth=depth
        )

    if model is not None and depth == "contracts":
        yield await run_in_threadpool(read)
        return
    async with large_reads(request).slot("a budget's whole flow"):
        yield await run_in_threadpool(read)


Flow = Annotated[FlowAnswer, Depends(read_flow)]


# The answer is written from the tree, not validated model by model: a whole flow has tens of
# thousands of nodes. Its bytes are the model's own (tests/unit/test_flow_tree.py).
@router.get(
    "/budgets/{budget_id}/flow",
    operation_id="getBudgetFlow",
    response_model=BudgetFlow,
    responses=with_busy_answer(PROBLEM_RESPONSES),
)
def get_budget_flow(flow: Flow) -> Response:
    """Trace a budget's money to allocations, contracts, grants, deliveries and payments."""
    return Response(flow.json(), media_type="application/json")


@router.get(
    "/budgets/{budget_id}/flow.csv",
    operation_id="exportBudgetFlowCsv",
    response_class=CsvResponse,
    responses=_CSV_RESPONSES,
)
def export_budget_flow_csv(flow: Flow) -> CsvResponse:
    """Export a budget's funding flow as CSV for spreadsheets, one row per node."""
    name = f"budget-{flow.budget_id}-flow-at-{flow.position}.csv"
    return CsvResponse(
        flow_csv(flow), headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
