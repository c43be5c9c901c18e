"""Who may change the catalog: every write as every role, for its own organization and another.

The civil-affairs bureau keeps the catalog: it registers organizations and decides on items. A
community refuses tasks and opens platforms for itself only. Every other caller is refused
(403), with nothing written. Everything the catalog holds can be read by any caller with a
token; the community service guide and the health checks need none.

Every case runs on SQLite and PostgreSQL: the refusals share one catalog per backend (the
module's `catalog_world`); each allowed write gets fresh records of its own in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from uuid import uuid4

import httpx
import pytest
import pytest_asyncio

from proto.actor import Role
from services.catalog.main import create_app
from services.catalog.settings import CatalogSettings
from tests.support.actors import (
    AUDIT_OFFICE_ID,
    CIVIL_AFFAIRS,
    CIVIL_AFFAIRS_ID,
    WUHOU_FINANCE_ID,
)
from tests.support.inprocess import client_for
from tests.support.ledger_api import cny, ok
from tests.support.matrix import (
    JSON,
    Caller,
    Relation,
    callers,
    entries_after,
    feed_head,
    forged_token,
    operations,
    post_operations,
    refusal_problems,
    template_pattern,
    unauthenticated_problems,
    with_random_ids,
)

OWN, OTHER = Relation.OWN, Relation.OTHER
NOTIFIER_SERVICE_ID = "7d0f5a8e-1f3b-4c55-9a1e-20145e7c1ce1"
LEDGER_SERVICE_ID = "5e6f1c2a-7b8d-5c4e-9f0a-1b2c3d4e5f60"
REGISTERED_AT = "2014-03-01T09:00:00+08:00"

in_world = pytest.mark.asyncio(loop_scope="module")


def unique(name: str) -> str:
    return f"{name} {uuid4().hex[:8]}"


@dataclass
class Scene:
    """Catalog records of one street office's community, as far as a story has gone."""

    bureau_id: str = ""
    street_office_id: str = ""
    community_id: str = ""
    provider_id: str = ""
    item_id: str = ""
    """The item the story proposes, reviews, admits."""
    optional_item_id: str = ""
    """An item on none of the three lists: one a community may refuse."""
    platform_id: str = ""

    def own(self) -> dict[Role, str]:
        """The organizations party to the scene's records, by role."""
        return {Role.COMMUNITY: self.community_id}


Step = Callable[[httpx.AsyncClient, Scene], Awaitable[None]]


@dataclass(frozen=True)
class Write:
    """A write endpoint of the catalog in the matrix."""

    operation: str
    path: Callable[[Scene], str]
    body: Callable[[Scene], JSON]
    parties: frozenset[Role]
    """The roles whose own organization the request is about (the community refusing)."""
    allowed: frozenset[tuple[Role, Relation]]
    ready: tuple[Step, ...]
    """Steps from nothing to a scene where the allowed callers can make this change."""
    keep: Callable[[Scene, JSON], None] = lambda scene, created: None
    """What a step taken with this write keeps of the record it made."""

    def __str__(self) -> str:
        return self.operation


# --- the steps of the catalog's stories ---------------------------------------------------


async def act(client: httpx.AsyncClient, scene: Scene, operation: str) -> None:
    """Make a write as the caller allowed to make it, keeping what it made in the scene."""
    write = WRITES[operation]
    role, relation = next((r, rel) for r in Role for rel in Relation if (r, rel) in write.allowed)
    organization = scene.own()[role] if relation is OWN else CIVIL_AFFAIRS_ID
    caller = Caller(role, relation, organization)
    response = await client.post(write.path(scene), json=write.body(scene), headers=caller.headers)
    write.keep(scene, ok(response))


async def register(client: httpx.AsyncClient, body: JSON) -> str:
    response = await client.post(
        "/organizations", json={"occurred_at": REGISTERED_AT, **body}, headers=CIVIL_AFFAIRS
    )
    return str(ok(response)["id"])


