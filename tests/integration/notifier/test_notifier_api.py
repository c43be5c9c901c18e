"""The notifier's REST API: subscriptions, their secrets, deliveries, attempts and re-sending."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from proto.actor import Role
from services.common.app import create_sql_service, open_idempotency
from services.common.auth import AuthSettings
from services.notifier.api import deliveries as deliveries_api
from services.notifier.api import subscriptions as subscriptions_api
from services.notifier.secrets import SecretBox
from services.notifier.settings import NotifierSettings
from services.notifier.store.migrate import upgrade
from services.notifier.store.tables import attempts, deliveries, messages, subscriptions
from services.notifier.subscriptions import Subscriptions
from tests.support.actors import AUDITOR, CIVIL_AFFAIRS, FINANCE, WUHOU_FINANCE_ID, acting
from tests.support.inprocess import client_for
from tests.support.ledger_api import ok

pytestmark = pytest.mark.asyncio

OVERLAP = 3600
TARGET = "https://93.184.216.34/webhooks/ledger"  # a public address: no name to resolve
SERVICE = acting(Role.SERVICE, "7d0f5a8e-1f3b-4c55-9a1e-2014f1a4ce99", "notifier-client")
OTHER_FINANCE = acting(Role.FINANCE, "7d0f5a8e-1f3b-4c55-9a1e-2014f1a4ce02", "jinjiang-clerk")
ORG = "7d0f5a8e-1f3b-4c55-9a1e-2014c0de0001"
BODY = {"url": TARGET, "event_types": ["payment.*", "budget.opened"]}
BOX = SecretBox(NotifierSettings().encryption_key.get_secret_value())
POSITIONS = itertools.count(1)


def notifier_app(database_url: str, allowed_targets: str = "") -> FastAPI:
    """The notifier's API alone (no worker), on a migrated database."""
    settings = NotifierSettings(
        database_url=database_url,
        worker=False,
        secret_overlap_seconds=OVERLAP,
        allowed_targets=allowed_targets,
    )

    async def startup(app: FastAPI, engine: AsyncEngine) -> None:
        await upgrade(engine)
        await open_idempotency(app, engine, create=False)
        app.state.subscriptions = Subscriptions(engine, settings)

    return create_sql_service(
        "notifier",
        "Community services notifier",
        "Signed webhooks.",
        settings,
        AuthSettings(),
        routers=[subscriptions_api.router, deliveries_api.router],
        startup=startup,
    )


@pytest.fixture
def app(database_url: str) -> FastAPI:
    return notifier_app(database_url)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


