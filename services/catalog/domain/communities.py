"""What a community may refuse, and what its platforms may host."""

from __future__ import annotations

from proto.catalog import (
    PROVIDER_KINDS,
    DutyList,
    ItemStatus,
    Organization,
    OrganizationKind,
    ServiceItem,
)
from services.catalog.domain.organizations import require_kind
from services.common.errors import InvalidCommand, RuleViolation


def check_refusal(community: Organization, item: ServiceItem, reason: str) -> None:
    """A community may refuse only a task for an item on none of its three lists."""
    require_kind(community, OrganizationKind.COMMUNITY, role="community")
    if not reason.strip():
        raise InvalidCommand("a refusal needs its reason")
    if item.duty_list is not DutyList.NONE:
        raise RuleViolation(
            f"item {item.id} ({item.name}) is on the {item.duty_list.value} list: a community "
            "cannot refuse it"
        )


def check_platform(
    community: Organization, items: list[ServiceItem], providers: list[Organization]
) -> None:
    """A platform belongs to a community, hosts no rejected or retired item, and providers."""
    require_kind(community, OrganizationKind.COMMUNITY, role="community")
    for item in items:
        if item.status in (ItemStatus.REJECTED, ItemStatus.RETIRED):
            raise RuleViolation(
                f"item {item.id} ({item.name}) is {item.status.value}: a platform cannot offer it"
            )
    for provider in providers:
        require_kind(provider, *sorted(PROVIDER_KINDS), role="provider")
