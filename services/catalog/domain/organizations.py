"""Rules for organizations: who is what, and what a provider needs to be recognized."""

from __future__ import annotations

from uuid import UUID

from proto.catalog import (
    PROVIDER_KINDS,
    Organization,
    OrganizationKind,
    ProviderCategory,
    Registration,
    Track,
)
from services.common.errors import InvalidCommand

# A community public-interest organization registers with at least 3,000 CNY and 5 members.
MIN_COMMUNITY_CAPITAL_FEN = 300_000
MIN_COMMUNITY_MEMBERS = 5


def check_registration(kind: OrganizationKind, registration: Registration) -> None:
    """Refuse a registration that does not fit the kind, or is below its category's thresholds."""
    is_agency = registration.category is ProviderCategory.SOCIAL_WORK_AGENCY
    if is_agency != (kind is OrganizationKind.SOCIAL_WORK_AGENCY):
        raise InvalidCommand(
            f"a {kind.value} cannot be registered in the category {registration.category.value}"
        )
    if registration.track is not Track.REGISTERED:
        return
    if registration.category is ProviderCategory.COMMUNITY_PUBLIC_INTEREST:
        capital = registration.registered_capital
        if capital is None or capital.fen < MIN_COMMUNITY_CAPITAL_FEN:
            shown = capital.amount if capital else "none"
            raise InvalidCommand(
                "a registered community public-interest organization needs at least 3000.00 "
                f"CNY of capital, got {shown}; file it (备案) instead, or raise the capital"
            )
        if registration.members is None or registration.members < MIN_COMMUNITY_MEMBERS:
            raise InvalidCommand(
                "a registered community public-interest organization needs at least 5 members, "
                f"got {registration.members if registration.members is not None else 'none'}"
            )


def new_organization(
    *,
    organization_id: UUID,
    kind: OrganizationKind,
    name: str,
    code: str | None,
    street_office: Organization | None,
    registration: Registration | None,
    contact: str | None,
) -> Organization:
    """An organization, checked for what its kind requires."""
    if kind is OrganizationKind.COMMUNITY:
        if street_office is None:
            raise InvalidCommand("a community belongs to a street office: give street_office_id")
        if street_office.kind is not OrganizationKind.STREET_OFFICE:
            raise InvalidCommand(
                f"street_office_id {street_office.id} is a {street_office.kind.value}, "
                "not a street office"
            )
    elif street_office is not None:
        raise InvalidCommand("only a community has a street office")
    if kind in PROVIDER_KINDS:
        if registration is None:
            raise InvalidCommand(
                "a provider is either registered (登记) or filed (备案): give its registration"
            )
        check_registration(kind, registration)
    elif registration is not None:
        raise InvalidCommand(f"a {kind.value} has no provider registration")
    return Organization(
        id=organization_id,
        version=1,
        kind=kind,
        name=name,
        code=code,
        street_office_id=street_office.id if street_office else None,
        registration=registration,
        contact=contact,
    )


def require_kind(organization: Organization, *kinds: OrganizationKind, role: str) -> None:
    """Refuse an organization in a role its kind cannot play."""
    if organization.kind not in kinds:
        wanted = " or ".join(k.value for k in kinds)
        raise InvalidCommand(
            f"{role} {organization.id} ({organization.name}) is a {organization.kind.value}, "
            f"not a {wanted}"
        )
