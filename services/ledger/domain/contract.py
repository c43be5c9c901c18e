"""The Contract aggregate: the tri-party agreement, its deliveries, acceptances and payments.

Deliveries and payments live inside the contract because the rules that bind them (never accept
more than the value, never pay more than was accepted) must hold under concurrent writes: one
aggregate is one consistency boundary, so a racing write is refused rather than lost.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from itertools import groupby
from operator import attrgetter
from typing import NamedTuple
from uuid import UUID, uuid4

from eventsourcing.domain import event

from services.ledger.domain.dated import DatedAggregate
from services.ledger.domain.errors import (
    AcceptanceBelowPayments,
    AcceptanceExceedsClaim,
    ClaimsExceedContractValue,
    ContractNotInState,
    DeliveryNotInState,
    InvalidCommand,
    NotFound,
    PaymentAlreadyReversed,
    PaymentBeforeAcceptance,
    PaymentExceedsAccepted,
    PendingDeliveries,
    ReferenceConflict,
)
from services.ledger.domain.money import format_fen


class ContractState(StrEnum):
    SIGNED = "signed"
    ACTIVE = "active"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class DeliveryState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REVERSED = "reversed"


@dataclass(frozen=True)
class Delivery:
    """Service a provider reports as delivered, and the purchaser's decision on it."""

    id: UUID
    reference: str | None
    period_start: date
    period_end: date
    quantity: int
    unit: str
    amount_fen: int
    evidence_sha256: tuple[str, ...]
    beneficiary_digests: tuple[str, ...]
    description: str
    reported_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    accepted_fen: int = 0
    score: int | None = None
    decision_note: str = ""
    decided_at: datetime | None = None


@dataclass(frozen=True)
class Payment:
    """Money paid out by the treasury against accepted value, keyed by the treasury's reference."""

    reference: str
    amount_fen: int
    paid_at: datetime
    reversed_reason: str | None = None
    reversed_at: datetime | None = None

    @property
    def is_reversed(self) -> bool:
        return self.reversed_reason is not None


@dataclass(frozen=True)
class Release:
    """Commitment given back to the allocation when the contract ends."""

    amount_fen: int
    reason: str


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidCommand("a reason is required")


def _pending_fen(delivery: Delivery) -> int:
    return delivery.amount_fen if delivery.state is DeliveryState.PENDING else 0


def _paid_fen(payment: Payment) -> int:
    return 0 if payment.is_reversed else payment.amount_fen


class _Dated(NamedTuple):
    """What an acceptance (`accepted_fen`) or a payment (`paid_fen`) adds, and its date."""

    at: datetime
    accepted_fen: int
    paid_fen: int


_AT = attrgetter("at")


def _require_covered(
    amount_fen: int, occurred_at: datetime, moment: datetime, paid_fen: int, accepted_fen: int
) -> None:
    """A payment dated `occurred_at` would leave `paid_fen` paid by `moment`: no more than was
    accepted by then."""
    if paid_fen > accepted_fen:
        raise PaymentBeforeAcceptance(
            f"payment {format_fen(amount_fen)} dated {occurred_at.isoformat()} would make "
            f"the payments by {moment.isoformat()} ({format_fen(paid_fen)}) exceed "
            f"what was accepted by then ({format_fen(accepted_fen)})"
        )


def _later(known: datetime | None, moment: datetime) -> datetime:
    return moment if known is None or moment > known else known


def _require_score(score: int | None) -> None:
    if score is not None and not 0 <= score <= 100:
        raise InvalidCommand(f"score must be between 0 and 100, got {score}")


