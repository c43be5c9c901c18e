"""Bearer tokens for tests: the caller each request is made as, signed as `make run` signs them."""

from __future__ import annotations

from uuid import UUID

from proto.actor import Role
from services.common.auth import AuthSettings, mint_token

# Organizations that tests need only as callers: the catalog does not have to know them.
WUHOU_FINANCE_ID = "7d0f5a8e-1f3b-4c55-9a1e-2014f1a4ce01"
AUDIT_OFFICE_ID = "7d0f5a8e-1f3b-4c55-9a1e-2014a0d17001"
CIVIL_AFFAIRS_ID = "7d0f5a8e-1f3b-4c55-9a1e-2014c1a1a001"


def token(role: Role | str, organization_id: UUID | str, subject: str | None = None) -> str:
    """A valid token for this caller, signed with the configured (by default development) secret."""
    settings = AuthSettings()
    return mint_token(
        settings.jwt_secret.get_secret_value(),
        role=Role(role),
        organization_id=UUID(str(organization_id)),
        subject=subject or f"{Role(role).value}-clerk",
        audience=settings.jwt_audience,
        ttl_seconds=3600,
    )


def acting(
    role: Role | str, organization_id: UUID | str, subject: str | None = None
) -> dict[str, str]:
    """Headers for a request made as this caller."""
    return {"Authorization": f"Bearer {token(role, organization_id, subject)}"}


FINANCE = acting(Role.FINANCE, WUHOU_FINANCE_ID)
"""Wuhou district finance bureau, which holds the budgets tests open."""
AUDITOR = acting(Role.AUDITOR, AUDIT_OFFICE_ID)
"""An audit office: reads everything."""
CIVIL_AFFAIRS = acting(Role.CIVIL_AFFAIRS, CIVIL_AFFAIRS_ID)
"""The district civil-affairs bureau, which keeps the catalog."""