async def bureau(client: httpx.AsyncClient, scene: Scene) -> None:
    body = {"kind": "district_bureau", "name": unique("Wuhou civil affairs bureau")}
    scene.bureau_id = await register(client, body)


async def street_and_community(client: httpx.AsyncClient, scene: Scene) -> None:
    body = {"kind": "street_office", "name": unique("Cuqiao street office")}
    scene.street_office_id = await register(client, body)
    scene.community_id = await register(
        client,
        {
            "kind": "community",
            "name": unique("Longjin community"),
            "street_office_id": scene.street_office_id,
        },
    )


async def provider(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "registerOrganization")


async def propose(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "proposeItem")


async def propose_optional(client: httpx.AsyncClient, scene: Scene) -> None:
    response = await client.post(
        "/items", json={**item_body(scene), "duty_list": "none"}, headers=CIVIL_AFFAIRS
    )
    scene.optional_item_id = str(ok(response)["id"])


async def review(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "startItemReview")


async def admit(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "admitItem")


async def open_platform(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "openPlatform")


PROPOSED = (bureau, propose)
ADMITTED = (*PROPOSED, review, admit)
COMMUNITY_READY = (bureau, street_and_community, propose_optional)
HOSTING = (*ADMITTED, street_and_community, provider)


async def reach(client: httpx.AsyncClient, steps: tuple[Step, ...]) -> Scene:
    scene = Scene()
    for step in steps:
        await step(client, scene)
    return scene


# --- request bodies and the table ---------------------------------------------------------


def provider_body(scene: Scene) -> JSON:
    return {
        "kind": "social_organization",
        "name": unique("Longjin residents' service center"),
        "registration": {
            "track": "registered",
            "category": "community_public_interest",
            "registered_capital": cny("3000.00"),
            "members": 5,
        },
        "occurred_at": REGISTERED_AT,
    }


def item_body(scene: Scene) -> JSON:
    return {
        "name": "Management services for elderly people over 60 on minimum living allowance",
        "kind": "public",
        "domain": "elderly",
        "target_groups": ["elderly over 60 on minimum living allowance"],
        "delivery_modes": ["on_site", "follow_up"],
        "duty_list": "committee_assisting",
        "proposed_by": scene.bureau_id,
        "occurred_at": "2014-03-20T09:00:00+08:00",
    }


def at(moment: str, **fields: object) -> Callable[[Scene], JSON]:
    """A body builder for a body that names no record: when, and the given fields."""
    return lambda _: {**fields, "occurred_at": moment}


def keep_provider(scene: Scene, created: JSON) -> None:
    scene.provider_id = str(created["id"])


def keep_item(scene: Scene, created: JSON) -> None:
    scene.item_id = str(created["id"])


def keep_platform(scene: Scene, created: JSON) -> None:
    scene.platform_id = str(created["id"])


BY_CIVIL_AFFAIRS = frozenset({(Role.CIVIL_AFFAIRS, OTHER)})
"""Any civil-affairs bureau: the catalog belongs to none in particular."""
BY_THE_COMMUNITY = frozenset({(Role.COMMUNITY, OWN)})
NO_PARTIES: frozenset[Role] = frozenset()

