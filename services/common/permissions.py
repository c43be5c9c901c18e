"""Role and organization checks every service's use cases share."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from uuid import UUID

from proto.actor import Actor, Role
from services.common.errors import Forbidden


def _names(roles: Iterable[Role]) -> str:
    return " or ".join(sorted(role.value for role in roles))


def require_role(actor: Actor, roles: Collection[Role], doing: str) -> None:
    """403 unless the caller's role may do this at all."""
    if actor.role not in roles:
        raise Forbidden(f"only {_names(roles)} may {doing}; the caller is {actor.role}")


def require_acting_for(actor: Actor, role: Role, organization_id: UUID, doing: str) -> None:
    """403 unless the caller has this role and acts for the organization the request names."""
    require_role(actor, (role,), doing)
    if actor.organization_id != organization_id:
        raise Forbidden(
            f"{actor} may not {doing} for organization {organization_id}: a caller acts only "
            "for its own organization"
        )
