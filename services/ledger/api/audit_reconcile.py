"""`GET /audit/reconcile`: the whole ledger replayed, every invariant checked, for overseers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from proto.reconciliation import Reconciliation, Violation
from services.common.auth import Authenticated, CurrentActor
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import Ledger
from services.ledger.api.large_reads import slot_for, with_busy_answer
from services.ledger.audit.checkpoints import Checkpointer
from services.ledger.audit.flow_check import flow_model_check
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.reconcile import (
    OuterCheck,
    event_ref,
    feed_pages,
    reconcile_ledger,
)

router = APIRouter(dependencies=[Authenticated], tags=["audit"], responses=PROBLEM_RESPONSES)


def merkle_check(request: Request, ledger: Ledger) -> OuterCheck | None:
    """The check of the stored log against its signed checkpoints (the verification's)."""
    checkpointer: Checkpointer | None = getattr(request.app.state, "checkpointer", None)
    if checkpointer is None:
        return None  # the answer then says the check did not run, rather than that it passed

    def check(checked_through: int) -> Sequence[Violation]:
        # The verification covers every position the log vouches for, up to the head it reads.
        failure = checkpointer.verify().failure
        if failure is None:
            return []
        # The event now stored at the failing position, if any is: the one to look at.
        found = feed_pages(ledger)(failure.position - 1, 1) if failure.position else []
        events = [event_ref(item) for item in found if event_ref(item).position == failure.position]
        return [
            Violation(rule=f"checkpoint-{failure.reason}", message=failure.detail, events=events)
        ]

    return check


def flow_check(request: Request, ledger: Ledger, caller: CurrentActor) -> OuterCheck | None:
    """The check of the funding-flow read model against a replay of each budget."""
    model: FlowModel | None = getattr(request.app.state, "flow_model", None)
    return None if model is None else flow_model_check(ledger, model, by=caller)


@router.get(
    "/audit/reconcile",
    operation_id="reconcileLedger",
    dependencies=[Depends(slot_for("a reconciliation of the ledger"))],
    responses=with_busy_answer(PROBLEM_RESPONSES),
)
def reconcile(
    ledger: Ledger,
    caller: CurrentActor,
    merkle: Annotated[OuterCheck | None, Depends(merkle_check)],
    flows: Annotated[OuterCheck | None, Depends(flow_check)],
) -> Reconciliation:
    """Replay the whole feed and report every broken invariant with the events involved."""
    return reconcile_ledger(ledger, by=caller, merkle=merkle, flow_model=flows)
