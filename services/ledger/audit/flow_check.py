"""Reconciliation's check of the funding-flow read model: every budget's flow, kept and replayed.

The read model is derived data an operator could edit, or a bug could skew; the events are what
the Merkle log vouches for. So each budget's flow is built both ways at the same feed position
and must come out the same, node for node.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from uuid import UUID

from proto.actor import Actor
from proto.reconciliation import EventRef, Violation
from services.common.collector import collector_paused
from services.ledger.application import LedgerApplication
from services.ledger.audit.flow import replayed_streams
from services.ledger.audit.flow_model import FlowModel
from services.ledger.audit.flow_nodes import DEEP_KINDS, SHALLOW_KINDS, NodeState, node_key
from services.ledger.audit.flow_tree import Branch, grow, lone
from services.ledger.audit.reconcile import FLOW_MODEL, CheckNotRun, feed_pages
from services.ledger.audit.reconcile_replay import event_ref

_PAGE = 1000
logger = logging.getLogger("services.ledger.audit")


def _budget_ids(ledger: LedgerApplication) -> Iterator[UUID]:
    after = 0
    while True:
        page = ledger.reads.streams("budget", {}, after, _PAGE)
        if not page:
            return
        yield from (stream_id for _, stream_id in page)
        after = page[-1][0]


def _difference(replayed: Iterable[Branch], kept: Iterable[Branch]) -> tuple[str, str] | None:
    """(id of the first node that differs, what differs), in the replayed nodes' order; None if
    none does."""
    kept_nodes = {(b.kind, b.id): b for b in kept}
    for branch in replayed:
        other = kept_nodes.pop((branch.kind, branch.id), None)
        if other is None:
            return branch.id, f"the read model lacks {branch.kind} {branch.id}"
        mine, theirs = branch.fields(), other.fields()
        changed = sorted(name for name in mine if mine[name] != theirs[name])
        if branch.node.parent != other.node.parent:
            changed.append("what it hangs from")
        if changed:
            return branch.id, f"{branch.kind} {branch.id} differs in {', '.join(changed)}"
    for kind, node_id in kept_nodes:
        return node_id, f"the read model has a {kind} {node_id} the events do not"
    return None


def _below_holders(nodes: Mapping[str, NodeState]) -> Iterator[Branch]:
    """The nodes below a contract or grant, each alone: their figures are their own."""
    return (lone(node) for node in nodes.values() if node.kind in DEEP_KINDS)


def flow_model_check(
    ledger: LedgerApplication, model: FlowModel, *, by: Actor
) -> Callable[[int], Sequence[Violation]]:
    """The check, for a reconciliation that ran through a feed position."""

    def check(head: int) -> list[Violation]:
        try:
            model.catch_up(head)
        # Broad on purpose, as for a replay below: events that no longer read (edited or
        # deleted, say) are the other checks' findings, named there with the events.
        except Exception as error:
            logger.warning("the read model cannot follow the feed (%r); flows not checked", error)
            raise CheckNotRun(f"the read model cannot follow the feed: {error!r}") from error
        found = (
            _check_budget(ledger, model, budget_id, by, head) for budget_id in _budget_ids(ledger)
        )
        return [violation for violation in found if violation is not None]

    return check


def _check_budget(
    ledger: LedgerApplication, model: FlowModel, budget_id: UUID, by: Actor, head: int
) -> Violation | None:
    """One budget's flow both ways, or the violation naming where they part.

    A contract or grant at a time below the holders, then whether the model keeps such nodes
    under any other stream, then the tree down to the holders: what is held at once is one
    stream's nodes, however many lie behind the budget.
    """
    shallow: dict[str, NodeState] = {}
    compared: set[str] = set()
    streams = replayed_streams(ledger, budget_id, by=by, as_of=None, position=head)
    while True:
        try:
            with collector_paused():  # one stream's replay: a tree of objects, not cycles
                stream_id, own = next(streams)
        except StopIteration:
            break
        except Exception as error:
            # Events that no longer replay (edited, say) are the other checks' findings, named
            # there with the events; there is then no flow to hold the model to.
            logger.warning("budget %s no longer replays (%r); flow not checked", budget_id, error)
            return None
        shallow.update((key, node) for key, node in own.items() if node.kind in SHALLOW_KINDS)
        if stream_id == budget_id:
            continue
        compared.add(str(stream_id))
        with collector_paused():
            kept = model.stream_nodes(
                budget_id, [stream_id], position=head, as_of=None, kinds=DEEP_KINDS
            )[stream_id]
            difference = _difference(_below_holders(own), _below_holders(kept))
        if difference is not None:
            return _violation(ledger, budget_id, head, *difference)
    # Nodes the model keeps under a stream that holds nothing of the budget: no holder's
    # comparison above looks at them, yet a whole flow read from the model shows them.
    strays = [s for s in model.rows.streams(budget_id, head, DEEP_KINDS) if s not in compared]
    if strays:
        first = model.rows.records(budget_id, head, None, DEEP_KINDS, strays[:1])[0]
        what = f"the read model has a {first.kind} {first.node_key} the events do not"
        return _violation(ledger, budget_id, head, first.node_key, what)
    root = node_key(budget_id, "budget", budget_id)
    with collector_paused():
        replayed = grow(shallow, root)
        kept_tree = grow(
            model.nodes(budget_id, position=head, as_of=None, kinds=SHALLOW_KINDS), root
        )
        difference = _difference(replayed.walk(), kept_tree.walk())
    return None if difference is None else _violation(ledger, budget_id, head, *difference)


def _violation(
    ledger: LedgerApplication, budget_id: UUID, head: int, node_id: str, what: str
) -> Violation:
    message = (
        f"budget {budget_id}: {what} at position {head}; rebuild the read model "
        "(python -m services.ledger rebuild-read-models) and reconcile again"
    )
    return Violation(rule=FLOW_MODEL, message=message, events=_latest(ledger, node_id, head))


def _latest(ledger: LedgerApplication, node_id: str, head: int) -> list[EventRef]:
    """The last event, at or before `head`, of the stream a differing node belongs to."""
    try:
        stream_id = UUID(node_id)
    except ValueError:
        return []  # a payment or tranche, named by its treasury reference
    rows = [row for row in ledger.reads.stream(stream_id) if row.position <= head]
    if not rows:
        return []
    return [event_ref(item) for item in feed_pages(ledger)(rows[-1].position - 1, 1)]
