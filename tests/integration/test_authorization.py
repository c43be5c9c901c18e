"""Who may change and read what in the ledger: every write as every role, own and other org.

One table names every write endpoint (each POST operation of the ledger's OpenAPI document):
how to call it on a scene (path and body), what it acts on, and which callers may make it. A
caller who may not see the object is told it does not exist (404); one who may see it but not
make that change is refused (403); either way nothing is written. The allowed callers succeed
from a state where the change is valid, built by the same table's steps.

Every case runs on SQLite and PostgreSQL. The forbidden calls share one scene per backend (the
module's `world`); each allowed call gets fresh objects of its own in that database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from uuid import uuid4

import httpx
import pytest
import pytest_asyncio

from proto.actor import Role
from services.ledger.main import create_app
from services.ledger.settings import LedgerSettings
from tests.support.actors import AUDIT_OFFICE_ID, CIVIL_AFFAIRS_ID, WUHOU_FINANCE_ID
from tests.support.catalog import Parties, seed_parties
from tests.support.grants_api import REPORT_SHA256, grant_body
from tests.support.inprocess import client_for
from tests.support.ledger_api import cny, contract_body, ok
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
FINANCE, CIVIL_AFFAIRS, STREET, COMMUNITY, PROVIDER, AUDITOR, SERVICE = (
    Role.FINANCE,
    Role.CIVIL_AFFAIRS,
    Role.STREET,
    Role.COMMUNITY,
    Role.PROVIDER,
    Role.AUDITOR,
    Role.SERVICE,
)
OVERSEERS = frozenset({FINANCE, AUDITOR, SERVICE})
"""The policy's readers of everything in the ledger; they still change nothing not theirs."""

# Callers of the other organization of a role that is not a party in the scene.
JINJIANG_FINANCE_ID = "7d0f5a8e-1f3b-4c55-9a1e-2014f1a4ce02"
NOTIFIER_SERVICE_ID = "7d0f5a8e-1f3b-4c55-9a1e-20145e7c1ce1"

in_world = pytest.mark.asyncio(loop_scope="module")

ALLOCATED, ESTIMATED, OFFERED, VALUE = "1000000.00", "400000.00", "380000.00", "380000.00"
DELIVERED = PAID = TRANCHE = "30000.00"
GRANTED, SPENT = "46000.00", "28000.00"
OPENS_AT, CLOSES_AT = "2014-04-01T09:00:00+08:00", "2014-04-10T17:00:00+08:00"
PUBLICITY_ENDS_AT = "2014-04-13T17:00:00+08:00"
PROPOSAL_SHA256 = "c" * 64


# --- scenes: the objects a request acts on ------------------------------------------------


@dataclass
class Scene:
    """A street office's objects in the ledger, as far as a story has gone; empty until made."""

    parties: Parties
    budget: JSON = field(default_factory=dict)
    allocation: JSON = field(default_factory=dict)
    project: JSON = field(default_factory=dict)
    application_id: str = ""
    objection_id: str = ""
    contract: JSON = field(default_factory=dict)
    delivery_id: str = ""
    payment_reference: str = ""
    grant: JSON = field(default_factory=dict)

    def organization(self, role: Role) -> str:
        """The organization that is party to this scene's objects in a role."""
        return {
            FINANCE: WUHOU_FINANCE_ID,
            STREET: self.parties.street_office_id,
            COMMUNITY: self.parties.community_id,
            PROVIDER: self.parties.provider_id,
        }[role]

    def own(self) -> dict[Role, str]:
        """The scene's party organization of each role that has one."""
        return {role: self.organization(role) for role in (FINANCE, STREET, COMMUNITY, PROVIDER)}


Step = Callable[[httpx.AsyncClient, Scene], Awaitable[None]]


@dataclass(frozen=True)
class Target:
    """What a request acts on: who is party to it, and whether only they (and overseers) see it.

    For a create, the parties are the organizations its body names; for a budget, which names
    none, the finance bureau that will hold it: any finance bureau may open its own.
    """

    kind: str
    parties: frozenset[Role]
    private: bool = False
    id: Callable[[Scene], str] | None = None


