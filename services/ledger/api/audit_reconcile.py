"""`GET /audit/reconcile`: the whole ledger replayed, every invariant checked, for overseers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from proto.reconciliation import Reconciliation, Violation
from services.common.auth import Authenticated, CurrentActor
from services.common.permissions import require_role
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import Ledger
from services.ledger.api.large_reads import slot_for, with_busy_answer
from services.ledger.api.progress_lines import NDJSON, Report, progress_lines, wants_lines
from services.ledger.application import LedgerApplication
from services.ledger.application.access import OVERSEERS
from services.ledger.audit.checkpoints import Checkpointer
from services.ledger.audit.flow_check import flow_model_check
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.reconcile import (
    RECONCILING,
    FeedCheck,
    OuterCheck,
    feed_pages,
    reconcile_ledger,
)
from services.ledger.audit.reconcile_replay import Item, UnreadableEvent, event_ref
from services.ledger.audit.verification import LogCheck

router = APIRouter(dependencies=[Authenticated], tags=["audit"], responses=PROBLEM_RESPONSES)


class _LogBeside:
    """The verification of the log, handed the entries reconciliation's replay decodes."""

    def __init__(self, ledger: LedgerApplication, checkpointer: Checkpointer) -> None:
        self._ledger = ledger
        self._checkpointer = checkpointer
        self._pass: LogCheck | None = None  # begun with the replay, not before its turn

    def _started(self) -> LogCheck:
        if self._pass is None:
            self._pass = self._checkpointer.log_check()
        return self._pass

    def see(self, item: Item) -> None:
        """The replay's next item, to hash and hold to its leaf."""
        if isinstance(item, UnreadableEvent):
            self._started().see(item.ref.position, item.error)
        else:
            self._started().see(item.position, item)

    def violations(self, head: int) -> Sequence[Violation]:
        """The first failure, with the event now stored where it is, if any."""
        # The pass covers every position the log vouches for, also any past `head`.
        failure = self._started().finish().failure
        if failure is None:
            return []
        found = feed_pages(self._ledger)(failure.position - 1, 1) if failure.position else []
        events = [event_ref(item) for item in found if event_ref(item).position == failure.position]
        return [
            Violation(rule=f"checkpoint-{failure.reason}", message=failure.detail, events=events)
        ]


def merkle_check(request: Request, ledger: Ledger) -> FeedCheck | None:
    """The check of the stored log against its signed checkpoints (the verification's)."""
    checkpointer: Checkpointer | None = getattr(request.app.state, "checkpointer", None)
    if checkpointer is None:
        return None  # the answer then says the check did not run, rather than that it passed
    return _LogBeside(ledger, checkpointer)


def flow_check(request: Request, ledger: Ledger, caller: CurrentActor) -> OuterCheck | None:
    """The check of the funding-flow read model against a replay of each budget."""
    model: FlowModel | None = getattr(request.app.state, "flow_model", None)
    return None if model is None else flow_model_check(ledger, model, by=caller)


_LINES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The reconciliation; or, asked for as `application/x-ndjson`, its "
        "progress about every second while it runs, then its answer, one JSON object a line",
        "content": {
            NDJSON: {"schema": {"$ref": "#/components/schemas/ReconciliationLine"}},
        },
    }
}


@router.get(
    "/audit/reconcile",
    operation_id="reconcileLedger",
    dependencies=[Depends(slot_for("a reconciliation of the ledger"))],
    response_model=Reconciliation,
    responses={**with_busy_answer(PROBLEM_RESPONSES), **_LINES},
)
def reconcile(
    request: Request,
    ledger: Ledger,
    caller: CurrentActor,
    merkle: Annotated[FeedCheck | None, Depends(merkle_check)],
    flows: Annotated[OuterCheck | None, Depends(flow_check)],
) -> Any:
    """Replay the whole feed and report every broken invariant with the events involved."""
    if not wants_lines(request.headers.get("accept")):
        return reconcile_ledger(ledger, by=caller, merkle=merkle, flow_model=flows)
    # Refused before the stream starts, so that the refusal is the answer's status.
    require_role(caller, OVERSEERS, RECONCILING)

    def work(report: Report) -> Reconciliation:
        return reconcile_ledger(ledger, by=caller, merkle=merkle, flow_model=flows, progress=report)

    lines = progress_lines(
        work, answer="reconciliation", what="The reconciliation", instance=request.url.path
    )
    return StreamingResponse(lines, media_type=NDJSON)