TABLE = [
    Write(
        "registerOrganization",
        lambda s: "/organizations",
        provider_body,
        NO_PARTIES,
        BY_CIVIL_AFFAIRS,
        (),
        keep=keep_provider,
    ),
    Write(
        "proposeItem",
        lambda s: "/items",
        item_body,
        NO_PARTIES,
        BY_CIVIL_AFFAIRS,
        (bureau,),
        keep_item,
    ),
    Write(
        "startItemReview",
        lambda s: f"/items/{s.item_id}/review",
        at("2014-03-25T09:00:00+08:00"),
        NO_PARTIES,
        BY_CIVIL_AFFAIRS,
        PROPOSED,
    ),
    Write(
        "admitItem",
        lambda s: f"/items/{s.item_id}/admission",
        at(
            "2014-03-31T09:00:00+08:00",
            funding=[
                {"source": "Wuhou district finance", "year": 2014, "amount": cny("360000.00")}
            ],
        ),
        NO_PARTIES,
        BY_CIVIL_AFFAIRS,
        (*PROPOSED, review),
    ),
    Write(
        "rejectItem",
        lambda s: f"/items/{s.item_id}/rejection",
        at("2014-03-31T09:00:00+08:00", reason="already a statutory duty of the committee"),
        NO_PARTIES,
        BY_CIVIL_AFFAIRS,
        PROPOSED,
    ),
    Write(
        "retireItem",
        lambda s: f"/items/{s.item_id}/retirement",
        at("2014-12-31T09:00:00+08:00", reason="merged into the home-care item"),
        NO_PARTIES,
        BY_CIVIL_AFFAIRS,
        ADMITTED,
    ),
    Write(
        "refuseTask",
        lambda s: f"/communities/{s.community_id}/refusals",
        lambda s: {
            "item_id": s.optional_item_id,
            "reason": "on none of the three lists: the committee has no staff for it",
            "occurred_at": "2014-04-02T09:00:00+08:00",
        },
        frozenset({Role.COMMUNITY}),
        BY_THE_COMMUNITY,
        COMMUNITY_READY,
    ),
    Write(
        "openPlatform",
        lambda s: "/platforms",
        lambda s: {
            "community_id": s.community_id,
            "name": "Longjin service centre",
            "type": "centre",
            "location": "8 Longjin Road",
            "item_ids": [s.item_id],
            "provider_ids": [s.provider_id],
            "occurred_at": "2014-04-01T09:00:00+08:00",
        },
        frozenset({Role.COMMUNITY}),
        BY_THE_COMMUNITY,
        HOSTING,
        keep=keep_platform,
    ),
]
WRITES = {write.operation: write for write in TABLE}

ALLOWED = [
    pytest.param(write, role, relation, id=f"{write}-{role.value}-{relation.value}")
    for write in TABLE
    for role, relation in sorted(write.allowed)
]

CATALOG_DOCUMENT = create_app(CatalogSettings(database_url="sqlite://")).openapi()
CATALOG_OPERATIONS = operations(CATALOG_DOCUMENT)
PUBLIC = {"healthz", "readyz", "communityGuide"}


# --- the world: one catalog per backend ---------------------------------------------------


@dataclass
class World:
    """A catalog on one backend, with a community's records, and callers not party to them."""

    client: httpx.AsyncClient
    scene: Scene
    others: dict[Role, str]
    """For each role, an organization the scene's records are not about."""

    def callers(self, write: Write, scene: Scene | None = None) -> Iterator[Caller]:
        """Every role, for the scene's own organization where it has one and for another."""
        return callers(write.parties, (scene or self.scene).own(), self.others)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(module_database_url: str) -> AsyncIterator[World]:
    app = create_app(CatalogSettings(database_url=module_database_url))
    async with client_for(app) as client:
        scene = await reach(client, (*HOSTING, open_platform, propose_optional))
        theirs = await reach(client, (street_and_community,))
        others = {
            Role.FINANCE: WUHOU_FINANCE_ID,
            Role.CIVIL_AFFAIRS: CIVIL_AFFAIRS_ID,
            Role.STREET: scene.street_office_id,
            Role.COMMUNITY: theirs.community_id,
            Role.PROVIDER: scene.provider_id,
            Role.AUDITOR: AUDIT_OFFICE_ID,
            Role.SERVICE: LEDGER_SERVICE_ID,
        }
        yield World(client, scene, others)


# --- the table covers the catalog ---------------------------------------------------------


def test_every_write_endpoint_of_the_catalog_has_a_row_in_the_matrix() -> None:
    assert set(WRITES) == post_operations(CATALOG_DOCUMENT)


