"""The Grant aggregate: money awarded to an organization for a purpose, disbursed in tranches.

Bao'an's second way money reaches organizations (159 organizations, 7,350,000.00 CNY in five
years): no purchase of service items, but a grant from a street office's allocation, paid out
by the treasury in tranches and accounted for by the grantee's reports on use.

The rules that end a grant:

- **close** needs at least one tranche and a report on use filed after the last one, so that it
  accounts for everything disbursed (spent, and the rest unspent); it releases the undisbursed
  remainder to the allocation and records what was disbursed but reported unspent, which the
  grantee owes back.
- **revoke**, with a reason, is possible while part of the grant is undisbursed; it releases
  that part. What was disbursed stays committed and must still be reported on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from services.ledger.domain.dated import DatedAggregate
from services.ledger.domain.errors import (
    InvalidCommand,
    NotFound,
    ReferenceConflict,
    RuleViolation,
)
from services.ledger.domain.money import format_fen

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class GrantNotInState(RuleViolation):
    """The grant's state does not allow this action."""


class TrancheExceedsGrant(RuleViolation):
    """Tranches would add up to more than the grant."""


class SpendingExceedsDisbursed(RuleViolation):
    """A report on use claims more spent than was disbursed."""


class NothingDisbursed(RuleViolation):
    """No tranche was disbursed yet, so there is nothing to report on or to close."""


class UseNotReported(RuleViolation):
    """A grant closes only after a report on use that covers every tranche."""


class GrantFullyDisbursed(RuleViolation):
    """A fully disbursed grant cannot be revoked: it is reported on and closed."""


class GrantState(StrEnum):
    AWARDED = "awarded"
    CLOSED = "closed"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Tranche:
    """Money the treasury paid out of the grant, keyed by the treasury's reference."""

    reference: str
    amount_fen: int
    disbursed_at: datetime


@dataclass(frozen=True)
class UseReport:
    """The grantee's account of what it spent, as a total to date, over the tranches it covers."""

    report_sha256: str
    summary: str
    spent_fen: int
    disbursed_fen: int
    reported_at: datetime


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidCommand("a reason is required")