NEW_BUDGET = Target("new budget", frozenset({FINANCE}))
BUDGET = Target("budget", frozenset({FINANCE}), id=lambda s: str(s.budget["id"]))
NEW_PROJECT = Target("new project", frozenset({STREET}))
PROJECT = Target("project", frozenset({STREET, PROVIDER}), id=lambda s: str(s.project["id"]))
NEW_CONTRACT = Target("new contract", frozenset({STREET, COMMUNITY, PROVIDER}))
CONTRACT = Target(
    "contract",
    frozenset({STREET, COMMUNITY, PROVIDER}),
    private=True,
    id=lambda s: str(s.contract["id"]),
)
NEW_GRANT = Target("new grant", frozenset({STREET, PROVIDER}))
GRANT = Target(
    "grant", frozenset({STREET, PROVIDER}), private=True, id=lambda s: str(s.grant["id"])
)
FEED = Target("feed", frozenset())


@dataclass(frozen=True)
class Write:
    """A write endpoint of the ledger in the matrix."""

    operation: str
    path: Callable[[Scene], str]
    body: Callable[[Scene], JSON]
    on: Target
    allowed: frozenset[tuple[Role, Relation]]
    ready: tuple[Step, ...]
    """Steps from nothing to a scene where the allowed callers can make this change."""
    then: Callable[[JSON, Caller], None] | None = None
    """A further check of what an allowed caller gets back."""

    def __str__(self) -> str:
        return self.operation


def only(*callers: tuple[Role, Relation]) -> frozenset[tuple[Role, Relation]]:
    return frozenset(callers)


# --- the steps of the ledger's stories, each an allowed write ----------------------------


async def act(client: httpx.AsyncClient, scene: Scene, operation: str) -> JSON:
    """Make a write as the party of the scene allowed to make it; fails unless it is created."""
    write = WRITES[operation]
    role = next(role for role in Role if (role, OWN) in write.allowed)
    caller = Caller(role, OWN, scene.organization(role))
    response = await client.post(write.path(scene), json=write.body(scene), headers=caller.headers)
    result: JSON = ok(response)
    return result


