"""Reconciliation: the whole ledger replayed from its feed, and every invariant checked again.

Independent of the write path on purpose: it reads the feed's wire form (proto/), keeps its own
totals in integer fen and never asks the aggregates, so a bug in the domain code, or a row edited
behind the application's back, shows up here instead of being repeated. The feed is read in
pages; what stays in memory is a few totals per stream (and, per contract, the date, amounts and
position of each acceptance and payment, which the business-time check needs), never the events:
the replay and its checks are services/ledger/audit/reconcile_replay.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from proto.actor import Actor
from proto.reconciliation import (
    CheckRun,
    EventRef,
    Reconciliation,
    ReconciliationProgress,
    Violation,
)
from services.common.collector import collector_paused
from services.common.permissions import require_role
from services.ledger.application.access import OVERSEERS
from services.ledger.application.base import LedgerBase
from services.ledger.audit.reconcile_replay import (
    CHECKS,
    Item,
    Replay,
    UnreadableEvent,
    position_of,
)
from services.ledger.feed import EVENT_TYPES, STREAM_TYPES, feed_entry
from services.ledger.store.reads import FeedRow

PAGE_SIZE = 500
MERKLE = "merkle-root-differs-from-checkpoint"
MERKLE_INVARIANT = "The Merkle root of the feed equals the root of the latest checkpoint"
FLOW_MODEL = "flow-read-model-differs-from-replay"
FLOW_MODEL_INVARIANT = "The funding-flow read model gives each budget the flow its events replay to"

RECONCILING = "reconcile the whole ledger"
Progress = Callable[[ReconciliationProgress], None]
"""Told how far a reconciliation has gone: as it starts, after each page it replays, and as
the checks beside the feed begin. It may raise to stop the reconciliation there."""
OuterCheck = Callable[[int], Sequence[Violation]]
"""A check of what lies beside the feed (a read model): given the position the replay ran
through, the violations it finds; CheckNotRun if it could not look."""


class CheckNotRun(Exception):
    """A check beside the feed could not run (a read model that cannot follow the feed, say):
    the answer says it did not run, rather than that it passed."""


class FeedCheck(Protocol):
    """A check handed each feed item as the replay reads it (the Merkle log's), so that the
    feed is read and decoded once for both."""

    def see(self, item: Item) -> None:
        """The next item, in position order."""

    def violations(self, head: int) -> Sequence[Violation]:
        """Once the replay ran through `head`: what the check found."""


PageReader = Callable[[int, int], Sequence[Item]]
"""Feed items after a position (first argument), at most a number of them (second)."""


def _unreadable(row: FeedRow, error: Exception) -> UnreadableEvent:
    qualname = row.event.topic.partition(":")[2]
    kind = qualname.partition(".")[0]
    ref = EventRef(
        position=row.position,
        stream_id=row.event.originator_id,
        stream_type=STREAM_TYPES.get(kind, kind.lower()),
        stream_version=row.event.originator_version,
        event_type=EVENT_TYPES.get(qualname, row.event.topic),
    )
    name = type(error).__name__
    return UnreadableEvent(ref, f"{name}: {error}"[:500], name)


def feed_pages(ledger: LedgerBase) -> PageReader:
    """Pages of the ledger's feed in wire form; an event that cannot be read comes back as such."""

    def read(after: int, limit: int) -> list[Item]:
        items: list[Item] = []
        for row in ledger.reads.feed(after, limit):
            try:
                items.append(feed_entry(row, ledger.mapper.to_domain_event(row.event)))
            # Broad on purpose: an edited row can hold anything, and the auditor needs the
            # event named in the report, not the whole replay failing with a 500.
            except Exception as error:
                items.append(_unreadable(row, error))
        return items

    return read


def _replay_page(
    replay: Replay,
    read_page: PageReader,
    after: int,
    page_size: int,
    head: int,
    merkle: FeedCheck | None,
) -> int | None:
    """Replay the page after a position; the last position it held, None if it held none."""
    # Events recorded after `head` was read belong to the next run, not half to this one.
    page = [item for item in read_page(after, page_size) if position_of(item) <= head]
    for item in page:
        replay.see(item)
        if merkle is not None:
            merkle.see(item)
    return position_of(page[-1]) if page else None


def reconcile(
    read_page: PageReader,
    *,
    head: int,
    merkle: FeedCheck | None = None,
    flow_model: OuterCheck | None = None,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
) -> Reconciliation:
    """Replay the feed from position 1 through `head`, page by page, checking every invariant.

    The checks of what lies beside the feed (the Merkle log, the read model) run when given,
    and the answer says which did not. `progress` is told how far it has gone.
    """
    if page_size < 1:
        raise ValueError(f"page size must be at least 1, got {page_size}")

    def tell(stage: Literal["replaying", "checking"], through: int) -> None:
        if progress is not None:
            progress(ReconciliationProgress(stage=stage, replayed_through=through, head=head))

    replay = Replay()
    after = 0
    tell("replaying", after)
    while after < head:
        with collector_paused():
            reached = _replay_page(replay, read_page, after, page_size, head, merkle)
        if reached is None:
            break
        after = reached
        tell("replaying", after)
    tell("checking", after)
    replay.finish(head)
    checked, violations = replay.count, replay.violations
    # The replay's state grows with the ledger (every contract's dated records); the checks
    # beside the feed hold their own, so it goes before they run rather than beside them.
    del replay
    found = Counter(v.rule for v in violations)
    checks = [
        CheckRun(rule=rule, invariant=invariant, ran=True, violations=found[rule])
        for rule, invariant in CHECKS.items()
    ]
    for rule, invariant, outer in (
        (MERKLE, MERKLE_INVARIANT, None if merkle is None else merkle.violations),
        (FLOW_MODEL, FLOW_MODEL_INVARIANT, flow_model),
    ):
        outer_found: list[Violation] = []
        ran = outer is not None
        if outer is not None:
            try:
                outer_found = list(outer(head))
            except CheckNotRun:
                ran = False
        checks.append(
            CheckRun(rule=rule, invariant=invariant, ran=ran, violations=len(outer_found))
        )
        violations += outer_found
    return Reconciliation(
        checked_through=head,
        events_checked=checked,
        checks=checks,
        violations=violations,
    )


def reconcile_ledger(
    ledger: LedgerBase,
    *,
    by: Actor,
    merkle: FeedCheck | None = None,
    flow_model: OuterCheck | None = None,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
) -> Reconciliation:
    """Reconcile the whole ledger as it stands; for overseers only (403 for anyone else)."""
    require_role(by, OVERSEERS, RECONCILING)
    return reconcile(
        feed_pages(ledger),
        head=ledger.reads.head(),
        merkle=merkle,
        flow_model=flow_model,
        page_size=page_size,
        progress=progress,
    )
