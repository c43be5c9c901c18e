"""The replay reconciliation runs: each budget's, allocation's, contract's and grant's running
totals in integer fen, fed one feed item at a time in position order, and the invariants they
are held to as they move (services/ledger/audit/reconcile.py reads the feed and reports)."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import NamedTuple
from uuid import UUID

from proto import ledger_events as ev
from proto.feed import FeedEntry
from proto.reconciliation import EventRef, Violation
from services.ledger.domain.money import format_fen

ALLOCATIONS = "allocations-exceed-appropriation"
COMMITMENTS = "commitments-exceed-allocation"
ACCEPTED = "accepted-exceeds-contract-value"
PAID = "paid-exceeds-accepted"
PAID_EARLY = "payment-before-acceptance"
DISBURSED = "disbursed-exceeds-grant"
HELD = "commitment-differs-from-holder"
VERSIONS = "stream-versions-not-contiguous"
DENSE = "feed-not-dense"
UNREADABLE = "event-unreadable"
# Every check the replay itself runs, by the rule its violations carry.
CHECKS: dict[str, str] = {
    ALLOCATIONS: "A budget's allocations never exceed its appropriation",
    COMMITMENTS: "What contracts and grants commit of an allocation never exceeds it",
    ACCEPTED: "What is accepted of a contract never exceeds its value",
    PAID: "What is paid on a contract never exceeds what is accepted",
    PAID_EARLY: "No payment is dated before the acceptances that cover it",
    DISBURSED: "What is disbursed of a grant never exceeds the grant",
    HELD: "Each budget commitment equals what its contract or grant holds, on the same allocation",
    VERSIONS: "Every stream's versions run 1, 2, 3, … without a gap",
    DENSE: "Feed positions run 1, 2, 3, … through the head without a hole",
    UNREADABLE: "Every stored event reads as a feed entry of its declared type",
}


@dataclass(frozen=True)
class UnreadableEvent:
    """A stored event that cannot be read as a feed entry, and why."""

    ref: EventRef
    reason: str
    error: str  # the name of the error that stopped it being read


Item = FeedEntry | UnreadableEvent


def event_ref(item: Item) -> EventRef:
    """How a violation names a feed item, readable or not."""
    if isinstance(item, UnreadableEvent):
        return item.ref
    return EventRef.model_validate(item, from_attributes=True)


def position_of(item: Item) -> int:
    """A feed item's position, readable or not."""
    return item.ref.position if isinstance(item, UnreadableEvent) else item.position


@dataclass
class Tally:
    """A running total in fen, and the event that last moved it."""

    fen: int = 0
    last: EventRef | None = None


@dataclass(frozen=True)
class _Commitment:
    """A budget's side of a commitment: what holds it, and where and when it was made."""

    kind: str
    budget_id: UUID
    allocation_id: UUID
    made: EventRef


class _Dated(NamedTuple):
    """An acceptance or payment of a contract: its business date, amounts, and where it is.

    A tuple rather than the event's EventRef: a contract can hold tens of thousands of them,
    and the reference is made again only for a violation that names one.
    """

    at: datetime
    accepted: int
    paid: int
    position: int
    version: int
    event_type: str

    def ref(self, contract: EventRef) -> EventRef:
        """The event, named as a violation names it, given another event of its contract."""
        update = {
            "position": self.position,
            "stream_version": self.version,
            "event_type": self.event_type,
        }
        return contract.model_copy(update=update)


_DATE = attrgetter("at")


@dataclass
class _Holder:
    """A contract's or grant's side of its commitment, and a contract's dated money."""

    kind: str
    opened: EventRef | None = None
    budget_id: UUID | None = None
    allocation_id: UUID | None = None
    # Kept in business-date order, so what is dated after a payment is the list's tail.
    timeline: list[_Dated] = field(default_factory=list)


