"""Who and what a purchase, contract or grant may name: the catalog's facts, the ledger's rules.

Each check runs as of the day the thing happens, on what the catalog said then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

from proto.catalog import PROVIDER_KINDS, ItemStatus, Organization, OrganizationKind, ServiceItem
from services.ledger.domain.errors import InvalidCommand


class NotContractable(InvalidCommand):
    """A party or item the catalog does not support for this purchase or contract."""


class NotGrantable(InvalidCommand):
    """A grantor or grantee the catalog does not support for this grant."""


def _day(as_of: datetime) -> str:
    return as_of.date().isoformat()


def require_party(
    organizations: Mapping[UUID, Organization],
    role: str,
    org_id: UUID,
    kinds: Sequence[OrganizationKind],
    as_of: datetime,
    error: type[InvalidCommand] = NotContractable,
) -> Organization:
    """The organization, if the catalog knew it as of the day and it is of a fitting kind."""
    organization = organizations.get(org_id)
    if organization is None:
        raise error(f"{role} {org_id} is not in the catalog as of {_day(as_of)}")
    if organization.kind not in kinds:
        wanted = " or ".join(k.value for k in kinds)
        raise error(
            f"{role} {org_id} ({organization.name}) is a {organization.kind.value}, not a {wanted}"
        )
    return organization


def require_provider(
    organizations: Mapping[UUID, Organization],
    provider_id: UUID,
    as_of: datetime,
    role: str = "provider",
    error: type[InvalidCommand] = NotContractable,
) -> Organization:
    """A registered or filed provider."""
    provider = require_party(organizations, role, provider_id, sorted(PROVIDER_KINDS), as_of, error)
    if provider.registration is None:
        raise error(f"{role} {provider.id} ({provider.name}) is neither registered nor filed")
    return provider


def require_admitted(
    items: Mapping[UUID, ServiceItem], item_ids: Sequence[UUID], as_of: datetime
) -> None:
    """Every item admitted (准入) as of the day."""
    for item_id in item_ids:
        item = items.get(item_id)
        if item is None:
            raise NotContractable(f"item {item_id} is not in the catalog as of {_day(as_of)}")
        if item.status is not ItemStatus.ADMITTED:
            why = f": {item.decision_reason}" if item.decision_reason else ""
            raise NotContractable(
                f"item {item_id} ({item.name}) is {item.status.value} as of {_day(as_of)}, "
                f"not admitted{why}"
            )


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
    purchaser = require_party(
        organizations, "purchaser", purchaser_id, [OrganizationKind.STREET_OFFICE], as_of
    )
    implementer = require_party(
        organizations, "implementer", implementer_id, [OrganizationKind.COMMUNITY], as_of
    )
    if implementer.street_office_id != purchaser.id:
        raise NotContractable(
            f"implementer {implementer.id} ({implementer.name}) is not a community of "
            f"{purchaser.name}"
        )
    require_provider(organizations, provider_id, as_of)
    require_admitted(items, item_ids, as_of)


def check_grant_parties(
    *,
    grantor_id: UUID,
    grantee_id: UUID,
    organizations: Mapping[UUID, Organization],
    as_of: datetime,
) -> None:
    """Refuse, naming the party at fault, unless the catalog supports the grant.

    The grantor is a street office and the grantee a registered or filed organization, both as
    of the day of the award.
    """
    require_party(
        organizations, "grantor", grantor_id, [OrganizationKind.STREET_OFFICE], as_of, NotGrantable
    )
    require_provider(organizations, grantee_id, as_of, role="grantee", error=NotGrantable)
