"""Every service answers its health checks on its own database, on SQLite and PostgreSQL, to
anyone; everything else but the community guide needs a valid bearer token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from proto.actor import Role
from services.catalog.main import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.common.auth import AuthSettings, mint_token
from services.ledger.main import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from services.notifier.main import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from tests.support.actors import CIVIL_AFFAIRS, FINANCE
from tests.support.catalog import Parties
from tests.support.inprocess import client_for, served
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.asyncio

SERVICES: dict[str, Callable[[str], FastAPI]] = {
    "catalog": lambda url: create_catalog(CatalogSettings(database_url=url)),
    "ledger": lambda url: create_ledger(LedgerSettings(database_url=url)),
    "notifier": lambda url: create_notifier(NotifierSettings(database_url=url)),
}
# A loopback port nothing listens on: a service called there does not answer.
NOBODY = "http://127.0.0.1:9"


@pytest.fixture
def ledger_url(catalog_url: str, tmp_path: Path) -> Iterator[str]:
    """A ledger served over real HTTP, for the notifier to depend on."""
    database = f"sqlite:///{tmp_path}/ledger.sqlite3"
    with served(
        create_ledger(LedgerSettings(database_url=database, catalog_url=catalog_url))
    ) as url:
        yield url


def wired(service: str, database_url: str, catalog_url: str, ledger_url: str) -> FastAPI:
    """The service on its database, calling the catalog and the ledger it depends on."""
    if service == "ledger":
        return create_ledger(LedgerSettings(database_url=database_url, catalog_url=catalog_url))
    if service == "notifier":
        settings = NotifierSettings(
            database_url=database_url, ledger_url=ledger_url, catalog_url=catalog_url, worker=False
        )
        return create_notifier(settings)
    return SERVICES[service](database_url)


DEPENDS_ON = {"catalog": [], "ledger": ["catalog"], "notifier": ["ledger", "catalog"]}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_health_and_readiness(
    service: str, database_url: str, catalog_url: str, ledger_url: str
) -> None:
    # Without a token: probes and load balancers hold none.
    async with client_for(wired(service, database_url, catalog_url, ledger_url)) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "service": service})
    assert (ready.status_code, ready.json()["status"]) == (200, "ready"), ready.text
    expected = dict.fromkeys(["database", *DEPENDS_ON[service]], "ok")
    assert ready.json()["checks"] == expected


@pytest.mark.parametrize("service", ["ledger", "notifier"])
async def test_not_ready_while_a_service_it_calls_does_not_answer(
    service: str, database_url: str, catalog_url: str
) -> None:
    # The notifier's ledger, and the ledger's catalog, are nowhere.
    app = (
        create_ledger(LedgerSettings(database_url=database_url, catalog_url=NOBODY))
        if service == "ledger"
        else create_notifier(
            NotifierSettings(
                database_url=database_url, ledger_url=NOBODY, catalog_url=catalog_url, worker=False
            )
        )
    )
    async with client_for(app) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    missing = "catalog" if service == "ledger" else "ledger"
    assert health.status_code == 200  # alive, so not to be restarted: only not to be sent work
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"][missing].startswith(f"the {missing} at {NOBODY} does not answer")
    assert body["reason"] == f"{missing}: {body['checks'][missing]}"


@pytest.mark.postgres
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_not_ready_once_the_database_is_gone(
    service: str, postgres_server: PostgresServer, catalog_url: str, ledger_url: str
) -> None:
    name = postgres_server.create_database()
    try:
        app = wired(service, postgres_server.url(name), catalog_url, ledger_url)
        async with client_for(app) as client:
            assert (await client.get("/readyz")).status_code == 200
            postgres_server.drop_database(name)
            ready = await client.get("/readyz")
            assert (await client.get("/healthz")).status_code == 200
    finally:
        postgres_server.drop_database(name)
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["reason"]


async def test_unknown_routes_are_problem_404s(database_url: str) -> None:
    async with client_for(SERVICES["catalog"](database_url)) as client:
        response = await client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_ledger_warns_when_it_runs_on_the_development_key(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(SERVICES["ledger"](database_url)):
        pass
    assert "LEDGER_BENEFICIARY_KEY is not set" in caplog.text
    caplog.clear()
    secret = create_ledger(LedgerSettings(database_url=database_url, beneficiary_key="s3cret"))
    async with client_for(secret):
        pass
    assert "LEDGER_BENEFICIARY_KEY" not in caplog.text


def _token(*, secret: str | None = None, audience: str | None = None, ttl_seconds: int) -> str:
    settings = AuthSettings()
    return mint_token(
        secret or settings.jwt_secret.get_secret_value(),
        role=Role.AUDITOR,
        organization_id=uuid4(),
        subject="auditor",
        audience=audience or settings.jwt_audience,
        ttl_seconds=ttl_seconds,
    )


def bad_credentials() -> dict[str, tuple[dict[str, str], str]]:
    """Authorization headers no service accepts, each with the reason it is refused for.

    Minted when asked, so that only the expired token is expired.
    """
    # Well past the 30 seconds of clock skew that verification allows.
    expired = _token(ttl_seconds=-120)
    # Any secret but the configured one; long enough that the JWT library does not warn.
    foreign = _token(
        secret="another-deployment's-secret-which-this-one-never-trusted", ttl_seconds=600
    )
    elsewhere = _token(audience="another-system", ttl_seconds=600)
    missing = "needs an Authorization: Bearer <token> header"
    return {
        "no token": ({}, missing),
        "not a bearer token": ({"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}, missing),
        "not a JWT": ({"Authorization": "Bearer not-a-jwt"}, "not a JWT"),
        "expired": ({"Authorization": f"Bearer {expired}"}, "expired"),
        "signed with another secret": (
            {"Authorization": f"Bearer {foreign}"},
            "not signed by a key this service trusts",
        ),
        "for another audience": ({"Authorization": f"Bearer {elsewhere}"}, "Audience"),
    }


# Per service: protected requests, and headers of a caller who may make the first of them.
PROTECTED: dict[str, tuple[list[tuple[str, str]], dict[str, str]]] = {
    "ledger": ([("GET", "/budgets"), ("GET", "/events"), ("POST", "/budgets")], FINANCE),
    "catalog": (
        [("GET", "/items"), ("GET", "/organizations"), ("GET", "/events"), ("POST", "/items")],
        CIVIL_AFFAIRS,
    ),
}


@pytest.mark.parametrize("service", sorted(PROTECTED))
async def test_protected_endpoints_refuse_callers_without_a_valid_token(
    service: str, tmp_path: Path
) -> None:
    requests, allowed = PROTECTED[service]
    async with client_for(SERVICES[service](f"sqlite:///{tmp_path}/db.sqlite3")) as client:
        for method, path in requests:
            for case, (headers, reason) in bad_credentials().items():
                # A body that is not valid either: an anonymous caller learns nothing from it.
                body = {"nonsense": True} if method == "POST" else None
                response = await client.request(method, path, json=body, headers=headers)
                where = (method, path, case, response.text)
                assert response.status_code == 401, where
                assert response.headers["content-type"] == "application/problem+json", where
                problem = response.json()
                assert problem["status"] == 401, where
                assert reason in problem["detail"], where
                challenge = response.headers["www-authenticate"]
                assert challenge.startswith('Bearer realm="community-ledger"'), where
                if "Bearer " in headers.get("Authorization", ""):
                    assert 'error="invalid_token"' in challenge, where
        # The same request with a valid token goes through: it was the token that was refused.
        method, path = requests[0]
        assert (await client.request(method, path, headers=allowed)).status_code == 200


async def test_the_community_guide_needs_no_token(catalog_url: str, parties: Parties) -> None:
    community = f"/communities/{parties.community_id}"
    async with httpx.AsyncClient(base_url=catalog_url, trust_env=False, timeout=10) as anonymous:
        guide = await anonymous.get(f"{community}/guide")
        page = await anonymous.get(f"{community}/guide", params={"format": "html"})
        # Only the guide: the community's refusals, next to it, need a caller.
        refusals = await anonymous.get(f"{community}/refusals")
    assert guide.status_code == 200, guide.text
    assert guide.json()["community"]["id"] == parties.community_id
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert refusals.status_code == 401
