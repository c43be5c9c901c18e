"""The ledger's domain errors: each broken rule has a name and a message that names the numbers.

They belong to the families of `services.common.errors`, because callers must react
differently: an `InvalidCommand` can never succeed as sent (fix the request), a `RuleViolation`
conflicts with the ledger's current state (look at the state, then decide).
"""

from services.common.errors import InvalidCommand, NotFound, RuleViolation, Unavailable

__all__ = ["InvalidCommand", "NotFound", "RuleViolation", "Unavailable"]


class AllocationExceedsAppropriation(RuleViolation):
    """Allocations would add up to more than the budget's appropriation."""


class AppropriationBelowAllocations(RuleViolation):
    """A decrease would leave the appropriation below what is already allocated."""


class FundingSourceOverdrawn(RuleViolation):
    """A decrease would take a funding source below zero."""


class AllocationBelowCommitments(RuleViolation):
    """A decrease would leave an allocation below what is already committed against it."""


class CommitmentExceedsAllocation(RuleViolation):
    """A contract would commit more than its allocation has left."""


class StreetOfficeAlreadyAllocated(RuleViolation):
    """A budget gives each street office one allocation; change it with an adjustment."""


class ContractNotInState(RuleViolation):
    """The contract's state does not allow this action."""


class DeliveryNotInState(RuleViolation):
    """The delivery's state does not allow this action."""


class ClaimsExceedContractValue(RuleViolation):
    """Delivered value claimed would exceed what the contract has left."""


class AcceptanceExceedsClaim(RuleViolation):
    """More would be accepted than the delivery claimed."""


class PaymentBeforeAcceptance(RuleViolation):
    """A payment dated before the acceptances that would cover it."""


class PaymentExceedsAccepted(RuleViolation):
    """A payment would exceed what was accepted and not yet paid."""


class AcceptanceBelowPayments(RuleViolation):
    """Reversing an acceptance would leave less accepted than already paid."""


class PendingDeliveries(RuleViolation):
    """Deliveries still await a decision."""


class PaymentAlreadyReversed(RuleViolation):
    """A payment can be reversed once."""


class ReferenceConflict(RuleViolation):
    """A caller's reference is already used, for something else than what was sent."""


class ConcurrentWrite(RuleViolation):
    """Another request changed the same record first; reload and retry."""
