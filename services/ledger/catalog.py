"""The ledger's view of the catalog, over HTTP: organizations and items as of a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel

from proto.catalog import Organization, ServiceItem
from services.common.errors import Unavailable
from services.common.observability import propagate

M = TypeVar("M", bound=BaseModel)


class CatalogReader(Protocol):
    """What the ledger needs to know from the catalog."""

    def organizations(self, ids: Sequence[UUID], as_of: datetime) -> dict[UUID, Organization]:
        """The organizations among `ids` that existed as of a time."""
        ...

    def items(self, ids: Sequence[UUID], as_of: datetime) -> dict[UUID, ServiceItem]:
        """The items among `ids` as they stood as of a time."""
        ...


class CatalogUnavailable(Unavailable):
    """The catalog did not answer; the ledger cannot check a contract and writes nothing."""


class _Page(BaseModel):
    items: list[dict[str, object]]


class HttpCatalog:
    """The catalog service over HTTP, with a timeout and a bounded retry."""

    RETRY_STATUSES = frozenset({502, 503, 504})

    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], str],
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            trust_env=False,
            # The request that asked passes its X-Request-ID on, so both logs name it.
            event_hooks={"request": [propagate]},
        )
        self._token = token
        self._attempts = attempts
        self._backoff = backoff
        self._base_url = base_url

    def organizations(self, ids: Sequence[UUID], as_of: datetime) -> dict[UUID, Organization]:
        return {o.id: o for o in self._fetch("/organizations", Organization, ids, as_of)}

    def items(self, ids: Sequence[UUID], as_of: datetime) -> dict[UUID, ServiceItem]:
        return {i.id: i for i in self._fetch("/items", ServiceItem, ids, as_of)}

    def _fetch(self, path: str, model: type[M], ids: Sequence[UUID], as_of: datetime) -> list[M]:
        params: dict[str, str | int | Sequence[str]] = {
            "ids": [str(i) for i in ids],
            "as_of": as_of.isoformat(),
            "limit": 1000,
        }
        failure = ""
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                response = self._client.get(
                    path, params=params, headers={"Authorization": f"Bearer {self._token()}"}
                )
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in self.RETRY_STATUSES:
                failure = f"HTTP {response.status_code}"
                continue
            if response.status_code in (401, 403):
                raise CatalogUnavailable(
                    f"the catalog at {self._base_url} refused the ledger's service token (HTTP "
                    f"{response.status_code}): check AUTH_JWT_* and LEDGER_CATALOG_TOKEN; "
                    "nothing was written"
                )
            if response.status_code != 200:
                raise CatalogUnavailable(
                    f"the catalog at {self._base_url} answered {path} with HTTP "
                    f"{response.status_code}; nothing was written"
                )
            try:
                page = _Page.model_validate(response.json())
                return [model.model_validate(row) for row in page.items]
            except ValueError as exc:  # not JSON, or not the records proto/ defines
                raise CatalogUnavailable(
                    f"the catalog at {self._base_url} answered {path} with something that is "
                    f"not a page of records ({type(exc).__name__}); nothing was written"
                ) from exc
        raise CatalogUnavailable(
            f"the catalog at {self._base_url} did not answer ({failure}) after "
            f"{self._attempts} attempts; nothing was written, retry later"
        )

    def close(self) -> None:
        self._client.close()