class Grant(DatedAggregate):
    """A grant from a street office's allocation to an organization, for a purpose."""

    @classmethod
    def award(
        cls,
        *,
        reference: str,
        purpose: str,
        budget_id: UUID,
        allocation_id: UUID,
        grantor_id: UUID,
        grantee_id: UUID,
        amount_fen: int,
        occurred_at: datetime,
    ) -> Grant:
        """Record an awarded grant; the caller commits its amount against the allocation."""
        if not reference.strip():
            raise InvalidCommand("a grant needs its reference (the grant number)")
        if not purpose.strip():
            raise InvalidCommand("a grant needs its purpose")
        if amount_fen <= 0:
            raise InvalidCommand(f"grant must be more than 0.00, got {format_fen(amount_fen)}")
        if grantor_id == grantee_id:
            raise InvalidCommand("grantor and grantee must be two different organizations")
        return cls(
            reference=reference,
            purpose=purpose,
            budget_id=budget_id,
            allocation_id=allocation_id,
            grantor_id=grantor_id,
            grantee_id=grantee_id,
            amount_fen=amount_fen,
            occurred_at=occurred_at,
        )

    @event("Awarded")
    def __init__(
        self,
        *,
        reference: str,
        purpose: str,
        budget_id: UUID,
        allocation_id: UUID,
        grantor_id: UUID,
        grantee_id: UUID,
        amount_fen: int,
        occurred_at: datetime,
    ) -> None:
        self.reference = reference
        self.purpose = purpose
        self.budget_id = budget_id
        self.allocation_id = allocation_id
        self.grantor_id = grantor_id
        self.grantee_id = grantee_id
        self.amount_fen = amount_fen
        self.awarded_at = occurred_at
        self.state = GrantState.AWARDED
        self.tranches: dict[str, Tranche] = {}
        self.reports: list[UseReport] = []
        self.released_fen = 0
        self.ended_at: datetime | None = None
        self.revocation_reason: str | None = None

    # --- figures --------------------------------------------------------------------------

    @property
    def began_at(self) -> datetime:
        return self.awarded_at

    @property
    def disbursed_fen(self) -> int:
        return sum(t.amount_fen for t in self.tranches.values())

    @property
    def undisbursed_fen(self) -> int:
        return self.amount_fen - self.disbursed_fen

    @property
    def committed_fen(self) -> int:
        """What the grant holds of its allocation: its amount, less what was released."""
        return self.amount_fen - self.released_fen

    @property
    def latest_report(self) -> UseReport | None:
        return self.reports[-1] if self.reports else None

    @property
    def spent_fen(self) -> int:
        """Spending to date, as the latest report on use states it."""
        latest = self.latest_report
        return latest.spent_fen if latest else 0

    @property
    def unspent_fen(self) -> int:
        """Disbursed and not reported as spent: at closing, what the grantee owes back."""
        return self.disbursed_fen - self.spent_fen

    def tranche(self, reference: str) -> Tranche:
        """The tranche with this treasury reference, or NotFound."""
        try:
            return self.tranches[reference]
        except KeyError:
            raise NotFound(f"grant {self.id} has no tranche {reference!r}") from None

    def _require_state(self, action: str, *allowed: GrantState) -> None:
        if self.state not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise GrantNotInState(
                f"cannot {action}: grant {self.reference} is {self.state.value}, not {names}"
            )

    # --- tranches -------------------------------------------------------------------------

    def disburse(self, *, reference: str, amount_fen: int, occurred_at: datetime) -> Tranche:
        """Record a tranche the treasury paid; tranches never add up to more than the grant."""
        if not reference.strip():
            raise InvalidCommand("a tranche needs the treasury's payment reference")
        if amount_fen <= 0:
            raise InvalidCommand(f"tranche must be more than 0.00, got {format_fen(amount_fen)}")
        if reference in self.tranches:
            raise ReferenceConflict(
                f"tranche reference {reference!r} is already used on grant {self.reference}"
            )
        self._require_state("disburse a tranche", GrantState.AWARDED)
        if amount_fen > self.undisbursed_fen:
            raise TrancheExceedsGrant(
                f"tranche {format_fen(amount_fen)} exceeds the undisbursed "
                f"{format_fen(self.undisbursed_fen)} of grant {format_fen(self.amount_fen)} "
                f"(disbursed {format_fen(self.disbursed_fen)})"
            )
        self._tranche_disbursed(reference=reference, amount_fen=amount_fen, occurred_at=occurred_at)
        return self.tranches[reference]

    @event("TrancheDisbursed")
    def _tranche_disbursed(self, *, reference: str, amount_fen: int, occurred_at: datetime) -> None:
        self.tranches[reference] = Tranche(reference, amount_fen, occurred_at)

    # --- reports on use -------------------------------------------------------------------

    def report_use(
        self, *, report_sha256: str, summary: str, spent_fen: int, occurred_at: datetime
    ) -> UseReport:
        """Record the grantee's report: spending to date, never more than was disbursed."""
        if not _SHA256.match(report_sha256):
            raise InvalidCommand(
                "report_sha256 must be the report's SHA-256 digest in 64 lowercase hex "
                f"digits, got {report_sha256!r}"
            )
        if spent_fen < 0:
            raise InvalidCommand(f"spending must not be negative, got {format_fen(spent_fen)}")
        if any(r.report_sha256 == report_sha256 for r in self.reports):
            raise ReferenceConflict(
                f"report {report_sha256} is already on record for grant {self.reference}"
            )
        # A revoked grant's disbursed part must still be accounted for.
        self._require_state("report on use", GrantState.AWARDED, GrantState.REVOKED)
        if self.disbursed_fen == 0:
            raise NothingDisbursed(
                f"cannot report on use: nothing of grant {self.reference} "
                f"({format_fen(self.amount_fen)}) has been disbursed yet"
            )
        if spent_fen > self.disbursed_fen:
            raise SpendingExceedsDisbursed(
                f"reported spending {format_fen(spent_fen)} exceeds the "
                f"{format_fen(self.disbursed_fen)} disbursed"
            )
        self._use_reported(
            report_sha256=report_sha256,
            summary=summary,
            spent_fen=spent_fen,
            disbursed_fen=self.disbursed_fen,
            occurred_at=occurred_at,
        )
        return self.reports[-1]

    @event("UseReported")
    def _use_reported(
        self,
        *,
        report_sha256: str,
        summary: str,
        spent_fen: int,
        disbursed_fen: int,
        occurred_at: datetime,
    ) -> None:
        self.reports.append(
            UseReport(report_sha256, summary, spent_fen, disbursed_fen, occurred_at)
        )

    # --- the end --------------------------------------------------------------------------

    def close(self, *, occurred_at: datetime) -> int:
        """Close an accounted-for grant; returns the undisbursed remainder to release."""
        self._require_state("close", GrantState.AWARDED)
        if self.disbursed_fen == 0:
            raise NothingDisbursed(
                f"cannot close: nothing of grant {self.reference} "
                f"({format_fen(self.amount_fen)}) was disbursed; revoke it instead"
            )
        latest = self.latest_report
        if latest is None:
            raise UseNotReported(
                f"cannot close: grant {self.reference} disbursed "
                f"{format_fen(self.disbursed_fen)} and has no report on use"
            )
        if latest.disbursed_fen != self.disbursed_fen:
            raise UseNotReported(
                f"cannot close: the latest report on use of grant {self.reference} covers "
                f"{format_fen(latest.disbursed_fen)} of the {format_fen(self.disbursed_fen)} "
                "disbursed; report on every tranche first"
            )
        remainder = self.undisbursed_fen
        self._closed(
            released_fen=remainder,
            unspent_fen=self.disbursed_fen - latest.spent_fen,
            occurred_at=occurred_at,
        )
        return remainder

    @event("Closed")
    def _closed(self, *, released_fen: int, unspent_fen: int, occurred_at: datetime) -> None:
        self.state = GrantState.CLOSED
        self.released_fen = released_fen
        self.ended_at = occurred_at

    def revoke(self, *, reason: str, occurred_at: datetime) -> int:
        """Withdraw a grant not fully disbursed; returns the undisbursed part to release."""
        _require_reason(reason)
        self._require_state("revoke", GrantState.AWARDED)
        if self.undisbursed_fen == 0:
            raise GrantFullyDisbursed(
                f"cannot revoke: grant {self.reference} is fully disbursed "
                f"({format_fen(self.disbursed_fen)} of {format_fen(self.amount_fen)}); "
                "report on its use and close it"
            )
        remainder = self.undisbursed_fen
        self._revoked(reason=reason, released_fen=remainder, occurred_at=occurred_at)
        return remainder

    @event("Revoked")
    def _revoked(self, *, reason: str, released_fen: int, occurred_at: datetime) -> None:
        self.state = GrantState.REVOKED
        self.released_fen = released_fen
        self.revocation_reason = reason
        self.ended_at = occurred_at
