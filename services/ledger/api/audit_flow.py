"""The auditor's funding-flow view of a budget, as JSON and as CSV, with as-of replay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from proto.actor import Actor
from proto.audit import BudgetFlow
from services.common.auth import Authenticated, CurrentActor
from services.common.problems import PROBLEM_JSON, PROBLEM_RESPONSES
from services.ledger.api.deps import AsOf, KnownAt, Ledger
from services.ledger.api.large_reads import large_reads, with_busy_answer
from services.ledger.application import LedgerApplication
from services.ledger.audit.flow import (
    FlowDepth,
    FlowSource,
    budget_flow,
    built_flow,
    flow_terms,
    kept_flow,
)
from services.ledger.audit.flow_answers import KeptAnswers, entity_tag
from services.ledger.audit.flow_csv import flow_csv
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.flow_tree import FlowAnswer, Written

CSV = "text/csv"
T = TypeVar("T")

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


@dataclass(frozen=True)
class FlowAsked:
    """What a caller asked of a budget's flow."""

    budget_id: UUID
    caller: Actor
    known_at: int | datetime | None
    as_of: datetime | None
    source: FlowSource
    depth: FlowDepth

    @property
    def large(self) -> bool:
        """Whether building it takes a large-read slot: a whole flow, or any replayed one."""
        return self.source == "replay" or self.depth == "all"

    def built(self, ledger: LedgerApplication, model: FlowModel | None) -> FlowAnswer:
        """The flow asked for, from `model`, or replayed if there is none."""
        return budget_flow(
            ledger,
            self.budget_id,
            by=self.caller,
            as_of=self.as_of,
            known_at=self.known_at,
            model=model,
            depth=self.depth,
        )


async def flow_asked(
    budget_id: UUID,
    caller: CurrentActor,
    known_at: KnownAt,
    as_of: AsOf = None,
    source: Source = "read-model",
    depth: Depth = "all",
) -> FlowAsked:
    """The terms both routes answer on."""
    return FlowAsked(budget_id, caller, known_at, as_of, source, depth)


Asked = Annotated[FlowAsked, Depends(flow_asked)]


async def _built(request: Request, asked: FlowAsked, build: Callable[[], T]) -> T:
    """`build()` on a worker thread, holding a large-read slot if the flow asked is large."""
    if not asked.large:
        return await run_in_threadpool(build)
    async with large_reads(request).slot("a budget's whole flow"):
        return await run_in_threadpool(build)


def _sent_in_pieces(pieces: Written, headers: dict[str, str]) -> StreamingResponse:
    """An answer written in pieces, sent one after another rather than copied into one."""

    async def each() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    length = str(sum(map(len, pieces)))
    return StreamingResponse(
        each(), media_type="application/json", headers={**headers, "Content-Length": length}
    )


def _fresh(cache_control: str | None) -> bool:
    return "no-cache" in (part.strip().lower() for part in (cache_control or "").split(","))


def _still_holds(if_none_match: str | None, tag: str) -> bool:
    # RFC 9110's weak comparison: `W/` aside, the opaque tags are equal; `*` names any.
    opaque = tag.removeprefix("W/")
    named = (part.strip() for part in (if_none_match or "").split(","))
    return any(part == "*" or part.removeprefix("W/") == opaque for part in named)


IfNoneMatch = Annotated[
    str | None,
    Header(
        description="The `ETag` of an answer the caller kept: answered 304, with no body, while "
        "that answer still holds (the budget unchanged, whatever the feed's position)"
    ),
]
CacheControl = Annotated[
    str | None,
    Header(
        description="`no-cache`: build the answer afresh from the read model, rather than "
        "answer with one kept from an earlier read while the budget is unchanged"
    ),
]


_ETAG = {
    "description": "A weak entity tag of the answer, the same for every answer on the same "
    "terms while the budget is unchanged (read-model answers only)",
    "schema": {"type": "string"},
}


# The answer is written from the tree, not validated model by model: a whole flow has tens of
# thousands of nodes. Its bytes are the model's own (tests/unit/test_flow_tree.py).
@router.get(
    "/budgets/{budget_id}/flow",
    operation_id="getBudgetFlow",
    response_model=BudgetFlow,
    responses={
        **with_busy_answer(PROBLEM_RESPONSES),
        200: {"headers": {"ETag": _ETAG}},
        304: {
            "description": "The answer named in `If-None-Match` still holds; only the position "
            "it reflects would differ",
            "headers": {"ETag": _ETAG},
        },
    },
)
async def get_budget_flow(
    request: Request,
    asked: Asked,
    ledger: Ledger,
    cache_control: CacheControl = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Trace a budget's money to allocations, contracts, grants, deliveries and payments."""
    if asked.source == "replay":
        flow = await _built(request, asked, partial(asked.built, ledger, None))
        return Response(flow.json(), media_type="application/json")
    model: FlowModel = request.app.state.flow_model
    kept: KeptAnswers | None = request.app.state.flow_answers
    terms = await run_in_threadpool(
        partial(
            flow_terms,
            ledger,
            model,
            asked.budget_id,
            by=asked.caller,
            as_of=asked.as_of,
            known_at=asked.known_at,
            depth=asked.depth,
        )
    )
    tag = None if terms.key is None else entity_tag(terms.key)
    headers = None if tag is None else {"ETag": tag}
    if tag is not None and _still_holds(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    fresh = _fresh(cache_control)
    written = None if kept is None or fresh else kept_flow(terms, kept)
    if written is None:
        written = await _built(
            request, asked, partial(built_flow, ledger, model, terms, kept, fresh=fresh)
        )
    return _sent_in_pieces(written, headers or {})


@router.get(
    "/budgets/{budget_id}/flow.csv",
    operation_id="exportBudgetFlowCsv",
    response_class=CsvResponse,
    responses=_CSV_RESPONSES,
)
async def export_budget_flow_csv(request: Request, asked: Asked, ledger: Ledger) -> CsvResponse:
    """Export a budget's funding flow as CSV for spreadsheets, one row per node."""
    model: FlowModel | None = request.app.state.flow_model if asked.source == "read-model" else None

    def export() -> tuple[str, str]:
        flow = asked.built(ledger, model)
        return f"budget-{flow.budget_id}-flow-at-{flow.position}.csv", flow_csv(flow)

    name, text = await _built(request, asked, export)
    return CsvResponse(text, headers={"Content-Disposition": f'attachment; filename="{name}"'})
