"""Use cases of fulfilment: deliveries, the purchaser's decisions, and payments."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from uuid import UUID

from proto.actor import Actor, Role
from services.ledger.application.base import TREASURY_SCOPE, LedgerBase
from services.ledger.domain.contract import Contract, Delivery, Payment
from services.ledger.domain.errors import ReferenceConflict
from services.ledger.store.recorders import ReferenceClaim


class FulfilmentUseCases(LedgerBase):
    """What providers deliver, what purchasers accept, what the treasury pays."""

    def report_delivery(
        self,
        contract_id: UUID,
        *,
        reference: str | None,
        period_start: date,
        period_end: date,
        quantity: int,
        unit: str,
        amount_fen: int,
        evidence_sha256: list[str],
        beneficiaries: list[str],
        description: str,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Contract, Delivery, bool]:
        """Record delivered service; beneficiaries are kept only as keyed digests."""
        contract = self._for(
            Contract,
            contract_id,
            by,
            (Role.COMMUNITY, Role.PROVIDER),
            "record deliveries on this contract",
        )
        digests = [self.beneficiary_digest(b) for b in beneficiaries]
        if reference is not None:
            found = contract.delivery_by_reference(reference)
            if found is not None:
                same = (found.amount_fen, found.period_start, found.period_end, found.quantity) == (
                    amount_fen,
                    period_start,
                    period_end,
                    quantity,
                )
                if not same:
                    raise ReferenceConflict(
                        f"delivery reference {reference!r} is already used on this contract "
                        "for a different delivery"
                    )
                return contract, found, False
        delivery = contract.report_delivery(
            reference=reference,
            period_start=period_start,
            period_end=period_end,
            quantity=quantity,
            unit=unit,
            amount_fen=amount_fen,
            evidence_sha256=evidence_sha256,
            beneficiary_digests=digests,
            description=description,
            occurred_at=occurred_at,
        )
        self._save(contract, caused_by=by)
        return contract, delivery, True

    def beneficiary_digest(self, identity: str) -> str:
        """HMAC-SHA256 of a beneficiary's identity under the ledger's key: linkable, not readable.

        A bare SHA-256 of an ID-card number can be reversed by trying every number; the key
        stops that for anyone who has the data but not the key.
        """
        return hmac.new(self._beneficiary_key, identity.encode(), hashlib.sha256).hexdigest()

    def accept_delivery(
        self,
        contract_id: UUID,
        delivery_id: UUID,
        *,
        amount_fen: int | None,
        score: int | None,
        note: str,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Contract, Delivery]:
        """Accept a delivery in full or in part."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "accept deliveries")
        contract.accept_delivery(
            delivery_id=delivery_id,
            amount_fen=amount_fen,
            score=score,
            note=note,
            occurred_at=occurred_at,
        )
        self._save(contract, caused_by=by)
        return contract, contract.delivery(delivery_id)

    def reject_delivery(
        self,
        contract_id: UUID,
        delivery_id: UUID,
        *,
        reason: str,
        score: int | None,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Contract, Delivery]:
        """Reject a delivery, with a reason."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "reject deliveries")
        contract.reject_delivery(
            delivery_id=delivery_id, reason=reason, score=score, occurred_at=occurred_at
        )
        self._save(contract, caused_by=by)
        return contract, contract.delivery(delivery_id)

    def reverse_acceptance(
        self,
        contract_id: UUID,
        delivery_id: UUID,
        *,
        reason: str,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Contract, Delivery]:
        """Correct a mistaken acceptance, with a reason."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "reverse acceptances")
        contract.reverse_acceptance(delivery_id=delivery_id, reason=reason, occurred_at=occurred_at)
        self._save(contract, caused_by=by)
        return contract, contract.delivery(delivery_id)

    def record_payment(
        self,
        contract_id: UUID,
        *,
        reference: str,
        amount_fen: int,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Contract, Payment, bool]:
        """Record a treasury payment; the same treasury reference twice is the same payment."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "record payments")
        if self._treasury_reference_is_ours(reference, contract_id, by):
            payment = contract.payment(reference)
            if payment.amount_fen != amount_fen:
                raise ReferenceConflict(
                    f"treasury reference {reference!r} is already a payment of a different amount"
                )
            return contract, payment, False
        payment = contract.record_payment(
            reference=reference, amount_fen=amount_fen, occurred_at=occurred_at
        )
        self._save(
            contract,
            references=[ReferenceClaim(TREASURY_SCOPE, reference, contract_id)],
            caused_by=by,
        )
        return contract, payment, True

    def reverse_payment(
        self, contract_id: UUID, reference: str, *, reason: str, occurred_at: datetime, by: Actor
    ) -> tuple[Contract, Payment]:
        """Correct a payment, with a reason; the original stays on record."""
        contract = self._for(Contract, contract_id, by, (Role.STREET,), "reverse payments")
        contract.reverse_payment(reference=reference, reason=reason, occurred_at=occurred_at)
        self._save(contract, caused_by=by)
        return contract, contract.payment(reference)
