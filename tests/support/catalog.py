"""Catalog records a contract can name, made through the catalog's own API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx

from proto.actor import Role
from tests.support.actors import CIVIL_AFFAIRS, acting

# Before Wuhou's first agreement (2014-04-14), so contracts signed then find them in force.
SEEDED_AT = "2014-03-31T09:00:00+08:00"


@dataclass(frozen=True)
class Parties:
    """A street office, one of its communities, a registered provider and an admitted item."""

    bureau_id: str
    street_office_id: str
    community_id: str
    provider_id: str
    item_id: str

    @property
    def street(self) -> dict[str, str]:
        """Headers for a request made by the street office."""
        return acting(Role.STREET, self.street_office_id)

    @property
    def community(self) -> dict[str, str]:
        """Headers for a request made by the community."""
        return acting(Role.COMMUNITY, self.community_id)

    @property
    def provider(self) -> dict[str, str]:
        """Headers for a request made by the provider."""
        return acting(Role.PROVIDER, self.provider_id)


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json={"occurred_at": SEEDED_AT, **body})
    assert response.status_code == 201, (path, response.status_code, response.text)
    result: dict[str, Any] = response.json()
    return result


def propose_item(client: httpx.Client, bureau_id: str, **extra: Any) -> dict[str, Any]:
    """A push-down item proposed by the bureau, on the list of assisting duties."""
    return _post(
        client,
        "/items",
        {
            "name": "Management services for elderly people over 60 on minimum living allowance",
            "kind": "public",
            "domain": "elderly",
            "target_groups": ["elderly over 60 on minimum living allowance"],
            "delivery_modes": ["on_site", "follow_up"],
            "duty_list": "committee_assisting",
            "proposed_by": bureau_id,
            **extra,
        },
    )


def admit_item(client: httpx.Client, item_id: str) -> dict[str, Any]:
    """Review and admit an item with its 2014 funding."""
    _post(client, f"/items/{item_id}/review", {})
    return _post(
        client,
        f"/items/{item_id}/admission",
        {
            "funding": [
                {
                    "source": "Wuhou district finance",
                    "year": 2014,
                    "amount": {"amount": "360000.00"},
                }
            ]
        },
    )


def register_provider(client: httpx.Client, name: str) -> dict[str, Any]:
    """A community public-interest organization at the registration thresholds."""
    return _post(
        client,
        "/organizations",
        {
            "kind": "social_organization",
            "name": name,
            "registration": {
                "track": "registered",
                "category": "community_public_interest",
                "registered_capital": {"amount": "3000.00", "currency": "CNY"},
                "members": 5,
            },
        },
    )


def catalog_client(catalog_url: str) -> httpx.Client:
    """A client of the catalog acting as the district civil-affairs bureau."""
    return httpx.Client(base_url=catalog_url, trust_env=False, timeout=10, headers=CIVIL_AFFAIRS)


def another_provider(catalog_url: str) -> str:
    """The id of a further registered provider."""
    with catalog_client(catalog_url) as client:
        return str(register_provider(client, f"Provider {uuid4().hex[:6]}")["id"])


def seed_parties(catalog_url: str) -> Parties:
    """Fresh catalog records for one contract: every name unique, so tests never collide."""
    tag = uuid4().hex[:6]
    with catalog_client(catalog_url) as client:
        bureau = _post(
            client,
            "/organizations",
            {"kind": "district_bureau", "name": f"Civil affairs bureau {tag}"},
        )
        street = _post(
            client,
            "/organizations",
            {"kind": "street_office", "name": f"Cuqiao street office {tag}"},
        )
        community = _post(
            client,
            "/organizations",
            {
                "kind": "community",
                "name": f"Longjin community {tag}",
                "street_office_id": street["id"],
            },
        )
        provider = register_provider(client, f"Longjin residents' service center {tag}")
        item = propose_item(client, bureau["id"])
        admit_item(client, item["id"])
    return Parties(bureau["id"], street["id"], community["id"], provider["id"], item["id"])
