"""The vocabulary of the authorization matrices: callers by role and relation, and refusals.

A matrix calls each endpoint as every role, acting for the organization the object belongs to
(or the request names) where that role has one, and for another organization of the same role.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import httpx

from proto.actor import Role
from proto.feed import FeedEntry, FeedPage
from services.common.auth import AuthSettings, mint_token
from tests.support.actors import AUDITOR, acting

JSON = dict[str, Any]
PROBLEM_JSON = "application/problem+json"


class Relation(StrEnum):
    """How the caller's organization stands to the object a request is about."""

    OWN = "own"
    """The organization the object belongs to in the caller's role, or the one the body names."""
    OTHER = "other"
    """Another organization of the same role, party to objects of its own but not to this one;
    for a role no organization of which is party to the object, any organization of it."""


@dataclass(frozen=True)
class Caller:
    """Who makes a request in a matrix: a role, its relation to the object, an organization."""

    role: Role
    relation: Relation
    organization_id: str

    @property
    def headers(self) -> dict[str, str]:
        """The bearer token of this caller."""
        return acting(self.role, self.organization_id)

    def __str__(self) -> str:
        return f"{self.role.value} ({self.relation.value} organization {self.organization_id})"


def callers(
    parties: Collection[Role], own: Mapping[Role, str], others: Mapping[Role, str]
) -> Iterator[Caller]:
    """Every role as another organization; the roles among `parties` also as their own one."""
    for role in Role:
        if role in parties:
            yield Caller(role, Relation.OWN, own[role])
        yield Caller(role, Relation.OTHER, others[role])


def refusal_problems(response: httpx.Response, status: int) -> list[str]:
    """What is wrong with a response that should refuse with `status` as a readable problem."""
    if response.status_code != status:
        return [f"answered {response.status_code} instead of {status}: {response.text[:300]}"]
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if media_type != PROBLEM_JSON:
        return [f"answered {status} as {media_type!r}, not as {PROBLEM_JSON}"]
    problem = response.json()
    detail = problem.get("detail")
    wrong = []
    if problem.get("status") != status:
        wrong.append(f"the problem's status is {problem.get('status')!r}, not {status}")
    if not isinstance(detail, str) or len(detail.strip()) < 10:
        wrong.append(f"the problem has no readable detail: {detail!r}")
    return wrong


async def feed_head(client: httpx.AsyncClient) -> int:
    """The last position of the service's feed, read by an auditor."""
    response = await client.get("/events", params={"limit": 1}, headers=AUDITOR)
    assert response.status_code == 200, response.text
    return FeedPage.model_validate(response.json()).head


async def entries_after(client: httpx.AsyncClient, position: int) -> list[FeedEntry]:
    """The feed's entries after a position (at most a page: a single write's events)."""
    response = await client.get(
        "/events", params={"after": position, "limit": 1000}, headers=AUDITOR
    )
    assert response.status_code == 200, response.text
    return FeedPage.model_validate(response.json()).entries


def operations(document: JSON) -> dict[str, tuple[str, str]]:
    """Every operation of an OpenAPI document: its id, with its method and path template."""
    return {
        operation["operationId"]: (method.upper(), path)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def post_operations(document: JSON) -> set[str]:
    """The ids of every POST operation: every write an endpoint offers."""
    return {name for name, (method, _) in operations(document).items() if method == "POST"}


def template_pattern(template: str) -> re.Pattern[str]:
    """A pattern matching the paths a template such as `/contracts/{contract_id}` stands for."""
    parts = re.split(r"\{[^}]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts) + r"\Z")


def with_random_ids(template: str) -> str:
    """A path for a template, every parameter a fresh UUID: nothing there, whoever asks."""
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid4()), template)


def forged_token(role: Role, organization_id: str) -> dict[str, str]:
    """Headers with a well-formed token signed by a key the services do not trust."""
    settings = AuthSettings()
    token = mint_token(
        "a-secret-nobody-configured-on-these-services",
        role=role,
        organization_id=UUID(organization_id),
        subject="forger",
        audience=settings.jwt_audience,
        ttl_seconds=3600,
    )
    return {"Authorization": f"Bearer {token}"}


def unauthenticated_problems(response: httpx.Response) -> list[str]:
    """What is wrong with a response that should ask for a valid bearer token (401)."""
    wrong = refusal_problems(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    if response.status_code == 401 and not challenge.startswith("Bearer"):
        wrong.append(f"401 without a Bearer challenge: WWW-Authenticate is {challenge!r}")
    return wrong