def engine_of(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.engine
    return engine


async def subscribe(client: httpx.AsyncClient, caller: dict[str, str] = FINANCE) -> Any:
    return ok(await client.post("/subscriptions", json=BODY, headers=caller), 201)


async def read(client: httpx.AsyncClient, path: str, caller: dict[str, str] = FINANCE) -> Any:
    """The JSON a GET answers with 200."""
    return ok(await client.get(path, headers=caller), 200)


def ids(items: list[Any]) -> list[str]:
    return [item["id"] for item in items]


async def stored(app: FastAPI, subscription_id: str) -> Any:
    async with engine_of(app).connect() as connection:
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        return (await connection.execute(query)).one()


async def seed_delivery(
    app: FastAPI, subscription_id: str, state: str, created_at: datetime, tries: int = 2
) -> str:
    """A delivery of a `payment.recorded` message, with `tries` failed attempts logged."""
    delivery_id, message_id = str(uuid.uuid4()), "msg_" + uuid.uuid4().hex
    message = {"id": message_id, "feed": "ledger", "position": next(POSITIONS)}
    body = '{"data":{},"type":"payment.recorded"}'
    pending = state == "pending"
    async with engine_of(app).begin() as connection:
        await connection.execute(
            messages.insert().values(
                **message, event_type="payment.recorded", body=body, created_at=created_at
            )
        )
        await connection.execute(
            deliveries.insert().values(
                id=delivery_id,
                subscription_id=subscription_id,
                message_id=message_id,
                state=state,
                attempts=tries,
                next_attempt_at=created_at if pending else None,
                created_at=created_at,
                finished_at=None if pending else created_at + timedelta(hours=1),
            )
        )
        for n in range(tries):
            at = created_at + timedelta(minutes=n)
            await connection.execute(
                attempts.insert().values(
                    delivery_id=delivery_id,
                    attempted_at=at,
                    status=500 + n,
                    latency_ms=100 + n,
                    response_excerpt=f"oops {n}",
                )
            )
    return delivery_id


async def delivery_state(app: FastAPI, delivery_id: str) -> Any:
    async with engine_of(app).connect() as connection:
        query = select(deliveries).where(deliveries.c.id == delivery_id)
        return (await connection.execute(query)).one()


# --- secrets --------------------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_signs_as_standard_webhooks_says(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post("/subscriptions", json=BODY, headers=FINANCE)
    created = ok(response, 201)
    secret = created["secret"]
    assert response.headers["location"] == f"/subscriptions/{created['id']}"
    assert created["state"] == "active"
    assert created["owner_organization_id"] == WUHOU_FINANCE_ID
    assert created["event_types"] == ["payment.*", "budget.opened"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    # Signed by hand as the specification says, verified by its reference library.
    body, msg_id, now = '{"type":"payment.recorded"}', "msg_1", datetime.now(UTC)
    signed = f"{msg_id}.{int(now.timestamp())}.{body}".encode()
    digest = hmac.new(base64.b64decode(secret[6:]), signed, hashlib.sha256).digest()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "payment.recorded"}

    shown = await read(client, response.headers["location"])
    assert all("secret" not in s for s in [shown, *(await read(client, "/subscriptions"))["items"]])
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    row = await stored(app, created["id"])
    assert secret.encode() not in row.secret
    assert BOX.open(row.secret) == secret


async def test_a_retried_create_never_subscribes_twice_nor_keeps_the_secret(
    client: httpx.AsyncClient,
) -> None:
    keyed = {**FINANCE, "Idempotency-Key": "subscribe-1"}
    first = await client.post("/subscriptions", json=BODY, headers=keyed)
    again = await client.post("/subscriptions", json=BODY, headers=keyed)

    assert first.status_code == 201
    assert first.headers["cache-control"] == "no-store"
    # The secret was shown once; the retry learns the request was made, not the secret.
    assert again.status_code == 409
    assert again.headers["idempotent-replayed"] == "true"
    assert "shown only once" in again.json()["detail"]
    assert first.json()["secret"] not in again.text
    assert len((await read(client, "/subscriptions"))["items"]) == 1


async def test_rotation_shows_a_new_secret_and_keeps_the_old_one_for_the_overlap(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    created = await subscribe(client)
    before = datetime.now(UTC)
    rotated = ok(
        await client.post(f"/subscriptions/{created['id']}/secret-rotation", headers=FINANCE)
    )
    after = datetime.now(UTC)

    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + timedelta(seconds=OVERLAP) <= expires <= after + timedelta(seconds=OVERLAP)
    shown = await read(client, f"/subscriptions/{created['id']}")
    assert datetime.fromisoformat(shown["previous_secret_expires_at"]) == expires
    assert "secret" not in shown
    row = await stored(app, created["id"])
    assert BOX.open(row.secret) == rotated["secret"]
    assert BOX.open(row.previous_secret) == created["secret"]


# --- what may be subscribed -----------------------------------------------------------------

REFUSED_TARGETS = {
    "ftp://93.184.216.34/hooks": "http:// or https://",
    "https://user:pass@93.184.216.34/hooks": "credentials",
    "https://93.184.216.34/hooks#part": "fragment",
    "http://127.0.0.1/hooks": "127.0.0.1",
    "http://10.0.0.1/": "10.0.0.1",
    "http://[::1]/": "::1",
    "http://169.254.169.254/latest/meta-data": "169.254.169.254",
    "https://" + "a" * 64 + ".example/": "host name",
}


async def test_unsafe_targets_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
) -> None:
    created = await subscribe(client)
    for url, reason in REFUSED_TARGETS.items():
        response = await client.post("/subscriptions", json={**BODY, "url": url}, headers=FINANCE)
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("target-refused"), url
        assert reason in response.json()["detail"], (url, response.json()["detail"])
        patch = await client.patch(
            f"/subscriptions/{created['id']}", json={"url": url}, headers=FINANCE
        )
        assert patch.status_code == 422, (url, patch.text)
    listed = (await read(client, "/subscriptions"))["items"]
    assert [(s["id"], s["url"]) for s in listed] == [(created["id"], TARGET)]


async def test_an_operator_may_allow_loopback_targets(database_url: str) -> None:
    async with client_for(notifier_app(database_url, "127.0.0.1/32")) as client:
        allowed = {**BODY, "url": "http://127.0.0.1:9000/hooks"}
        made = ok(await client.post("/subscriptions", json=allowed, headers=FINANCE))
        private = {**BODY, "url": "http://10.0.0.1/hooks"}
        refused = await client.post("/subscriptions", json=private, headers=FINANCE)
    assert made["url"] == allowed["url"]
    assert refused.status_code == 422


MALFORMED_PATTERNS = ["payment.re*", "Payment.recorded", "payment..recorded", "**", "*.x", ""]


async def test_malformed_event_patterns_are_refused(client: httpx.AsyncClient) -> None:
    for event_types in [[], ["payment.*"] * 51, *([p] for p in MALFORMED_PATTERNS)]:
        body = {**BODY, "event_types": event_types}
        response = await client.post("/subscriptions", json=body, headers=FINANCE)
        assert response.status_code == 422, (event_types, response.text)
        assert response.json()["invalid-params"][0]["name"].startswith("body.event_types")
    assert (await read(client, "/subscriptions"))["items"] == []


# --- who may do what ------------------------------------------------------------------------


async def test_finance_and_services_subscribe_for_their_own_organization(
    client: httpx.AsyncClient,
) -> None:
    mine = await subscribe(client, FINANCE)
    theirs = await subscribe(client, SERVICE)
    assert theirs["owner_role"] == "service"
    assert theirs["owner_subject"] == "notifier-client"
    assert ids((await read(client, "/subscriptions"))["items"]) == [mine["id"]]
    assert ids((await read(client, "/subscriptions", SERVICE))["items"]) == [theirs["id"]]
    everyone = ids((await read(client, "/subscriptions", AUDITOR))["items"])
    assert everyone == [mine["id"], theirs["id"]]
    path = f"/subscriptions/{mine['id']}"
    assert await read(client, path, AUDITOR) == await read(client, path)


@pytest.mark.parametrize("role", ["street", "provider", "community", "civil-affairs", "auditor"])
async def test_other_roles_may_not_subscribe(client: httpx.AsyncClient, role: str) -> None:
    caller = AUDITOR if role == "auditor" else acting(role, ORG)
    response = await client.post("/subscriptions", json=BODY, headers=caller)
    assert response.status_code == 403, response.text
    assert "finance or service" in response.json()["detail"]
    assert (await read(client, "/subscriptions", AUDITOR))["items"] == []


async def test_without_a_token_nothing_answers(client: httpx.AsyncClient) -> None:
    assert (await client.post("/subscriptions", json=BODY)).status_code == 401
    assert (await client.get("/subscriptions")).status_code == 401
    assert (await client.get(f"/deliveries/{uuid.uuid4()}")).status_code == 401
    assert (await client.get("/subscriptions", headers=CIVIL_AFFAIRS)).status_code == 403


def writes_and_reads(sid: str, delivery: str) -> list[tuple[str, str, Any]]:
    """Every call naming a subscription or a delivery: writes first."""
    since = {"since": "2000-01-01T00:00:00+00:00"}
    return [
        ("PATCH", f"/subscriptions/{sid}", {"state": "disabled"}),
        ("POST", f"/subscriptions/{sid}/secret-rotation", None),
        ("POST", f"/subscriptions/{sid}/resend", since),
        ("POST", f"/deliveries/{delivery}/resend", None),
        ("DELETE", f"/subscriptions/{sid}", None),
        ("GET", f"/subscriptions/{sid}", None),
        ("GET", f"/subscriptions/{sid}/deliveries", None),
        ("GET", f"/deliveries/{delivery}", None),
        ("GET", f"/deliveries/{delivery}/attempts", None),
    ]


async def test_another_organizations_subscription_is_as_if_missing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    created = await subscribe(client)
    sid = created["id"]
    dead = await seed_delivery(app, sid, "dead", datetime.now(UTC))
    for method, path, body in writes_and_reads(sid, dead):
        response = await client.request(method, path, json=body, headers=OTHER_FINANCE)
        assert response.status_code == 404, (method, path, response.text)
    assert await read(client, f"/subscriptions/{sid}") == {
        k: v for k, v in created.items() if k != "secret"
    }
    assert (await delivery_state(app, dead)).state == "dead"


async def test_auditors_read_everything_and_write_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sid = (await subscribe(client))["id"]
    dead = await seed_delivery(app, sid, "dead", datetime.now(UTC))
    for method, path, body in writes_and_reads(sid, dead):
        response = await client.request(method, path, json=body, headers=AUDITOR)
        assert response.status_code == (200 if method == "GET" else 403), (method, path)
    assert ids((await read(client, f"/subscriptions/{sid}/deliveries", AUDITOR))["items"]) == [dead]
    assert len((await read(client, f"/deliveries/{dead}/attempts", AUDITOR))["items"]) == 2
    row = await stored(app, sid)
    assert (row.state, row.previous_secret) == ("active", None)
    assert (await delivery_state(app, dead)).state == "dead"


# --- changing and deleting ------------------------------------------------------------------


async def test_a_patch_changes_only_what_it_names(client: httpx.AsyncClient) -> None:
    budget = str(uuid.uuid4())
    created = await subscribe(client)
    path = f"/subscriptions/{created['id']}"
    changes = {"event_types": ["*", "*"], "budget_id": budget, "organization_id": ORG}
    changed = ok(
        await client.patch(path, json={**changes, "description": " d "}, headers=FINANCE), 200
    )
    assert {name: changed[name] for name in changes} == {**changes, "event_types": ["*"]}
    assert (changed["url"], changed["description"]) == (TARGET, "d")
    cleared = ok(await client.patch(path, json={"budget_id": None}, headers=FINANCE), 200)
    assert (cleared["budget_id"], cleared["organization_id"]) == (None, ORG)
    for body in ({"url": None}, {"state": "paused"}, {"secret": "whsec_x"}):
        assert (await client.patch(path, json=body, headers=FINANCE)).status_code == 422, body
    assert await read(client, path) == cleared


async def test_disabling_stops_deliveries_and_re_enabling_forgets_the_failures(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sid = (await subscribe(client))["id"]
    pending = await seed_delivery(app, sid, "pending", datetime.now(UTC), tries=0)
    path = f"/subscriptions/{sid}"
    disabled = ok(await client.patch(path, json={"state": "disabled"}, headers=FINANCE), 200)
    assert disabled["state"] == "disabled"
    assert "finance-clerk" in disabled["disabled_reason"]
    assert (await delivery_state(app, pending)).state == "cancelled"

    async with engine_of(app).begin() as connection:
        failing = datetime(2014, 6, 1, tzinfo=UTC)
        await connection.execute(
            subscriptions.update().where(subscriptions.c.id == sid).values(failing_since=failing)
        )
    assert (await read(client, path))["failing_since"] == "2014-06-01T00:00:00Z"
    enabled = ok(await client.patch(path, json={"state": "active"}, headers=FINANCE), 200)
    assert [enabled[k] for k in ("state", "disabled_reason", "failing_since")] == [
        "active",
        None,
        None,
    ]


async def test_deleting_cancels_what_was_pending_and_keeps_the_rest(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sid = (await subscribe(client))["id"]
    pending = await seed_delivery(app, sid, "pending", datetime.now(UTC), tries=1)
    dead = await seed_delivery(app, sid, "dead", datetime.now(UTC))
    response = await client.delete(f"/subscriptions/{sid}", headers=FINANCE)
    assert (response.status_code, response.content) == (204, b"")
    assert (await client.get(f"/subscriptions/{sid}", headers=FINANCE)).status_code == 404
    assert (await client.delete(f"/subscriptions/{sid}", headers=FINANCE)).status_code == 404
    assert (await delivery_state(app, pending)).state == "cancelled"
    assert (await delivery_state(app, dead)).state == "dead"


async def test_subscriptions_are_listed_a_page_at_a_time(client: httpx.AsyncClient) -> None:
    made = [(await subscribe(client))["id"] for _ in range(3)]
    first = await read(client, "/subscriptions?limit=2")
    rest = await read(client, f"/subscriptions?limit=2&cursor={first['next_cursor']}")
    assert ids(first["items"] + rest["items"]) == made
    assert rest["next_cursor"] is None


# --- deliveries, attempts, re-sending -------------------------------------------------------


async def test_deliveries_and_their_attempts_are_readable(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sid = (await subscribe(client))["id"]
    start = datetime(2014, 6, 1, 9, tzinfo=UTC)
    dead = await seed_delivery(app, sid, "dead", start)
    delivered = await seed_delivery(app, sid, "delivered", start + timedelta(hours=1), tries=1)
    path = f"/subscriptions/{sid}/deliveries"
    assert ids((await read(client, path))["items"]) == [dead, delivered]  # oldest first
    assert ids((await read(client, f"{path}?state=dead"))["items"]) == [dead]
    later = (start + timedelta(minutes=30)).isoformat()
    recent = await client.get(path, params={"since": later}, headers=FINANCE)
    assert ids(ok(recent, 200)["items"]) == [delivered]

    detail = await read(client, f"/deliveries/{dead}")
    assert [detail[k] for k in ("state", "event_type", "attempts")] == [
        "dead",
        "payment.recorded",
        2,
    ]
    assert detail["webhook_id"].startswith("msg_")
    assert '"payment.recorded"' in detail["body"]
    log = (await read(client, f"/deliveries/{dead}/attempts"))["items"]
    assert [(a["status"], a["latency_ms"], a["response_excerpt"]) for a in log] == [
        (500, 100, "oops 0"),
        (501, 101, "oops 1"),
    ]
    assert (await client.get(f"/deliveries/{uuid.uuid4()}", headers=FINANCE)).status_code == 404


async def test_a_dead_delivery_is_sent_again_with_its_history_kept(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sid = (await subscribe(client))["id"]
    dead = await seed_delivery(app, sid, "dead", datetime(2014, 6, 1, tzinfo=UTC))
    delivered = await seed_delivery(app, sid, "delivered", datetime(2014, 6, 1, tzinfo=UTC), 1)
    before = datetime.now(UTC)
    again = ok(await client.post(f"/deliveries/{dead}/resend", headers=FINANCE), 201)
    assert [again[k] for k in ("state", "finished_at", "attempts")] == ["pending", None, 0]
    assert before <= datetime.fromisoformat(again["next_attempt_at"]) <= datetime.now(UTC)
    assert len((await read(client, f"/deliveries/{dead}/attempts"))["items"]) == 2

    for not_dead in (dead, delivered):
        response = await client.post(f"/deliveries/{not_dead}/resend", headers=FINANCE)
        assert response.status_code == 409, response.text
        assert "only a dead delivery" in response.json()["detail"]
    assert (await delivery_state(app, delivered)).state == "delivered"


async def test_dead_deliveries_since_a_time_are_sent_again_for_that_subscription_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sid, other = (await subscribe(client))["id"], (await subscribe(client))["id"]
    since = datetime(2014, 6, 1, 12, tzinfo=UTC)
    before = await seed_delivery(app, sid, "dead", since - timedelta(seconds=1))
    at = await seed_delivery(app, sid, "dead", since)
    after = await seed_delivery(app, sid, "dead", since + timedelta(days=1))
    delivered = await seed_delivery(app, sid, "delivered", since + timedelta(days=1))
    elsewhere = await seed_delivery(app, other, "dead", since + timedelta(days=1))

    body = {"since": "2014-06-01T20:00:00+08:00"}  # the same instant, in Chengdu
    answer = ok(await client.post(f"/subscriptions/{sid}/resend", json=body, headers=FINANCE))
    assert answer == {"subscription_id": sid, "requeued": 2}
    states = {d: (await delivery_state(app, d)).state for d in (before, at, after, delivered)}
    assert states == {before: "dead", at: "pending", after: "pending", delivered: "delivered"}
    assert (await delivery_state(app, elsewhere)).state == "dead"
    naive = await client.post(
        f"/subscriptions/{sid}/resend", json={"since": "2014-06-01T12:00:00"}, headers=FINANCE
    )
    assert naive.status_code == 422


async def test_nothing_is_sent_again_to_a_disabled_subscription(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sid = (await subscribe(client))["id"]
    dead = await seed_delivery(app, sid, "dead", datetime(2014, 6, 1, tzinfo=UTC))
    disable = await client.patch(
        f"/subscriptions/{sid}", json={"state": "disabled"}, headers=FINANCE
    )
    ok(disable, 200)
    since = {"since": "2014-01-01T00:00:00+00:00"}
    for response in (
        await client.post(f"/deliveries/{dead}/resend", headers=FINANCE),
        await client.post(f"/subscriptions/{sid}/resend", json=since, headers=FINANCE),
    ):
        assert response.status_code == 409, response.text
        assert "re-enable" in response.json()["detail"]
    assert (await delivery_state(app, dead)).state == "dead"
