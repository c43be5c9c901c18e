"""Who and what a contract may name: the catalog's facts, judged by the ledger's rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from proto.catalog import PROVIDER_KINDS, ItemStatus, Organization, OrganizationKind, ServiceItem
from services.ledger.domain.errors import InvalidCommand


class NotContractable(InvalidCommand):
    """A party or item the catalog does not support for this contract."""


def check_contract_parties(
    *,
    purchaser_id: UUID,
    implementer_id: UUID,
    provider_id: UUID,
    item_ids: list[UUID],
    organizations: Mapping[UUID, Organization],
    items: Mapping[UUID, ServiceItem],
    as_of: datetime,
) -> None:
    """Refuse, naming the first party or item at fault, unless the catalog supports the contract.

    The purchaser is a street office, the implementer one of its communities, the provider a
    registered or filed organization, and every item admitted: all as of the day of signing.
    """
    when = as_of.date().isoformat()

    def party(role: str, org_id: UUID, *kinds: OrganizationKind) -> Organization:
        organization = organizations.get(org_id)
        if organization is None:
            raise NotContractable(f"{role} {org_id} is not in the catalog as of {when}")
        if organization.kind not in kinds:
            wanted = " or ".join(k.value for k in kinds)
            raise NotContractable(
                f"{role} {org_id} ({organization.name}) is a {organization.kind.value}, "
                f"not a {wanted}"
            )
        return organization

    purchaser = party("purchaser", purchaser_id, OrganizationKind.STREET_OFFICE)
    implementer = party("implementer", implementer_id, OrganizationKind.COMMUNITY)
    if implementer.street_office_id != purchaser.id:
        raise NotContractable(
            f"implementer {implementer.id} ({implementer.name}) is not a community of "
            f"{purchaser.name}"
        )
    provider = party("provider", provider_id, *sorted(PROVIDER_KINDS))
    if provider.registration is None:
        raise NotContractable(
            f"provider {provider.id} ({provider.name}) is neither registered nor filed"
        )
    for item_id in item_ids:
        item = items.get(item_id)
        if item is None:
            raise NotContractable(f"item {item_id} is not in the catalog as of {when}")
        if item.status is not ItemStatus.ADMITTED:
            why = f": {item.decision_reason}" if item.decision_reason else ""
            raise NotContractable(
                f"item {item_id} ({item.name}) is {item.status.value} as of {when}, "
                f"not admitted{why}"
            )