class Replay:
    """The running state of one replay, fed one feed item at a time, in position order."""

    def __init__(self) -> None:
        self.count = 0
        self.next_position = 1
        self.previous: EventRef | None = None
        self.streams: dict[UUID, EventRef] = {}
        # Totals by subject (a budget, allocation, contract or grant) and name, e.g. "paid".
        self.tallies: defaultdict[tuple[UUID, str], Tally] = defaultdict(Tally)
        self.commitments: dict[UUID, _Commitment] = {}
        self.holders: dict[UUID, _Holder] = {}
        # Rules broken and not yet mended, so a breach is reported once, where it began.
        self.broken: set[tuple[str, UUID]] = set()
        self.violations: list[Violation] = []

    def move(self, subject: UUID, name: str, delta: int, ref: EventRef) -> None:
        """Move one tally, e.g. a contract's "paid", by `delta` fen, as of the event `ref`."""
        tally = self.tallies[subject, name]
        tally.fen, tally.last = tally.fen + delta, ref

    def report(self, rule: str, message: str, *refs: EventRef | None) -> None:
        """Record a violation with the events involved, each once, in feed order."""
        events = {ref.position: ref for ref in refs if ref is not None}
        self.violations.append(
            Violation(rule=rule, message=message, events=[events[p] for p in sorted(events)])
        )

    def exceeds(
        self, rule: str, subject: UUID, amount: str, limit: str, at: EventRef, where: str
    ) -> bool:
        """Whether the subject's `amount` tally exceeds its `limit`; reported where it begins."""
        key = (rule, subject)
        over, under = self.tallies[subject, amount], self.tallies[subject, limit]
        if over.fen <= under.fen:
            self.broken.discard(key)
            return False
        if key not in self.broken:
            self.broken.add(key)
            self.report(
                rule,
                f"{where}: {amount} {format_fen(over.fen)} exceeds {limit} "
                f"{format_fen(under.fen)} by {format_fen(over.fen - under.fen)}",
                at,
                over.last,
                under.last,
            )
        return True

    def see(self, item: Item) -> None:
        """Check one feed item: its place in the feed and in its stream, then its money."""
        ref = event_ref(item)
        self.count += 1
        self._dense(ref)
        self._contiguous(ref)
        if isinstance(item, UnreadableEvent):
            self.report(
                UNREADABLE,
                f"the event at position {ref.position} ({ref.stream_type} {ref.stream_id}, "
                f"version {ref.stream_version}) cannot be read as a feed entry: {item.reason}",
                ref,
            )
            return
        payload = ev.EVENT_PAYLOADS[item.event_type].model_validate(item.payload)
        if ref.stream_type == "budget":
            self._budget(ref, payload)
        elif ref.stream_type in ("contract", "grant"):
            self._holder(ref, item.occurred_at, payload)

    def _dense(self, ref: EventRef) -> None:
        if ref.position != self.next_position:
            self._hole(self.next_position, ref.position - 1, ref)
        self.next_position = ref.position + 1
        self.previous = ref

    def _hole(self, first: int, last: int, after: EventRef | None) -> None:
        missing = f"position {first} is" if first == last else f"positions {first}–{last} are"
        self.report(DENSE, f"feed {missing} missing", self.previous, after)

    def _contiguous(self, ref: EventRef) -> None:
        last = self.streams.get(ref.stream_id)
        expected = last.stream_version + 1 if last else 1
        if ref.stream_version != expected:
            came = f"version {last.stream_version} (position {last.position})" if last else "none"
            self.report(
                VERSIONS,
                f"{ref.stream_type} {ref.stream_id} goes from {came} to version "
                f"{ref.stream_version} (position {ref.position}), not to version {expected}",
                last,
                ref,
            )
        self.streams[ref.stream_id] = ref

    def _budget(self, ref: EventRef, payload: object) -> None:
        budget = ref.stream_id
        touched: UUID | None = None
        match payload:
            case ev.BudgetOpened(sources=sources):
                self.move(budget, "appropriation", sum(s.amount.fen for s in sources), ref)
            case ev.BudgetAdjusted(direction=direction, amount=amount):
                self.move(budget, "appropriation", _signed(direction, amount.fen), ref)
            case ev.AllocationMade(allocation_id=touched, amount=amount):
                self._allocate(budget, touched, amount.fen, ref)
            case ev.AllocationAdjusted(allocation_id=touched, direction=direction, amount=amount):
                self._allocate(budget, touched, _signed(direction, amount.fen), ref)
            case ev.CommitmentMade(allocation_id=touched, commitment_id=held, amount=amount):
                made = _Commitment(payload.commitment_kind, budget, touched, ref)
                self.commitments.setdefault(held, made)
                self.move(touched, "committed", amount.fen, ref)
                self.move(held, "commitment", amount.fen, ref)
            case ev.CommitmentReleased(allocation_id=touched, commitment_id=held, amount=amount):
                self.move(touched, "committed", -amount.fen, ref)
                self.move(held, "commitment", -amount.fen, ref)
        if touched is not None:
            where = f"allocation {touched} of budget {budget}"
            self.exceeds(COMMITMENTS, touched, "committed", "allocation", ref, where)
        where = f"budget {budget}"
        self.exceeds(ALLOCATIONS, budget, "allocated", "appropriation", ref, where)

    def _allocate(self, budget: UUID, allocation: UUID, delta: int, ref: EventRef) -> None:
        self.move(allocation, "allocation", delta, ref)
        self.move(budget, "allocated", delta, ref)

    def _holder(self, ref: EventRef, at: datetime, payload: object) -> None:
        held = ref.stream_id
        holder = self.holders.setdefault(held, _Holder(ref.stream_type))
        dated: tuple[int, int] | None = None
        match payload:
            case ev.ContractSigned(value=amount) | ev.GrantAwarded(amount=amount):
                holder.opened = ref
                holder.budget_id, holder.allocation_id = payload.budget_id, payload.allocation_id
                self.move(held, "value", amount.fen, ref)
            case (
                ev.ContractCompleted(released=amount)
                | ev.ContractTerminated(released=amount)
                | ev.GrantClosed(released=amount)
                | ev.GrantRevoked(released=amount)
            ):
                self.move(held, "released", amount.fen, ref)
            case ev.DeliveryAccepted(accepted=amount):
                dated = (amount.fen, 0)
            case ev.DeliveryAcceptanceReversed(reversed=amount):
                dated = (-amount.fen, 0)
            case ev.PaymentRecorded(amount=amount):
                dated = (0, amount.fen)
            case ev.PaymentReversed(reversed=amount):
                dated = (0, -amount.fen)
            case ev.GrantTrancheDisbursed(amount=amount):
                self.move(held, "disbursed", amount.fen, ref)
        where = f"{ref.stream_type} {held}"
        if ref.stream_type == "grant":
            self.exceeds(DISBURSED, held, "disbursed", "value", ref, where)
            return
        if dated is not None:
            entry = _Dated(at, *dated, ref.position, ref.stream_version, ref.event_type)
            insort(holder.timeline, entry, key=_DATE)
            for name, delta in zip(("accepted", "paid"), dated, strict=True):
                if delta:
                    self.move(held, name, delta, ref)
        self.exceeds(ACCEPTED, held, "accepted", "value", ref, where)
        overpaid = self.exceeds(PAID, held, "paid", "accepted", ref, where)
        # A payment covered in record order may still be dated before what covers it; were it
        # not covered at all, that is already the rule above.
        if isinstance(payload, ev.PaymentRecorded) and not overpaid:
            self._dated(ref, at, payload, holder)

    def _dated(
        self, ref: EventRef, at: datetime, payment: ev.PaymentRecorded, holder: _Holder
    ) -> None:
        # The contract's totals less what is dated after the payment: usually nothing is, so
        # the check costs a search, not a sum over every acceptance and payment so far.
        after = holder.timeline[bisect_right(holder.timeline, at, key=_DATE) :]
        accepted = self.tallies[ref.stream_id, "accepted"].fen - sum(d.accepted for d in after)
        paid = self.tallies[ref.stream_id, "paid"].fen - sum(d.paid for d in after)
        if paid <= accepted:
            return
        later = [d.ref(ref) for d in after if d.accepted > 0]
        self.report(
            PAID_EARLY,
            f"contract {ref.stream_id}: payment {payment.reference!r} of "
            f"{format_fen(payment.amount.fen)} is dated {at.isoformat()}, when "
            f"{format_fen(paid)} had been paid against {format_fen(accepted)} accepted; "
            f"{len(later)} acceptance(s) that cover it are dated later",
            ref,
            *later,
        )

    def finish(self, head: int) -> None:
        """The checks that need the whole feed: its end, and both sides of each commitment."""
        if self.next_position <= head:
            self._hole(self.next_position, head, None)
        for held in sorted(self.commitments.keys() | self.holders.keys(), key=str):
            self._held(held, self.commitments.get(held), self.holders.get(held))

    def _held(self, held: UUID, budget: _Commitment | None, holder: _Holder | None) -> None:
        value, released = self.tallies[held, "value"], self.tallies[held, "released"]
        holds, committed = value.fen - released.fen, self.tallies[held, "commitment"]
        kind = holder.kind if holder else budget.kind if budget else "commitment"
        if budget is None:
            message = f"{kind} {held} holds {format_fen(holds)}, which no budget committed"
        elif holder is None or holder.opened is None:
            message = (
                f"budget {budget.budget_id} commits {format_fen(committed.fen)} to {kind} "
                f"{held}, which the feed never signs or awards"
            )
        elif (holds, holder.budget_id, holder.allocation_id) != (
            committed.fen,
            budget.budget_id,
            budget.allocation_id,
        ):
            message = (
                f"{kind} {held} holds {format_fen(holds)} (value {format_fen(value.fen)} less "
                f"{format_fen(released.fen)} released) of allocation {holder.allocation_id} of "
                f"budget {holder.budget_id}, but budget {budget.budget_id} commits "
                f"{format_fen(committed.fen)} to it from allocation {budget.allocation_id}"
            )
        else:
            return
        opened, made = holder.opened if holder else None, budget.made if budget else None
        self.report(HELD, message, opened, released.last, made, committed.last)


def _signed(direction: str, fen: int) -> int:
    return fen if direction == "increase" else -fen