async def open_budget(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.budget = await act(client, scene, "openBudget")


async def allocate(client: httpx.AsyncClient, scene: Scene) -> None:
    budget = await act(client, scene, "allocate")
    street = scene.parties.street_office_id
    scene.allocation = next(a for a in budget["allocations"] if a["street_office_id"] == street)


async def draft(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.project = await act(client, scene, "openProject")


async def draft_direct(client: httpx.AsyncClient, scene: Scene) -> None:
    body = {
        **project_body(scene),
        "method": "direct_entrustment",
        "justification": "the center already runs the street's home-care center",
        "applications_open_at": None,
        "applications_close_at": None,
        "fair": None,
    }
    scene.project = ok(await client.post("/projects", json=body, headers=scene.parties.street))


async def publish(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.project = await act(client, scene, "publishProject")


async def apply(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.application_id = str((await act(client, scene, "applyToProject"))["id"])


async def close(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.project = await act(client, scene, "closeApplications")


async def evaluate(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.project = await act(client, scene, "evaluateProject")


async def award(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.project = await act(client, scene, "awardProject")


async def object_to_award(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.project = await act(client, scene, "lodgeObjection")
    scene.objection_id = str(scene.project["objections"][-1]["id"])


async def entrust(client: httpx.AsyncClient, scene: Scene) -> None:
    await draft_direct(client, scene)
    scene.project = await act(client, scene, "awardDirectly")


async def sign(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.contract = await act(client, scene, "signContract")


async def activate(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.contract = await act(client, scene, "activateContract")


async def deliver(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.delivery_id = str((await act(client, scene, "reportDelivery"))["id"])


async def accept(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "acceptDelivery")


async def pay(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.payment_reference = str((await act(client, scene, "recordPayment"))["reference"])


async def grant(client: httpx.AsyncClient, scene: Scene) -> None:
    scene.grant = await act(client, scene, "awardGrant")


async def disburse(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "disburseTranche")


async def report_use(client: httpx.AsyncClient, scene: Scene) -> None:
    await act(client, scene, "reportGrantUse")


FUNDED = (open_budget, allocate)
DRAFTED = (*FUNDED, draft)
APPLIED = (*DRAFTED, publish, apply)
CLOSED = (*APPLIED, close)
AWARDED = (*CLOSED, evaluate, award)
SIGNED = (*FUNDED, entrust, sign)
ACTIVE = (*SIGNED, activate)
DELIVERED_ONCE = (*ACTIVE, deliver)
ACCEPTED = (*DELIVERED_ONCE, accept)
GRANTED_ONCE = (*FUNDED, grant)
DISBURSED = (*GRANTED_ONCE, disburse)


async def reach(client: httpx.AsyncClient, parties: Parties, steps: tuple[Step, ...]) -> Scene:
    """A fresh scene of these parties, taken through the steps."""
    scene = Scene(parties)
    for step in steps:
        await step(client, scene)
    return scene


# --- request bodies --------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:10]}"


def budget_body(scene: Scene) -> JSON:
    return {
        "year": 2014,
        "purpose": "push-down services",
        "title": "Wuhou district 2014: services pushed down to communities",
        "sources": [
            {"kind": "district_finance", "name": "Wuhou district finance", "amount": cny(ALLOCATED)}
        ],
        "occurred_at": "2014-01-01T09:00:00+08:00",
    }


def project_body(scene: Scene) -> JSON:
    return {
        "reference": unique("WH-2014-P"),
        "title": "Home care for elderly people on minimum living allowance",
        "purchaser_id": scene.parties.street_office_id,
        "budget_id": scene.budget["id"],
        "allocation_id": scene.allocation["id"],
        "item_ids": [scene.parties.item_id],
        "estimated_value": cny(ESTIMATED),
        "method": "open_call",
        "eligible_tracks": ["registered"],
        "applications_open_at": OPENS_AT,
        "applications_close_at": CLOSES_AT,
        "fair": "Chengdu 2014",
        "occurred_at": "2014-03-31T12:00:00+08:00",
    }


def delivery_body(scene: Scene) -> JSON:
    return {
        "period_start": "2014-05-01",
        "period_end": "2014-05-31",
        "quantity": 120,
        "unit": "person-times",
        "amount": cny(DELIVERED),
        "evidence_sha256": ["0" * 64],
        "occurred_at": "2014-06-02T10:00:00+08:00",
    }


def at(moment: str, **fields: object) -> Callable[[Scene], JSON]:
    """A body builder for a body that names no object: when, and the given fields."""
    return lambda _: {**fields, "occurred_at": moment}


def holder_is_caller(budget: JSON, caller: Caller) -> None:
    assert budget["holder_id"] == caller.organization_id, budget


def project_path(suffix: str) -> Callable[[Scene], str]:
    return lambda s: f"/projects/{s.project['id']}/{suffix}"


def contract_path(suffix: str) -> Callable[[Scene], str]:
    return lambda s: f"/contracts/{s.contract['id']}/{suffix}"


def delivery_path(suffix: str) -> Callable[[Scene], str]:
    return lambda s: f"/contracts/{s.contract['id']}/deliveries/{s.delivery_id}/{suffix}"


def grant_path(suffix: str) -> Callable[[Scene], str]:
    return lambda s: f"/grants/{s.grant['id']}/{suffix}"


# --- the table: every write endpoint of the ledger ---------------------------------------

TABLE = [
    # Budgets: any finance bureau opens its own; only the holder changes one.
    Write(
        "openBudget",
        lambda s: "/budgets",
        budget_body,
        NEW_BUDGET,
        only((FINANCE, OWN), (FINANCE, OTHER)),
        (),
        then=holder_is_caller,
    ),
    Write(
        "adjustBudget",
        lambda s: f"/budgets/{s.budget['id']}/adjustments",
        at(
            "2014-06-30T09:00:00+08:00",
            source_name="Wuhou district finance",
            direction="increase",
            amount=cny("100000.00"),
            reason="mid-year supplementary appropriation",
        ),
        BUDGET,
        only((FINANCE, OWN)),
        (open_budget,),
    ),
    Write(
        "allocate",
        lambda s: f"/budgets/{s.budget['id']}/allocations",
        lambda s: {
            "street_office_id": s.parties.street_office_id,
            "amount": cny(ALLOCATED),
            "occurred_at": "2014-03-31T09:00:00+08:00",
        },
        BUDGET,
        only((FINANCE, OWN)),
        (open_budget,),
    ),
    Write(
        "adjustAllocation",
        lambda s: f"/budgets/{s.budget['id']}/allocations/{s.allocation['id']}/adjustments",
        at(
            "2014-07-01T09:00:00+08:00",
            direction="decrease",
            amount=cny("50000.00"),
            reason="moved to the street's winter relief",
        ),
        BUDGET,
        only((FINANCE, OWN)),
        FUNDED,
    ),
    # Purchase projects: the purchasing street office drives them; applicants apply and object.
    Write(
        "openProject",
        lambda s: "/projects",
        project_body,
        NEW_PROJECT,
        only((STREET, OWN)),
        FUNDED,
    ),
    Write(
        "publishProject",
        project_path("publication"),
        at("2014-03-31T13:00:00+08:00"),
        PROJECT,
        only((STREET, OWN)),
        DRAFTED,
    ),
    Write(
        "applyToProject",
        project_path("applications"),
        lambda s: {
            "provider_id": s.parties.provider_id,
            "price": cny(OFFERED),
            "proposal_sha256": PROPOSAL_SHA256,
            "occurred_at": "2014-04-03T10:00:00+08:00",
        },
        PROJECT,
        only((PROVIDER, OWN)),
        (*DRAFTED, publish),
    ),
    Write(
        "withdrawApplication",
        lambda s: f"/projects/{s.project['id']}/applications/{s.application_id}/withdrawal",
        lambda s: {
            "provider_id": s.parties.provider_id,
            "occurred_at": "2014-04-05T10:00:00+08:00",
        },
        PROJECT,
        only((PROVIDER, OWN)),
        APPLIED,
    ),
    Write(
        "closeApplications",
        project_path("closure"),
        at(CLOSES_AT),
        PROJECT,
        only((STREET, OWN)),
        APPLIED,
    ),
    Write(
        "evaluateProject",
        project_path("evaluation"),
        lambda s: {
            "panel": ["Civil affairs bureau", "Street office", "Social work expert"],
            "scores": [
                {
                    "application_id": s.application_id,
                    "score": 92,
                    "acceptable": True,
                    "reason": "runs the home-care center; trained staff",
                }
            ],
            "occurred_at": "2014-04-11T10:00:00+08:00",
        },
        PROJECT,
        only((STREET, OWN)),
        CLOSED,
    ),
    Write(
        "awardProject",
        project_path("award"),
        lambda s: {
            "application_id": s.application_id,
            "publicity_ends_at": PUBLICITY_ENDS_AT,
            "occurred_at": "2014-04-11T12:00:00+08:00",
        },
        PROJECT,
        only((STREET, OWN)),
        (*CLOSED, evaluate),
    ),
    Write(
        "awardDirectly",
        project_path("direct-award"),
        lambda s: {
            "provider_id": s.parties.provider_id,
            "price": cny(VALUE),
            "occurred_at": "2014-04-10T09:00:00+08:00",
        },
        PROJECT,
        only((STREET, OWN)),
        (*FUNDED, draft_direct),
    ),
    Write(
        "lodgeObjection",
        project_path("objections"),
        lambda s: {
            "provider_id": s.parties.provider_id,
            "text": "the evaluation ignored our staff's qualifications",
            "occurred_at": "2014-04-12T09:00:00+08:00",
        },
        PROJECT,
        only((PROVIDER, OWN)),
        AWARDED,
    ),
    Write(
        "answerObjection",
        lambda s: f"/projects/{s.project['id']}/objections/{s.objection_id}/answer",
        at(
            "2014-04-13T09:00:00+08:00",
            answer="the panel weighed every qualification; see its reasons",
        ),
        PROJECT,
        only((STREET, OWN)),
        (*AWARDED, object_to_award),
    ),
    Write(
        "cancelProject",
        project_path("cancellation"),
        at("2014-04-02T09:00:00+08:00", reason="the street's needs assessment changed"),
        PROJECT,
        only((STREET, OWN)),
        DRAFTED,
    ),
    Write(
        "declareUnsuccessful",
        project_path("failure"),
        at("2014-04-11T09:00:00+08:00", reason="no acceptable application"),
        PROJECT,
        only((STREET, OWN)),
        CLOSED,
    ),
    # Contracts: the purchasing street office signs and decides; its implementer or provider
    # reports deliveries.
    Write(
        "signContract",
        lambda s: "/contracts",
        lambda s: contract_body(s.budget["id"], s.allocation, VALUE, s.parties, s.project),
        NEW_CONTRACT,
        only((STREET, OWN)),
        (*FUNDED, entrust),
    ),
    Write(
        "activateContract",
        contract_path("activation"),
        at("2014-04-15T09:00:00+08:00"),
        CONTRACT,
        only((STREET, OWN)),
        SIGNED,
    ),
    Write(
        "completeContract",
        contract_path("completion"),
        at("2014-12-31T17:00:00+08:00"),
        CONTRACT,
        only((STREET, OWN)),
        ACTIVE,
    ),
    Write(
        "terminateContract",
        contract_path("termination"),
        at("2014-09-30T17:00:00+08:00", reason="the provider's centre closed"),
        CONTRACT,
        only((STREET, OWN)),
        ACTIVE,
    ),
    Write(
        "reportDelivery",
        contract_path("deliveries"),
        delivery_body,
        CONTRACT,
        only((COMMUNITY, OWN), (PROVIDER, OWN)),
        ACTIVE,
    ),
    Write(
        "acceptDelivery",
        delivery_path("acceptance"),
        at("2014-06-10T10:00:00+08:00", score=90),
        CONTRACT,
        only((STREET, OWN)),
        DELIVERED_ONCE,
    ),
    Write(
        "rejectDelivery",
        delivery_path("rejection"),
        at("2014-06-10T10:00:00+08:00", reason="no sign-in sheets for the visits"),
        CONTRACT,
        only((STREET, OWN)),
        DELIVERED_ONCE,
    ),
    Write(
        "reverseAcceptance",
        delivery_path("acceptance-reversal"),
        at("2014-06-15T10:00:00+08:00", reason="accepted the wrong month's report"),
        CONTRACT,
        only((STREET, OWN)),
        ACCEPTED,
    ),
    Write(
        "recordPayment",
        contract_path("payments"),
        lambda s: {
            "reference": unique("GK-2014-06"),
            "amount": cny(PAID),
            "occurred_at": "2014-06-20T10:00:00+08:00",
        },
        CONTRACT,
        only((STREET, OWN)),
        ACCEPTED,
    ),
    Write(
        "reversePayment",
        lambda s: f"/contracts/{s.contract['id']}/payments/{s.payment_reference}/reversal",
        at("2014-06-25T10:00:00+08:00", reason="returned by the bank: wrong account"),
        CONTRACT,
        only((STREET, OWN)),
        (*ACCEPTED, pay),
    ),
    # Grants: the granting street office awards and pays out; its grantee reports on use.
    Write(
        "awardGrant",
        lambda s: "/grants",
        lambda s: grant_body(s.budget["id"], s.allocation, GRANTED, s.parties),
        NEW_GRANT,
        only((STREET, OWN)),
        FUNDED,
    ),
    Write(
        "disburseTranche",
        grant_path("tranches"),
        lambda s: {
            "reference": unique("GK-2014-05"),
            "amount": cny(TRANCHE),
            "occurred_at": "2014-05-20T10:00:00+08:00",
        },
        GRANT,
        only((STREET, OWN)),
        GRANTED_ONCE,
    ),
    Write(
        "reportGrantUse",
        grant_path("reports"),
        at(
            "2014-12-15T10:00:00+08:00",
            report_sha256=REPORT_SHA256,
            summary="35 activities, 325 members, 13,600 person-times served",
            spent=cny(SPENT),
        ),
        GRANT,
        only((PROVIDER, OWN)),
        DISBURSED,
    ),
    Write(
        "closeGrant",
        grant_path("closure"),
        at("2014-12-20T10:00:00+08:00"),
        GRANT,
        only((STREET, OWN)),
        (*DISBURSED, report_use),
    ),
    Write(
        "revokeGrant",
        grant_path("revocation"),
        at("2014-06-01T10:00:00+08:00", reason="the grantee's registration was revoked"),
        GRANT,
        only((STREET, OWN)),
        GRANTED_ONCE,
    ),
]
WRITES = {write.operation: write for write in TABLE}

# Every write, first on the contract and grant then on the open call, so that the scene's
# project is the open call (with an application and an objection) and its contract is paid.
WORLD = (
    *(*ACCEPTED, pay, grant, disburse),
    *(draft, publish, apply, close, evaluate, award, object_to_award),
)


def refusal(write: Write, caller: Caller) -> int | None:
    """The status the policy has for this caller making this change: None when allowed."""
    if (caller.role, caller.relation) in write.allowed:
        return None
    sees = not write.on.private or caller.role in OVERSEERS or caller.relation is OWN
    return 403 if sees else 404


ALLOWED = [
    pytest.param(write, role, relation, id=f"{write}-{role.value}-{relation.value}")
    for write in TABLE
    for role, relation in sorted(write.allowed)
]

LEDGER_DOCUMENT = create_app(
    LedgerSettings(database_url="sqlite://", catalog_url="http://127.0.0.1:9")
).openapi()
LEDGER_OPERATIONS = operations(LEDGER_DOCUMENT)
HEALTH = {"healthz", "readyz"}


# --- the world: one scene per backend for the forbidden calls ----------------------------


@dataclass
class World:
    """A ledger on one backend, with our street office's scene and another's."""

    client: httpx.AsyncClient
    scene: Scene
    theirs: Scene

    def others(self) -> dict[Role, str]:
        """For each role, an organization that is not party to our scene's objects."""
        return {
            FINANCE: JINJIANG_FINANCE_ID,
            CIVIL_AFFAIRS: CIVIL_AFFAIRS_ID,
            STREET: self.theirs.parties.street_office_id,
            COMMUNITY: self.theirs.parties.community_id,
            PROVIDER: self.theirs.parties.provider_id,
            AUDITOR: AUDIT_OFFICE_ID,
            SERVICE: NOTIFIER_SERVICE_ID,
        }

    def callers(self, on: Target, scene: Scene | None = None) -> Iterator[Caller]:
        """Every role, as the scene's own party where it has one and as another organization."""
        return callers(on.parties, (scene or self.scene).own(), self.others())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(module_database_url: str, catalog_url: str) -> AsyncIterator[World]:
    app = create_app(LedgerSettings(database_url=module_database_url, catalog_url=catalog_url))
    async with client_for(app) as client:
        scene = await reach(client, seed_parties(catalog_url), WORLD)
        theirs = await reach(client, seed_parties(catalog_url), (*ACCEPTED, grant))
        yield World(client, scene, theirs)


# --- the table covers the ledger ---------------------------------------------------------


# POSTs that record nothing in the ledger itself, each with its own test of who may call it:
# taking a checkpoint signs the log's state (tests/integration/test_audit_log.py).
NOT_LEDGER_WRITES = {"takeCheckpoint"}


def test_every_write_endpoint_of_the_ledger_has_a_row_in_the_matrix() -> None:
    assert set(WRITES) == post_operations(LEDGER_DOCUMENT) - NOT_LEDGER_WRITES


def test_each_row_calls_its_own_endpoint_and_lets_someone_make_the_change() -> None:
    placeholder = Scene(
        Parties(*(str(uuid4()) for _ in range(5))),
        budget={"id": str(uuid4())},
        allocation={"id": str(uuid4())},
        project={"id": str(uuid4())},
        application_id=str(uuid4()),
        objection_id=str(uuid4()),
        contract={"id": str(uuid4())},
        delivery_id=str(uuid4()),
        payment_reference=unique("GK"),
        grant={"id": str(uuid4())},
    )
    for write in TABLE:
        method, template = LEDGER_OPERATIONS[write.operation]
        assert method == "POST"
        assert template_pattern(template).match(write.path(placeholder)), write
        assert write.allowed, write
        # "own" is only a relation for the roles party to the object.
        assert all(role in write.on.parties for role, r in write.allowed if r is OWN), write


# --- writes ------------------------------------------------------------------------------


@in_world
@pytest.mark.parametrize("write", TABLE, ids=str)
async def test_callers_without_the_right_role_or_organization_are_refused_and_nothing_is_written(
    world: World, write: Write
) -> None:
    client, scene = world.client, world.scene
    path, body = write.path(scene), write.body(scene)
    head = await feed_head(client)
    wrong: list[str] = []
    for caller in world.callers(write.on):
        status = refusal(write, caller)
        if status is None:
            continue
        response = await client.post(path, json=body, headers=caller.headers)
        wrong += [f"{caller}: {problem}" for problem in refusal_problems(response, status)]
        if status == 404 and response.status_code == 404 and write.on.id is not None:
            # Exactly as if it did not exist: the same answer as for an id never used.
            real, ghost = write.on.id(scene), str(uuid4())
            missing = await client.post(
                path.replace(real, ghost), json=body, headers=caller.headers
            )
            if json.loads(response.text.replace(real, ghost)) != missing.json():
                wrong.append(f"{caller}: {response.text} differs from {missing.text}")
        now = await feed_head(client)
        if now != head:
            wrong.append(f"{caller}: the ledger recorded events {head + 1}..{now}")
            head = now
    assert not wrong, "\n".join(wrong)


@in_world
@pytest.mark.parametrize(("write", "role", "relation"), ALLOWED)
async def test_the_responsible_party_makes_the_change_and_the_ledger_records_who(
    world: World, write: Write, role: Role, relation: Relation
) -> None:
    client = world.client
    scene = await reach(client, world.scene.parties, write.ready)
    caller = next(
        c for c in world.callers(write.on, scene) if (c.role, c.relation) == (role, relation)
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
    if write.then is not None:
        write.then(response.json(), caller)


@in_world
async def test_a_provider_cannot_withdraw_another_providers_application(world: World) -> None:
    client = world.client
    scene = await reach(client, world.scene.parties, APPLIED)
    rival = world.theirs.parties
    head = await feed_head(client)
    response = await client.post(
        f"/projects/{scene.project['id']}/applications/{scene.application_id}/withdrawal",
        json={"provider_id": rival.provider_id, "occurred_at": "2014-04-05T10:00:00+08:00"},
        headers=rival.provider,
    )
    assert await feed_head(client) == head
    assert not refusal_problems(response, 403), response.text


# --- reads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A read endpoint in the matrix, and what a caller allowed to read it must be shown."""

    operation: str
    path: Callable[[Scene], str]
    on: Target
    shows: Callable[[Scene], str] | None
    overseers_only: bool = False

    def __str__(self) -> str:
        return self.operation


READS = [
    Read("listBudgets", lambda s: "/budgets?limit=1000", BUDGET, BUDGET.id),
    Read("getBudget", lambda s: f"/budgets/{s.budget['id']}", BUDGET, BUDGET.id),
    Read("listProjects", lambda s: "/projects?limit=1000", PROJECT, PROJECT.id),
    Read("getProject", lambda s: f"/projects/{s.project['id']}", PROJECT, PROJECT.id),
    Read("getContract", lambda s: f"/contracts/{s.contract['id']}", CONTRACT, CONTRACT.id),
    Read("listDeliveries", contract_path("deliveries"), CONTRACT, lambda s: s.delivery_id),
    Read(
        "getDelivery",
        lambda s: f"/contracts/{s.contract['id']}/deliveries/{s.delivery_id}",
        CONTRACT,
        lambda s: s.delivery_id,
    ),
    Read("listPayments", contract_path("payments"), CONTRACT, lambda s: s.payment_reference),
    Read(
        "getPayment",
        lambda s: f"/contracts/{s.contract['id']}/payments/{s.payment_reference}",
        CONTRACT,
        lambda s: s.payment_reference,
    ),
    Read("getGrant", lambda s: f"/grants/{s.grant['id']}", GRANT, GRANT.id),
    Read(
        "readStream",
        lambda s: f"/streams/{s.contract['id']}/events",
        CONTRACT,
        CONTRACT.id,
        overseers_only=True,
    ),
    Read("readFeed", lambda s: "/events", FEED, None, overseers_only=True),
]


def read_status(read: Read, caller: Caller) -> int:
    """200 for those the policy lets read it; 403 or 404 (as if missing) for the others."""
    if read.overseers_only:
        return 200 if caller.role in OVERSEERS else 403
    if not read.on.private or caller.role in OVERSEERS or caller.relation is OWN:
        return 200
    return 404


@in_world
@pytest.mark.parametrize("read", READS, ids=str)
async def test_only_parties_and_overseers_read_contracts_grants_and_the_feed(
    world: World, read: Read
) -> None:
    client, scene = world.client, world.scene
    path = read.path(scene)
    assert template_pattern(LEDGER_OPERATIONS[read.operation][1]).match(path.split("?")[0])
    wrong: list[str] = []
    for caller in world.callers(read.on):
        status = read_status(read, caller)
        response = await client.get(path, headers=caller.headers)
        if status != 200:
            wrong += [f"{caller}: {problem}" for problem in refusal_problems(response, status)]
        elif response.status_code != 200:
            wrong.append(f"{caller}: answered {response.status_code}: {response.text[:300]}")
        elif read.shows is not None and read.shows(scene) not in response.text:
            wrong.append(f"{caller}: the answer does not show {read.shows(scene)}")
    assert not wrong, "\n".join(wrong)


@dataclass(frozen=True)
class Listing:
    """A list endpoint, the roles whose own objects it lists, and the field naming them."""

    path: str
    key: str
    own_by: dict[Role, str]

    def __str__(self) -> str:
        return self.path


LISTINGS = [
    Listing(
        "/contracts",
        "contract",
        {STREET: "purchaser_id", COMMUNITY: "implementer_id", PROVIDER: "provider_id"},
    ),
    Listing("/grants", "grant", {STREET: "grantor_id", PROVIDER: "grantee_id"}),
]


@in_world
@pytest.mark.parametrize("listing", LISTINGS, ids=str)
async def test_lists_show_parties_only_their_own_and_overseers_everything(
    world: World, listing: Listing
) -> None:
    client, ours, theirs = world.client, world.scene, world.theirs
    our_id = str(getattr(ours, listing.key)["id"])
    their_id = str(getattr(theirs, listing.key)["id"])
    for role in Role:
        organization = ours.own().get(role, world.others()[role])
        caller = Caller(role, OWN if role in ours.own() else OTHER, organization)
        response = await client.get(listing.path, params={"limit": 1000}, headers=caller.headers)
        if role not in OVERSEERS and role not in listing.own_by:
            assert not refusal_problems(response, 403), (caller, response.text)
            continue
        items = ok(response, 200)["items"]
        shown = {item["id"] for item in items}
        if role in OVERSEERS:
            assert {our_id, their_id} <= shown, caller
            continue
        field_name = listing.own_by[role]
        assert our_id in shown, caller
        assert their_id not in shown, caller
        assert all(item[field_name] == organization for item in items), caller
        # Asking for another party's objects shows nothing, rather than theirs.
        theirs_only = await client.get(
            listing.path,
            params={field_name: theirs.organization(role)},
            headers=caller.headers,
        )
        assert ok(theirs_only, 200)["items"] == [], caller


# --- authentication ----------------------------------------------------------------------


@in_world
@pytest.mark.parametrize("operation", sorted(set(LEDGER_OPERATIONS) - HEALTH))
async def test_every_endpoint_asks_for_a_valid_bearer_token(world: World, operation: str) -> None:
    method, template = LEDGER_OPERATIONS[operation]
    path = with_random_ids(template)
    body: JSON | None = {} if method == "POST" else None
    forged = forged_token(AUDITOR, AUDIT_OFFICE_ID)
    for headers in ({}, forged):
        response = await world.client.request(method, path, json=body, headers=headers)
        assert not unauthenticated_problems(response), (headers, response.text)


@in_world
@pytest.mark.parametrize("operation", sorted(HEALTH))
async def test_health_checks_answer_without_a_token(world: World, operation: str) -> None:
    method, path = LEDGER_OPERATIONS[operation]
    response = await world.client.request(method, path)
    assert response.status_code == 200, response.text