class Contract(DatedAggregate):
    """Purchaser (street office), implementer (community) and provider, for catalog items."""

    @classmethod
    def sign(
        cls,
        *,
        reference: str,
        title: str,
        project_id: UUID,
        variation: str | None,
        budget_id: UUID,
        allocation_id: UUID,
        purchaser_id: UUID,
        implementer_id: UUID,
        provider_id: UUID,
        item_ids: list[UUID],
        value_fen: int,
        period_start: date,
        period_end: date,
        occurred_at: datetime,
    ) -> Contract:
        """Record a signed agreement; the caller commits its value against the allocation."""
        if not reference.strip():
            raise InvalidCommand("a contract needs its reference (the contract number)")
        if value_fen <= 0:
            raise InvalidCommand(
                f"contract value must be more than 0.00, got {format_fen(value_fen)}"
            )
        if period_end < period_start:
            raise InvalidCommand(
                f"contract period ends {period_end} before it starts {period_start}"
            )
        if not item_ids:
            raise InvalidCommand("a contract covers at least one catalog item")
        if len(set(item_ids)) != len(item_ids):
            raise InvalidCommand("a catalog item is listed twice in the contract")
        if len({purchaser_id, implementer_id, provider_id}) != 3:
            raise InvalidCommand(
                "purchaser, implementer and provider must be three different organizations"
            )
        return cls(
            reference=reference,
            title=title,
            project_id=project_id,
            variation=variation.strip() if variation and variation.strip() else None,
            budget_id=budget_id,
            allocation_id=allocation_id,
            purchaser_id=purchaser_id,
            implementer_id=implementer_id,
            provider_id=provider_id,
            item_ids=item_ids,
            value_fen=value_fen,
            period_start=period_start,
            period_end=period_end,
            occurred_at=occurred_at,
        )

    @event("Signed")
    def __init__(
        self,
        *,
        reference: str,
        title: str,
        project_id: UUID,
        variation: str | None,
        budget_id: UUID,
        allocation_id: UUID,
        purchaser_id: UUID,
        implementer_id: UUID,
        provider_id: UUID,
        item_ids: list[UUID],
        value_fen: int,
        period_start: date,
        period_end: date,
        occurred_at: datetime,
    ) -> None:
        self.reference = reference
        self.title = title
        self.project_id = project_id
        self.variation = variation
        self.budget_id = budget_id
        self.allocation_id = allocation_id
        self.purchaser_id = purchaser_id
        self.implementer_id = implementer_id
        self.provider_id = provider_id
        self.item_ids = list(item_ids)
        self.value_fen = value_fen
        self.period_start = period_start
        self.period_end = period_end
        self.signed_at = occurred_at
        self.state = ContractState.SIGNED
        self.deliveries: dict[UUID, Delivery] = {}
        self.payments: dict[str, Payment] = {}
        # Kept as the records change (in _put_delivery and _put_payment), so a command's checks
        # do not sum every record: equal to those sums by construction.
        self._accepted_fen = self._pending_fen = self._paid_fen = 0
        self._delivery_references: dict[str, UUID] = {}
        self._latest_acceptance: datetime | None = None
        self._latest_payment: datetime | None = None
        self.release: Release | None = None

    # --- figures --------------------------------------------------------------------------

    @property
    def began_at(self) -> datetime:
        return self.signed_at

    @property
    def accepted_fen(self) -> int:
        return self._accepted_fen

    @property
    def pending_fen(self) -> int:
        return self._pending_fen

    @property
    def paid_fen(self) -> int:
        return self._paid_fen

    @property
    def unpaid_accepted_fen(self) -> int:
        return self.accepted_fen - self.paid_fen

    @property
    def committed_fen(self) -> int:
        """What the contract holds of its allocation: its value, less what was released."""
        return self.value_fen - (self.release.amount_fen if self.release else 0)

    def _put_delivery(self, delivery: Delivery) -> None:
        """Record a delivery, new or changed, and move the totals by what it changed."""
        before = self.deliveries.get(delivery.id)
        self._accepted_fen += delivery.accepted_fen - (before.accepted_fen if before else 0)
        self._pending_fen += _pending_fen(delivery) - (_pending_fen(before) if before else 0)
        if delivery.accepted_fen and delivery.decided_at is not None:
            self._latest_acceptance = _later(self._latest_acceptance, delivery.decided_at)
        if delivery.reference is not None:
            self._delivery_references[delivery.reference] = delivery.id
        self.deliveries[delivery.id] = delivery

    def _put_payment(self, payment: Payment) -> None:
        """Record a payment, new or reversed, and move the total paid by what it changed."""
        before = self.payments.get(payment.reference)
        self._paid_fen += _paid_fen(payment) - (_paid_fen(before) if before else 0)
        self._latest_payment = _later(self._latest_payment, payment.paid_at)
        self.payments[payment.reference] = payment

    def delivery_by_reference(self, reference: str) -> Delivery | None:
        """The delivery reported under the provider's own reference, if any."""
        delivery_id = self._delivery_references.get(reference)
        return None if delivery_id is None else self.deliveries[delivery_id]

    def delivery(self, delivery_id: UUID) -> Delivery:
        """The delivery with this id, or NotFound."""
        try:
            return self.deliveries[delivery_id]
        except KeyError:
            raise NotFound(f"contract {self.id} has no delivery {delivery_id}") from None

    def payment(self, reference: str) -> Payment:
        """The payment with this treasury reference, or NotFound."""
        try:
            return self.payments[reference]
        except KeyError:
            raise NotFound(f"contract {self.id} has no payment {reference!r}") from None

    def _require_state(self, action: str, *allowed: ContractState) -> None:
        if self.state not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise ContractNotInState(
                f"cannot {action}: contract {self.reference} is {self.state.value}, not {names}"
            )

    # --- life cycle -----------------------------------------------------------------------

    def activate(self, *, occurred_at: datetime) -> None:
        """Start the service: deliveries can be reported from now on."""
        self._require_state("activate", ContractState.SIGNED)
        self._activated(occurred_at=occurred_at)

    @event("Activated")
    def _activated(self, *, occurred_at: datetime) -> None:
        self.state = ContractState.ACTIVE

    def complete(self, *, occurred_at: datetime) -> int:
        """Close a fulfilled contract; returns the unspent value to release from the allocation."""
        self._require_state("complete", ContractState.ACTIVE)
        self._require_no_pending("complete")
        unspent = self.value_fen - self.accepted_fen
        self._completed(released_fen=unspent, occurred_at=occurred_at)
        return unspent

    @event("Completed")
    def _completed(self, *, released_fen: int, occurred_at: datetime) -> None:
        self.state = ContractState.COMPLETED
        self.release = Release(released_fen, "completed")

    def terminate(self, *, reason: str, occurred_at: datetime) -> int:
        """End a contract early, with a reason; returns the unspent value to release."""
        _require_reason(reason)
        self._require_state("terminate", ContractState.SIGNED, ContractState.ACTIVE)
        self._require_no_pending("terminate")
        unspent = self.value_fen - self.accepted_fen
        self._terminated(reason=reason, released_fen=unspent, occurred_at=occurred_at)
        return unspent

    @event("Terminated")
    def _terminated(self, *, reason: str, released_fen: int, occurred_at: datetime) -> None:
        self.state = ContractState.TERMINATED
        self.release = Release(released_fen, reason)

    def _require_no_pending(self, action: str) -> None:
        pending = [d for d in self.deliveries.values() if d.state is DeliveryState.PENDING]
        if pending:
            raise PendingDeliveries(
                f"cannot {action}: {len(pending)} deliveries worth "
                f"{format_fen(self.pending_fen)} await acceptance; accept or reject them first"
            )

    # --- deliveries -----------------------------------------------------------------------

    def report_delivery(
        self,
        *,
        reference: str | None,
        period_start: date,
        period_end: date,
        quantity: int,
        unit: str,
        amount_fen: int,
        evidence_sha256: list[str],
        beneficiary_digests: list[str],
        description: str,
        occurred_at: datetime,
    ) -> Delivery:
        """Record service the provider delivered; its value awaits the purchaser's acceptance."""
        self._require_state("report a delivery", ContractState.ACTIVE)
        if amount_fen <= 0:
            raise InvalidCommand(
                f"delivered value must be more than 0.00, got {format_fen(amount_fen)}"
            )
        if quantity <= 0:
            raise InvalidCommand(f"quantity must be at least 1, got {quantity}")
        if period_end < period_start:
            raise InvalidCommand(
                f"delivery period ends {period_end} before it starts {period_start}"
            )
        if period_start < self.period_start or period_end > self.period_end:
            raise InvalidCommand(
                f"delivery period {period_start}..{period_end} lies outside the contract period "
                f"{self.period_start}..{self.period_end}"
            )
        if reference is not None and self.delivery_by_reference(reference) is not None:
            raise ReferenceConflict(f"delivery reference {reference!r} is already used")
        room = self.value_fen - self.accepted_fen - self.pending_fen
        if amount_fen > room:
            raise ClaimsExceedContractValue(
                f"delivery claims {format_fen(amount_fen)} but only {format_fen(room)} of the "
                f"contract value {format_fen(self.value_fen)} is neither accepted nor awaiting "
                "acceptance"
            )
        delivery_id = uuid4()
        self._delivery_reported(
            delivery_id=delivery_id,
            reference=reference,
            period_start=period_start,
            period_end=period_end,
            quantity=quantity,
            unit=unit,
            amount_fen=amount_fen,
            evidence_sha256=evidence_sha256,
            beneficiary_digests=beneficiary_digests,
            description=description,
            occurred_at=occurred_at,
        )
        return self.deliveries[delivery_id]

    @event("DeliveryReported")
    def _delivery_reported(
        self,
        *,
        delivery_id: UUID,
        reference: str | None,
        period_start: date,
        period_end: date,
        quantity: int,
        unit: str,
        amount_fen: int,
        evidence_sha256: list[str],
        beneficiary_digests: list[str],
        description: str,
        occurred_at: datetime,
    ) -> None:
        self._put_delivery(
            Delivery(
                delivery_id,
                reference,
                period_start,
                period_end,
                quantity,
                unit,
                amount_fen,
                tuple(evidence_sha256),
                tuple(beneficiary_digests),
                description,
                occurred_at,
            )
        )

    def accept_delivery(
        self,
        *,
        delivery_id: UUID,
        amount_fen: int | None,
        score: int | None,
        note: str,
        occurred_at: datetime,
    ) -> None:
        """Accept a delivery, in full or in part; accepted value becomes payable."""
        delivery = self.delivery(delivery_id)
        self._require_state("accept a delivery", ContractState.ACTIVE)
        self._require_delivery_state(delivery, "accept", DeliveryState.PENDING)
        _require_score(score)
        accepted = delivery.amount_fen if amount_fen is None else amount_fen
        if accepted <= 0:
            raise InvalidCommand(
                f"accepted value must be more than 0.00, got {format_fen(accepted)}; "
                "reject the delivery instead"
            )
        if accepted > delivery.amount_fen:
            raise AcceptanceExceedsClaim(
                f"acceptance {format_fen(accepted)} exceeds the delivery's claim "
                f"{format_fen(delivery.amount_fen)}"
            )
        self._delivery_accepted(
            delivery_id=delivery_id,
            accepted_fen=accepted,
            score=score,
            note=note,
            occurred_at=occurred_at,
        )

    @event("DeliveryAccepted")
    def _delivery_accepted(
        self,
        *,
        delivery_id: UUID,
        accepted_fen: int,
        score: int | None,
        note: str,
        occurred_at: datetime,
    ) -> None:
        self._put_delivery(
            replace(
                self.deliveries[delivery_id],
                state=DeliveryState.ACCEPTED,
                accepted_fen=accepted_fen,
                score=score,
                decision_note=note,
                decided_at=occurred_at,
            )
        )

    def reject_delivery(
        self, *, delivery_id: UUID, reason: str, score: int | None, occurred_at: datetime
    ) -> None:
        """Refuse a delivery, with a reason; nothing of it becomes payable."""
        delivery = self.delivery(delivery_id)
        self._require_state("reject a delivery", ContractState.ACTIVE)
        self._require_delivery_state(delivery, "reject", DeliveryState.PENDING)
        _require_reason(reason)
        _require_score(score)
        self._delivery_rejected(
            delivery_id=delivery_id, reason=reason, score=score, occurred_at=occurred_at
        )

    @event("DeliveryRejected")
    def _delivery_rejected(
        self, *, delivery_id: UUID, reason: str, score: int | None, occurred_at: datetime
    ) -> None:
        self._put_delivery(
            replace(
                self.deliveries[delivery_id],
                state=DeliveryState.REJECTED,
                score=score,
                decision_note=reason,
                decided_at=occurred_at,
            )
        )

    def reverse_acceptance(self, *, delivery_id: UUID, reason: str, occurred_at: datetime) -> None:
        """Correct a mistaken acceptance; what was paid must be reversed first."""
        delivery = self.delivery(delivery_id)
        self._require_state("reverse an acceptance", ContractState.ACTIVE)
        self._require_delivery_state(delivery, "reverse the acceptance of", DeliveryState.ACCEPTED)
        _require_reason(reason)
        remaining = self.accepted_fen - delivery.accepted_fen
        if remaining < self.paid_fen:
            raise AcceptanceBelowPayments(
                f"payments {format_fen(self.paid_fen)} would exceed the "
                f"{format_fen(remaining)} that stays accepted; reverse payments first"
            )
        self._acceptance_reversed(
            delivery_id=delivery_id,
            reversed_fen=delivery.accepted_fen,
            reason=reason,
            occurred_at=occurred_at,
        )

    @event("AcceptanceReversed")
    def _acceptance_reversed(
        self, *, delivery_id: UUID, reversed_fen: int, reason: str, occurred_at: datetime
    ) -> None:
        self._put_delivery(
            replace(
                self.deliveries[delivery_id],
                state=DeliveryState.REVERSED,
                accepted_fen=0,
                decision_note=reason,
                decided_at=occurred_at,
            )
        )

    def _require_delivery_state(
        self, delivery: Delivery, action: str, expected: DeliveryState
    ) -> None:
        if delivery.state is not expected:
            raise DeliveryNotInState(
                f"cannot {action} delivery {delivery.id}: it is {delivery.state.value}, "
                f"not {expected.value}"
            )

    # --- payments -------------------------------------------------------------------------

    def record_payment(self, *, reference: str, amount_fen: int, occurred_at: datetime) -> Payment:
        """Record a treasury payment; never more than accepted and not yet paid."""
        if not reference.strip():
            raise InvalidCommand("a payment needs the treasury's payment reference")
        if amount_fen <= 0:
            raise InvalidCommand(f"payment must be more than 0.00, got {format_fen(amount_fen)}")
        if reference in self.payments:
            raise ReferenceConflict(
                f"payment reference {reference!r} is already used on contract {self.reference}"
            )
        self._require_state(
            "record a payment",
            ContractState.ACTIVE,
            ContractState.COMPLETED,
            ContractState.TERMINATED,
        )
        if amount_fen > self.unpaid_accepted_fen:
            raise PaymentExceedsAccepted(
                f"payment {format_fen(amount_fen)} exceeds accepted-but-unpaid "
                f"{format_fen(self.unpaid_accepted_fen)}"
            )
        self._require_accepted_by_then(amount_fen, occurred_at)
        self._payment_recorded(reference=reference, amount_fen=amount_fen, occurred_at=occurred_at)
        return self.payments[reference]

    def _require_accepted_by_then(self, amount_fen: int, occurred_at: datetime) -> None:
        # Replayed as of any date, the contract must never show more paid than accepted: at the
        # payment's date, and at every later-dated payment it comes before.
        if all(
            t is None or t <= occurred_at for t in (self._latest_acceptance, self._latest_payment)
        ):
            # Nothing accepted or paid is dated later: by then means in all, checked already.
            return
        # One pass sums what is dated by the payment's date and sets aside what comes later
        # (usually little), which is then taken in date order: a back-dated payment costs a
        # pass over the records, not one for each later-dated payment.
        accepted, paid_by_then = 0, amount_fen
        later: list[_Dated] = []
        for d in self.deliveries.values():
            if d.accepted_fen and d.decided_at is not None:
                if d.decided_at <= occurred_at:
                    accepted += d.accepted_fen
                else:
                    later.append(_Dated(d.decided_at, d.accepted_fen, 0))
        for p in self.payments.values():
            if not p.is_reversed:
                if p.paid_at <= occurred_at:
                    paid_by_then += p.amount_fen
                else:
                    later.append(_Dated(p.paid_at, 0, p.amount_fen))
        _require_covered(amount_fen, occurred_at, occurred_at, paid_by_then, accepted)
        for moment, dated in groupby(sorted(later, key=_AT), key=_AT):
            on_it = list(dated)
            accepted += sum(record.accepted_fen for record in on_it)
            paid_by_then += sum(record.paid_fen for record in on_it)
            if any(record.paid_fen for record in on_it):  # a payment is dated then
                _require_covered(amount_fen, occurred_at, moment, paid_by_then, accepted)

    @event("PaymentRecorded")
    def _payment_recorded(self, *, reference: str, amount_fen: int, occurred_at: datetime) -> None:
        self._put_payment(Payment(reference, amount_fen, occurred_at))

    def reverse_payment(self, *, reference: str, reason: str, occurred_at: datetime) -> None:
        """Correct a payment (returned by the bank, paid in error), with a reason."""
        payment = self.payment(reference)
        _require_reason(reason)
        if payment.is_reversed:
            raise PaymentAlreadyReversed(
                f"payment {reference!r} was already reversed: {payment.reversed_reason}"
            )
        self._payment_reversed(
            reference=reference,
            reversed_fen=payment.amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )

    @event("PaymentReversed")
    def _payment_reversed(
        self, *, reference: str, reversed_fen: int, reason: str, occurred_at: datetime
    ) -> None:
        self._put_payment(
            replace(self.payments[reference], reversed_reason=reason, reversed_at=occurred_at)
        )
