"""The ledger's use cases: one method each, loading aggregates, calling the domain, saving.

Saving several aggregates (a contract and the budget it commits against) is one transaction;
a write that raced another on the same aggregate is refused as a `ConcurrentWrite`, never lost.
"""

from services.ledger.application.budgets import BudgetUseCases
from services.ledger.application.contracts import ContractUseCases
from services.ledger.application.fulfilment import FulfilmentUseCases
from services.ledger.application.grants import GrantUseCases
from services.ledger.application.procurement import ProcurementUseCases


class LedgerApplication(
    BudgetUseCases, ContractUseCases, FulfilmentUseCases, GrantUseCases, ProcurementUseCases
):
    """The append-only ledger of public money for community services."""

    # Names the event tables on PostgreSQL (ledger_events); fixed so renaming the class is safe.
    name = "Ledger"


__all__ = ["LedgerApplication"]