def test_each_row_calls_its_own_endpoint_and_lets_someone_make_the_change() -> None:
    placeholder = Scene(*(str(uuid4()) for _ in range(7)))
    for write in TABLE:
        method, template = CATALOG_OPERATIONS[write.operation]
        assert method == "POST"
        assert template_pattern(template).match(write.path(placeholder)), write
        assert write.allowed, write
        assert all(role in write.parties for role, r in write.allowed if r is OWN), write


# --- writes -------------------------------------------------------------------------------


@in_world
@pytest.mark.parametrize("write", TABLE, ids=str)
async def test_callers_other_than_the_keeper_of_the_record_are_refused_and_nothing_is_written(
    world: World, write: Write
) -> None:
    client, scene = world.client, world.scene
    path, body = write.path(scene), write.body(scene)
    head = await feed_head(client)
    wrong: list[str] = []
    for caller in world.callers(write):
        if (caller.role, caller.relation) in write.allowed:
            continue
        response = await client.post(path, json=body, headers=caller.headers)
        wrong += [f"{caller}: {problem}" for problem in refusal_problems(response, 403)]
        now = await feed_head(client)
        if now != head:
            wrong.append(f"{caller}: the catalog recorded changes {head + 1}..{now}")
            head = now
    assert not wrong, "\n".join(wrong)


@in_world
@pytest.mark.parametrize(("write", "role", "relation"), ALLOWED)
async def test_the_keeper_of_the_record_makes_the_change_and_the_catalog_records_who(
    world: World, write: Write, role: Role, relation: Relation
) -> None:
    client = world.client
    scene = await reach(client, write.ready)
    caller = next(
        c for c in world.callers(write, scene) if (c.role, c.relation) == (role, relation)
    )
    head = await feed_head(client)
    response = await client.post(write.path(scene), json=write.body(scene), headers=caller.headers)
    assert response.status_code == 201, (caller, response.text)
    recorded = await entries_after(client, head)
    assert recorded, "the change was not recorded in the feed"
    for entry in recorded:
        assert entry.caused_by is not None
        assert (entry.caused_by.role, str(entry.caused_by.organization_id)) == (
            caller.role,
            caller.organization_id,
        )


# --- reads --------------------------------------------------------------------------------


def read_path(template: str, scene: Scene) -> str:
    """A path of a read endpoint naming the scene's records."""
    ids = {
        "organization_id": scene.community_id,
        "community_id": scene.community_id,
        "item_id": scene.item_id,
        "platform_id": scene.platform_id,
    }
    return template.format(**ids)


READS = sorted(
    name
    for name, (method, _) in CATALOG_OPERATIONS.items()
    if method == "GET" and name not in PUBLIC
)


@in_world
@pytest.mark.parametrize("operation", READS)
async def test_every_role_reads_the_whole_catalog(world: World, operation: str) -> None:
    path = read_path(CATALOG_OPERATIONS[operation][1], world.scene)
    others = world.others
    for role in Role:
        caller = Caller(role, OTHER, others[role])
        response = await world.client.get(path, headers=caller.headers)
        assert response.status_code == 200, (caller, path, response.text)


# --- authentication -----------------------------------------------------------------------


@in_world
@pytest.mark.parametrize("operation", sorted(set(CATALOG_OPERATIONS) - PUBLIC))
async def test_every_endpoint_but_the_guide_asks_for_a_valid_bearer_token(
    world: World, operation: str
) -> None:
    method, template = CATALOG_OPERATIONS[operation]
    path = with_random_ids(template)
    body: JSON | None = {} if method == "POST" else None
    forged = forged_token(Role.CIVIL_AFFAIRS, CIVIL_AFFAIRS_ID)
    for headers in ({}, forged):
        response = await world.client.request(method, path, json=body, headers=headers)
        assert not unauthenticated_problems(response), (headers, response.text)


@in_world
@pytest.mark.parametrize("operation", sorted(PUBLIC))
async def test_the_guide_and_health_checks_answer_without_a_token(
    world: World, operation: str
) -> None:
    method, template = CATALOG_OPERATIONS[operation]
    path = read_path(template, world.scene)
    response = await world.client.request(method, path)
    assert response.status_code == 200, response.text
