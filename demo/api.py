"""The demo's calls to the three services: as another government system makes them, over HTTP."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx

from proto.actor import Role
from services.common.auth import AuthSettings, mint_token

# The bureaus' organization ids, as their tokens carry them (as in the README's examples).
FINANCE_ID = UUID("4f1c8a2e-0c1d-4e7a-9b51-2014f1a4ce01")
AUDIT_OFFICE_ID = UUID("4f1c8a2e-0c1d-4e7a-9b51-2014a0d17001")
CIVIL_AFFAIRS_ID = UUID("4f1c8a2e-0c1d-4e7a-9b51-2014c1a1a001")


_RETRIES = 20


class LoadFailed(Exception):
    """A service refused a call the scenario needs; says which, and why."""


def cny(fen: int) -> dict[str, str]:
    """Wire money from integer fen: a decimal string, never a float."""
    sign = "-" if fen < 0 else ""
    return {"amount": f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}", "currency": "CNY"}


def fen(money: dict[str, str] | None) -> int:
    """Integer fen from wire money (0 for a figure that does not apply)."""
    if money is None:
        return 0
    units, _, cents = money["amount"].lstrip("-").partition(".")
    value = int(units) * 100 + int((cents + "00")[:2])
    return -value if money["amount"].startswith("-") else value


@dataclass
class Api:
    """Clients of the three services, with development tokens minted for each caller."""

    catalog_url: str
    ledger_url: str
    notifier_url: str
    concurrency: int = 8
    auth: AuthSettings = field(default_factory=AuthSettings)
    _tokens: dict[tuple[Role, UUID], dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        timeout = httpx.Timeout(60.0)
        self.catalog = httpx.AsyncClient(
            base_url=self.catalog_url, trust_env=False, limits=limits, timeout=timeout
        )
        self.ledger = httpx.AsyncClient(
            base_url=self.ledger_url, trust_env=False, limits=limits, timeout=timeout
        )
        self.notifier = httpx.AsyncClient(
            base_url=self.notifier_url, trust_env=False, limits=limits, timeout=timeout
        )
        self.gate = asyncio.Semaphore(self.concurrency)

    async def aclose(self) -> None:
        """Close the three clients."""
        for client in (self.catalog, self.ledger, self.notifier):
            await client.aclose()

    def as_(self, role: Role, organization_id: UUID | str) -> dict[str, str]:
        """Headers for a call made by `role` for an organization (a development token)."""
        key = (role, UUID(str(organization_id)))
        if key not in self._tokens:
            token = mint_token(
                self.auth.jwt_secret.get_secret_value(),
                role=role,
                organization_id=key[1],
                subject=f"demo-{role.value}",
                audience=self.auth.jwt_audience,
                ttl_seconds=3600,
            )
            self._tokens[key] = {"Authorization": f"Bearer {token}"}
        return self._tokens[key]

    @property
    def finance(self) -> dict[str, str]:
        """Wuhou district finance."""
        return self.as_(Role.FINANCE, FINANCE_ID)

    @property
    def civil_affairs(self) -> dict[str, str]:
        """The district civil affairs bureau, keeper of the catalog."""
        return self.as_(Role.CIVIL_AFFAIRS, CIVIL_AFFAIRS_ID)

    @property
    def auditor(self) -> dict[str, str]:
        """The district audit office."""
        return self.as_(Role.AUDITOR, AUDIT_OFFICE_ID)

    async def post(
        self, client: httpx.AsyncClient, path: str, body: dict[str, Any], caller: dict[str, str]
    ) -> Any:
        """A write; 201 when made, 200 when a retry (or a second run) found it made before.

        A write that raced another on the same record (two contracts committing against one
        budget) is answered 409 concurrent-write, "reload and retry": it is retried, which its
        reference makes safe.
        """
        for attempt in range(_RETRIES):
            async with self.gate:
                response = await client.post(path, json=body, headers=caller)
            raced = response.status_code == 409 and response.json().get("type", "").endswith(
                ":concurrent-write"
            )
            if not raced:
                break
            await asyncio.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311
        if response.status_code not in (200, 201):
            raise LoadFailed(f"POST {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    async def get(
        self,
        client: httpx.AsyncClient,
        path: str,
        caller: dict[str, str],
        params: dict[str, Any] | None = None,
    ) -> Any:
        """A read that must succeed."""
        async with self.gate:
            response = await client.get(path, params=params, headers=caller)
        if response.status_code != 200:
            raise LoadFailed(f"GET {path}: {response.status_code} {response.text[:500]}")
        return response.json()
