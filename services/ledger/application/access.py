"""Who may see and change what in the ledger (OWASP API1: object-level authorization).

Every use case names its caller. Reading an object needs a relation to it: being one of its
parties in the role that party plays, or overseeing the whole ledger. A caller without one is
told the object does not exist (404), so ids cannot be probed. A caller who may see an object
but not make this change to it is refused (403). Either way nothing is written.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from uuid import UUID

from eventsourcing.domain import Aggregate

from proto.actor import Actor, Role
from services.common.errors import Forbidden, NotFound
from services.common.permissions import require_role
from services.ledger.domain.budget import Budget
from services.ledger.domain.contract import Contract
from services.ledger.domain.grant import Grant
from services.ledger.domain.procurement import PurchaseProject

# Read everything the ledger holds: finance funds it, auditors check it, services follow it.
OVERSEERS = frozenset({Role.FINANCE, Role.AUDITOR, Role.SERVICE})

Parties = Mapping[Role, Collection[UUID]]
"""An object's parties by the role each plays, e.g. a contract's street office by Role.STREET."""


def parties_of(aggregate: Aggregate) -> Parties:
    """The organizations party to an aggregate, by the role each plays in it."""
    if isinstance(aggregate, Contract):
        return {
            Role.STREET: {aggregate.purchaser_id},
            Role.COMMUNITY: {aggregate.implementer_id},
            Role.PROVIDER: {aggregate.provider_id},
        }
    if isinstance(aggregate, Grant):
        return {Role.STREET: {aggregate.grantor_id}, Role.PROVIDER: {aggregate.grantee_id}}
    if isinstance(aggregate, PurchaseProject):
        applicants = {a.provider_id for a in aggregate.applications.values()}
        return {Role.STREET: {aggregate.purchaser_id}, Role.PROVIDER: applicants}
    if isinstance(aggregate, Budget):
        return {Role.FINANCE: {aggregate.holder_id}}
    raise TypeError(f"no parties known for {type(aggregate).__name__}")


def is_public(aggregate: Aggregate) -> bool:
    """Budgets and purchase projects are published, as budgets and calls for applications are."""
    return isinstance(aggregate, Budget | PurchaseProject)


def _is_party(actor: Actor, parties: Parties) -> bool:
    return actor.organization_id in parties.get(actor.role, ())


def sees(actor: Actor, aggregate: Aggregate) -> bool:
    """Whether the caller may read the object: it is public, overseen by it, or it is a party."""
    return (
        is_public(aggregate) or actor.role in OVERSEERS or _is_party(actor, parties_of(aggregate))
    )


def require_visible(actor: Actor, aggregate: Aggregate, what: str) -> None:
    """404 unless the caller may see the object, exactly as if it did not exist."""
    if not sees(actor, aggregate):
        raise NotFound(f"no {what}")


def require_party(
    actor: Actor, aggregate: Aggregate, roles: Collection[Role], what: str, doing: str
) -> None:
    """404 if the caller may not see the object; 403 unless it is a party in one of `roles`."""
    require_visible(actor, aggregate, what)
    require_role(actor, roles, doing)
    if not _is_party(actor, parties_of(aggregate)):
        raise Forbidden(
            f"{actor} may not {doing}: that is for the {actor.role} that is party to {what}"
        )


def scoped(
    actor: Actor, facts: dict[str, str | int], own: Mapping[Role, str], listing: str
) -> dict[str, str | int] | None:
    """List filters narrowed to what the caller may see; None when it can see nothing of them.

    `own` names, per role, the fact that holds the caller's organization (e.g. a street office
    sees the contracts whose `purchaser_id` is its own). Overseers see everything; other roles
    are refused (403).
    """
    if actor.role in OVERSEERS:
        return facts
    fact = own.get(actor.role)
    if fact is None:
        raise Forbidden(f"{actor.role} may not list {listing}")
    mine = str(actor.organization_id)
    if facts.get(fact, mine) != mine:
        return None
    return {**facts, fact: mine}
