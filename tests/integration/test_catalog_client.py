"""The ledger's catalog client against real HTTP servers that fail in the ways networks do."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from proto.actor import Role
from proto.catalog import (
    DeliveryMode,
    DutyList,
    ItemDomain,
    ItemKind,
    ItemStatus,
    Organization,
    OrganizationKind,
    ServiceItem,
)
from services.common.auth import AuthSettings, ServiceToken
from services.ledger.catalog import CatalogUnavailable, HttpCatalog
from services.ledger.main import LEDGER_SERVICE_ID
from tests.support.actors import token
from tests.support.catalog import Parties
from tests.support.inprocess import served

SIGNED = datetime(2014, 4, 14, 9, 0, tzinfo=timezone(timedelta(hours=8)))
OFFICE = Organization(
    id=uuid4(), version=1, kind=OrganizationKind.STREET_OFFICE, name="Yulin street office"
)
ITEM = ServiceItem(
    id=uuid4(),
    version=2,
    name="Home visits",
    description="",
    kind=ItemKind.PUBLIC,
    domain=ItemDomain.ELDERLY,
    target_groups=["elderly over 60"],
    delivery_modes=[DeliveryMode.ON_SITE],
    duty_list=DutyList.COMMITTEE_ASSISTING,
    proposed_by=uuid4(),
    status=ItemStatus.ADMITTED,
)
SERVICE_TOKEN = token(Role.SERVICE, LEDGER_SERVICE_ID, "ledger")
"""What the ledger sends when it calls the catalog: a service-role token."""


@dataclass(frozen=True)
class Received:
    """One request as the catalog saw it."""

    path: str
    query: list[tuple[str, str]]
    authorization: str | None


def page(*records: Organization | ServiceItem) -> Response:
    return JSONResponse(
        {"items": [r.model_dump(mode="json") for r in records], "next_cursor": None}
    )


def status(code: int) -> Response:
    return JSONResponse({"detail": f"status {code}"}, status_code=code)


@contextmanager
def fake_catalog(answer: Callable[[int], Response]) -> Iterator[tuple[str, list[Received]]]:
    """A catalog on a real port answering its n-th list request with `answer(n)`."""
    app = FastAPI()
    received: list[Received] = []

    @app.get("/organizations")
    @app.get("/items")
    def listing(request: Request) -> Response:
        received.append(
            Received(
                request.url.path,
                list(request.query_params.multi_items()),
                request.headers.get("authorization"),
            )
        )
        return answer(len(received))

    with served(app) as url:
        yield url, received


def client(
    url: str,
    *,
    timeout: float = 2.0,
    attempts: int = 3,
    token: Callable[[], str] = lambda: SERVICE_TOKEN,
) -> closing[HttpCatalog]:
    return closing(HttpCatalog(url, token=token, timeout=timeout, attempts=attempts, backoff=0.01))


def test_a_503_is_retried_and_the_records_come_back() -> None:
    def answer(n: int) -> Response:
        return status(503) if n == 1 else page(OFFICE)

    with fake_catalog(answer) as (url, received), client(url) as catalog:
        found = catalog.organizations([OFFICE.id], SIGNED)
    assert found == {OFFICE.id: OFFICE}
    assert [r.path for r in received] == ["/organizations", "/organizations"]
    assert [r.authorization for r in received] == [f"Bearer {SERVICE_TOKEN}"] * 2


@pytest.mark.parametrize("code", [502, 503, 504])
@pytest.mark.parametrize("attempts", [1, 3])
def test_a_catalog_that_keeps_failing_is_asked_exactly_attempts_times(
    code: int, attempts: int
) -> None:
    with fake_catalog(lambda _: status(code)) as (url, received):
        with client(url, attempts=attempts) as catalog, pytest.raises(CatalogUnavailable) as raised:
            catalog.items([ITEM.id], SIGNED)
        assert len(received) == attempts
    assert str(raised.value) == (
        f"the catalog at {url} did not answer (HTTP {code}) after {attempts} attempts; "
        "nothing was written, retry later"
    )


def test_a_catalog_slower_than_the_timeout_is_unavailable_and_does_not_hang() -> None:
    release = threading.Event()

    def answer(_: int) -> Response:
        # Held until the test is done, so the server stops at once afterwards.
        release.wait(timeout=10)
        return page(OFFICE)

    with fake_catalog(answer) as (url, received):
        try:
            with client(url, timeout=0.2, attempts=2) as catalog:
                started = time.monotonic()
                with pytest.raises(CatalogUnavailable) as raised:
                    catalog.organizations([OFFICE.id], SIGNED)
                took = time.monotonic() - started
        finally:
            release.set()
        assert len(received) == 2
    assert took < 3, f"the client waited {took:.1f}s for a catalog that never answered"
    assert "ReadTimeout" in str(raised.value)
    assert f"the catalog at {url} did not answer" in str(raised.value)


def test_nothing_listening_is_unavailable_naming_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with client(url, attempts=2) as catalog, pytest.raises(CatalogUnavailable) as raised:
        catalog.organizations([OFFICE.id], SIGNED)
    message = str(raised.value)
    assert message.startswith(f"the catalog at {url} did not answer (ConnectError: ")
    assert message.endswith("after 2 attempts; nothing was written, retry later")


@pytest.mark.parametrize("code", [400, 404, 422])
def test_a_client_error_is_not_retried(code: int) -> None:
    with fake_catalog(lambda _: status(code)) as (url, received):
        with client(url, attempts=3) as catalog, pytest.raises(CatalogUnavailable) as raised:
            catalog.items([ITEM.id], SIGNED)
        assert len(received) == 1
    assert str(raised.value) == (
        f"the catalog at {url} answered /items with HTTP {code}; nothing was written"
    )


def test_the_query_carries_every_id_and_the_time_with_its_zone() -> None:
    ids = [OFFICE.id, uuid4(), uuid4()]
    item_ids = [ITEM.id, uuid4()]

    def answer(n: int) -> Response:
        return page(OFFICE) if n == 1 else page(ITEM)

    with fake_catalog(answer) as (url, received), client(url) as catalog:
        organizations = catalog.organizations(ids, SIGNED)
        items = catalog.items(item_ids, SIGNED)
    assert organizations == {OFFICE.id: OFFICE}
    assert items == {ITEM.id: ITEM}
    assert [r.path for r in received] == ["/organizations", "/items"]
    for request, wanted in zip(received, (ids, item_ids), strict=True):
        assert request.authorization == f"Bearer {SERVICE_TOKEN}"
        assert [v for k, v in request.query if k == "ids"] == [str(i) for i in wanted]
        [as_of] = [v for k, v in request.query if k == "as_of"]
        assert as_of == "2014-04-14T09:00:00+08:00"
        assert datetime.fromisoformat(as_of).utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    "body",
    [
        "<html>proxy error page</html>",
        '{"items": [{"id": "not-a-uuid"}], "next_cursor": null}',
    ],
)
def test_an_unreadable_answer_is_unavailable_not_a_crash(body: str) -> None:
    def answer(_: int) -> Response:
        return Response(body, media_type="application/json")

    with (
        fake_catalog(answer) as (url, received),
        client(url) as catalog,
        pytest.raises(CatalogUnavailable, match="not a page of records"),
    ):
        catalog.items([ITEM.id], SIGNED)
    assert len(received) == 1


def test_fields_a_newer_catalog_adds_are_ignored() -> None:
    def answer(_: int) -> Response:
        record = {**OFFICE.model_dump(mode="json"), "added_in_a_later_version": True}
        return JSONResponse({"items": [record], "next_cursor": None})

    with fake_catalog(answer) as (url, _), client(url) as catalog:
        assert catalog.organizations([OFFICE.id], SIGNED) == {OFFICE.id: OFFICE}


# --- the ledger's token -------------------------------------------------------------------------


def test_every_call_asks_for_the_token_afresh() -> None:
    # A minted token is renewed before it expires: each request must carry the current one.
    issued = iter(["first-token", "second-token", "third-token"])

    def answer(n: int) -> Response:
        return [status(503), page(OFFICE), page(ITEM)][n - 1]

    with (
        fake_catalog(answer) as (url, received),
        client(url, token=lambda: next(issued)) as catalog,
    ):
        assert catalog.organizations([OFFICE.id], SIGNED) == {OFFICE.id: OFFICE}
        assert catalog.items([ITEM.id], SIGNED) == {ITEM.id: ITEM}
    assert [r.authorization for r in received] == [
        "Bearer first-token",
        "Bearer second-token",  # the retry
        "Bearer third-token",
    ]


@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_token_is_unavailable_naming_the_settings_and_not_retried(code: int) -> None:
    with fake_catalog(lambda _: status(code)) as (url, received):
        with client(url, attempts=3) as catalog, pytest.raises(CatalogUnavailable) as raised:
            catalog.organizations([OFFICE.id], SIGNED)
        assert len(received) == 1
    assert str(raised.value) == (
        f"the catalog at {url} refused the ledger's service token (HTTP {code}): check "
        "AUTH_JWT_* and LEDGER_CATALOG_TOKEN; nothing was written"
    )


def test_the_catalog_answers_the_token_the_ledger_mints(catalog_url: str, parties: Parties) -> None:
    minted = ServiceToken(AuthSettings(), LEDGER_SERVICE_ID, "ledger")
    street_id = UUID(parties.street_office_id)
    item_id = UUID(parties.item_id)

    with closing(HttpCatalog(catalog_url, token=minted)) as catalog:
        organizations = catalog.organizations([street_id], SIGNED)
        items = catalog.items([item_id], SIGNED)
    assert list(organizations) == [street_id]
    assert organizations[street_id].kind == OrganizationKind.STREET_OFFICE
    assert list(items) == [item_id]
    assert items[item_id].status == ItemStatus.ADMITTED


REJECTED_TOKENS: dict[str, ServiceToken] = {
    "minted with another secret": ServiceToken(
        AuthSettings(jwt_secret=SecretStr("a-secret-the-catalog-does-not-share-with-the-ledger")),
        LEDGER_SERVICE_ID,
        "ledger",
    ),
    "minted for another audience": ServiceToken(
        AuthSettings(jwt_audience="another-system"), LEDGER_SERVICE_ID, "ledger"
    ),
    "configured, but expired": ServiceToken(
        AuthSettings(),
        LEDGER_SERVICE_ID,
        "ledger",
        configured=SecretStr(
            ServiceToken(AuthSettings(token_ttl_seconds=-3600), LEDGER_SERVICE_ID, "ledger")()
        ),
    ),
    "configured, but not a JWT": ServiceToken(
        AuthSettings(), LEDGER_SERVICE_ID, "ledger", configured=SecretStr("not-a-jwt")
    ),
}


@pytest.mark.parametrize("why", list(REJECTED_TOKENS))
def test_a_catalog_rejecting_the_token_is_unavailable_naming_the_settings(
    catalog_url: str, parties: Parties, why: str
) -> None:
    with (
        closing(HttpCatalog(catalog_url, token=REJECTED_TOKENS[why], backoff=0.01)) as catalog,
        pytest.raises(CatalogUnavailable) as raised,
    ):
        catalog.organizations([UUID(parties.street_office_id)], SIGNED)
    assert str(raised.value) == (
        f"the catalog at {catalog_url} refused the ledger's service token (HTTP 401): check "
        "AUTH_JWT_* and LEDGER_CATALOG_TOKEN; nothing was written"
    )
