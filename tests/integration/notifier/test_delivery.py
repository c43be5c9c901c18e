"""Deliveries over real HTTP to a loopback receiver, recorded on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from ipaddress import IPv4Address
from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from services.common.sql import Database
from services.notifier import targets
from services.notifier.delivery import Dispatcher
from services.notifier.messages import Message, active_subscriptions, enqueue
from services.notifier.retries import AttemptResult
from services.notifier.secrets import SecretBox, new_secret
from services.notifier.settings import NotifierSettings
from services.notifier.store.tables import attempts, deliveries, messages, subscriptions
from tests.support.inprocess import served
from tests.support.receiver import ServedReceiver, webhook_receiver

pytestmark = pytest.mark.asyncio

KEY = "delivery-test-encryption-key"
ORG = "0b8c2f4e-1d3a-4c5b-9e6f-7a8b9c0d1e2f"


class Clock:
    """Real time, moved forward by hand: signatures stay within receivers' 5-minute tolerance."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Probe:
    """What the probe app saw: each request's headers and body, and the most requests at once."""

    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0


def probe_app(probe: Probe) -> FastAPI:
    app = FastAPI()

    @app.post("/record")
    async def record(request: Request) -> Response:
        probe.seen.append((dict(request.headers), await request.body()))
        # A NUL first: PostgreSQL text cannot store one, so the excerpt must replace it.
        return Response("\x00" + "ü" * 700, media_type="text/plain; charset=utf-8")

    @app.post("/bomb")
    async def bomb() -> Response:
        # Ten megabytes of "A" in about ten kilobytes on the wire.
        packed = gzip.compress(b"A" * 10_000_000)
        return Response(packed, media_type="text/plain", headers={"content-encoding": "gzip"})

    @app.post("/slow/{seconds}")
    async def slow(seconds: float) -> Response:
        probe.in_flight += 1
        probe.peak = max(probe.peak, probe.in_flight)
        await asyncio.sleep(seconds)
        probe.in_flight -= 1
        return Response(status_code=204)

    return app


@pytest.fixture
def receiver() -> Iterator[ServedReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def probe() -> Iterator[tuple[Probe, str]]:
    state = Probe()
    with served(probe_app(state)) as url:
        yield state, url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@asynccontextmanager
async def dispatcher(
    engine: AsyncEngine, clock: Clock, **overrides: Any
) -> AsyncIterator[Dispatcher]:
    values: dict[str, Any] = {
        "database_url": "sqlite://",
        "encryption_key": SecretStr(KEY),
        "allowed_targets": "127.0.0.1/32",
        "retry_schedule_seconds": (0, 0, 0),
        "retry_jitter": 0.0,
        "delivery_timeout_seconds": 5.0,
    } | overrides
    rng = random.Random(0)  # noqa: S311 -- jitter only; seeded so runs repeat
    database = Database(engine)
    sender = Dispatcher(database, NotifierSettings(**values), clock=clock, rng=rng)
    try:
        yield sender
    finally:
        await sender.aclose()
        await database.dispose()


async def subscribe(
    engine: AsyncEngine,
    url: str,
    *,
    event_types: tuple[str, ...] = ("payment.*",),
    secret: str | None = None,
    previous: tuple[str, datetime] | None = None,
) -> tuple[str, str]:
    """An active subscription with its secret sealed, as the API stores one; (id, secret)."""
    secret = secret or new_secret()
    box, now, subscription_id = SecretBox(KEY), datetime.now(UTC), str(uuid4())
    async with engine.begin() as connection:
        await connection.execute(
            subscriptions.insert().values(
                id=subscription_id,
                owner_role="finance",
                owner_organization=ORG,
                owner_subject="clerk",
                url=url,
                description="",
                event_types=list(event_types),
                state="active",
                secret=box.seal(secret),
                previous_secret=box.seal(previous[0]) if previous else None,
                previous_secret_expires_at=previous[1] if previous else None,
                created_at=now,
                updated_at=now,
            )
        )
    return subscription_id, secret


async def queue(engine: AsyncEngine, clock: Clock, position: int = 1) -> Message:
    message = Message(
        feed="ledger",
        position=position,
        event_type="payment.recorded",
        timestamp=clock(),
        data={"reference": f"T-{position}", "amount": {"amount": "12.50"}, "note": "街道 ü"},
        organization_ids=frozenset({ORG}),
    )
    async with engine.begin() as connection:
        await connection.run_sync(
            lambda sync: enqueue(sync, message, active_subscriptions(sync), clock())
        )
    return message


async def delivery(engine: AsyncEngine, subscription_id: str, message_id: str) -> Row[Any]:
    async with engine.connect() as connection:
        query = select(deliveries).where(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.message_id == message_id,
        )
        return (await connection.execute(query)).one()


async def logged(engine: AsyncEngine, delivery_id: str) -> list[Row[Any]]:
    async with engine.connect() as connection:
        query = select(attempts).where(attempts.c.delivery_id == delivery_id)
        return list(await connection.execute(query.order_by(attempts.c.id)))


async def subscription(engine: AsyncEngine, subscription_id: str) -> Row[Any]:
    async with engine.connect() as connection:
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        return (await connection.execute(query)).one()


async def test_a_delivery_arrives_signed_with_its_message_id_and_body(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    sub, secret = await subscribe(engine, receiver.state.url("a"))
    receiver.state.secrets["a"] = [secret]
    message = await queue(engine, clock)
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 1
        assert await sender.deliver_due() == 0  # delivered once, not again
    [arrived] = receiver.state.of("a")
    assert arrived.verified
    assert arrived.webhook_id == message.id
    assert arrived.body == json.loads(message.body())
    row = await delivery(engine, sub, message.id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("delivered", 1, None)
    assert row.finished_at is not None
    [attempt] = await logged(engine, row.id)
    assert (attempt.status, attempt.error, attempt.response_excerpt) == (204, None, "")
    assert 0 <= attempt.latency_ms < 5000
    assert abs(attempt.attempted_at - clock()) < timedelta(seconds=10)


async def test_headers_signatures_during_rotation_and_the_answer_excerpt(
    engine: AsyncEngine, probe: tuple[Probe, str], clock: Clock
) -> None:
    state, url = probe
    old, new = new_secret(), new_secret()
    sub, _ = await subscribe(
        engine, f"{url}/record", secret=new, previous=(old, clock() + timedelta(hours=1))
    )
    message = await queue(engine, clock)
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 1
    [(headers, body)] = state.seen
    assert body == message.body().encode()
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == message.id
    timestamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    assert abs(timestamp - clock()) < timedelta(seconds=10)
    # Both secrets sign, the current one first, space-separated.
    assert headers["webhook-signature"].split(" ") == [
        Webhook(secret).sign(message.id, timestamp, message.body()) for secret in (new, old)
    ]
    [attempt] = await logged(engine, (await delivery(engine, sub, message.id)).id)
    assert (attempt.status, attempt.response_excerpt) == (200, "\ufffd" + "ü" * 499)


async def test_a_compressed_answer_is_kept_as_sent_not_unpacked(
    engine: AsyncEngine, probe: tuple[Probe, str], clock: Clock
) -> None:
    _, url = probe
    sub, _ = await subscribe(engine, f"{url}/bomb")
    message = await queue(engine, clock)
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 1
    [attempt] = await logged(engine, (await delivery(engine, sub, message.id)).id)
    # Delivered; the excerpt is the first bytes as they came (gzip's magic number first).
    assert (attempt.status, attempt.error) == (200, None)
    assert attempt.response_excerpt.startswith("\x1f\ufffd")
    assert "AAAA" not in attempt.response_excerpt


async def test_rotation_old_secret_verifies_until_it_expires(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    old, new = new_secret(), new_secret()
    expires = clock() + timedelta(minutes=1)
    await subscribe(engine, receiver.state.url("old"), secret=new, previous=(old, expires))
    receiver.state.secrets["old"] = [old]  # a receiver not yet told of the new secret
    async with dispatcher(engine, clock) as sender:
        await queue(engine, clock, position=1)
        assert await sender.deliver_due() == 1
        clock.advance(61)  # the overlap is over: only the new secret signs
        await queue(engine, clock, position=2)
        assert await sender.deliver_due() == 1
    assert [r.verified for r in receiver.state.of("old")] == [True, False]
    receiver.state.secrets["old"] = [new]
    async with dispatcher(engine, clock) as sender:
        await queue(engine, clock, position=3)
        assert await sender.deliver_due() == 1
    assert receiver.state.of("old")[-1].verified


async def test_a_failing_receiver_is_retried_then_dead_lettered(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    sub, secret = await subscribe(engine, receiver.state.url("down"))
    receiver.state.secrets["down"] = [secret]
    receiver.state.answer("down", 500)
    message = await queue(engine, clock)
    async with dispatcher(engine, clock, retry_schedule_seconds=(0, 60, 120)) as sender:
        assert await sender.deliver_due() == 1
        first = await delivery(engine, sub, message.id)
        assert (first.state, first.attempts) == ("pending", 1)
        assert await sender.deliver_due() == 0  # the schedule's 60 s have not passed
        clock.advance(59)
        assert await sender.deliver_due() == 0
        clock.advance(2)
        assert await sender.deliver_due() == 1
        clock.advance(119)
        assert await sender.deliver_due() == 0
        clock.advance(2)
        assert await sender.deliver_due() == 1
        clock.advance(36000)
        assert await sender.deliver_due() == 0  # three attempts: the schedule is spent
    row = await delivery(engine, sub, message.id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("dead", 3, None)
    assert row.finished_at is not None
    assert [a.status for a in await logged(engine, row.id)] == [500, 500, 500]
    arrived = receiver.state.of("down")
    assert [r.webhook_id for r in arrived] == [message.id] * 3
    assert all(r.verified for r in arrived)
    # Failing, but not for long enough to be disabled.
    assert (await subscription(engine, sub)).state == "active"


@pytest.mark.parametrize(("status", "wait"), [(503, 7), (429, 7), (500, 0)])
async def test_retry_after_is_honoured_on_429_and_503(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock, status: int, wait: int
) -> None:
    sub, _ = await subscribe(engine, receiver.state.url("busy"))
    receiver.state.answer("busy", status, {"Retry-After": "7"})
    message = await queue(engine, clock)
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 1
        row = await delivery(engine, sub, message.id)
        [attempt] = await logged(engine, row.id)
        waited = row.next_attempt_at - attempt.attempted_at
        assert timedelta(seconds=wait) <= waited < timedelta(seconds=wait + 2)
        if wait:
            assert await sender.deliver_due() == 0
            clock.advance(wait + 1)
        assert await sender.deliver_due() == 1


async def test_410_disables_cancels_and_notifies_the_other_subscriptions(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    gone, _ = await subscribe(engine, receiver.state.url("gone"), event_types=("*",))
    watcher, secret = await subscribe(
        engine, receiver.state.url("watch"), event_types=("subscription.*",)
    )
    receiver.state.secrets["watch"] = [secret]
    receiver.state.answer("gone", 410)
    first = await queue(engine, clock, position=1)
    clock.advance(1)
    second = await queue(engine, clock, position=2)
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due(limit=1) == 1  # the oldest: the first message
        disabled = await subscription(engine, gone)
        assert disabled.state == "disabled"
        assert "410" in disabled.disabled_reason
        assert (await delivery(engine, gone, first.id)).state == "dead"
        assert (await delivery(engine, gone, second.id)).state == "cancelled"
        assert await sender.deliver_due() == 1  # the watcher's notice, and nothing to `gone`
    assert len(receiver.state.of("gone")) == 1
    [notice] = receiver.state.of("watch")
    assert notice.verified
    assert notice.event_type == "subscription.disabled"
    assert notice.body["data"] == {
        "subscription_id": gone,
        "url": receiver.state.url("gone"),
        "reason": disabled.disabled_reason,
        "owner_organization_id": ORG,
    }
    async with engine.connect() as connection:
        queued = await connection.execute(
            select(deliveries.c.subscription_id)
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(messages.c.event_type == "subscription.disabled")
        )
        assert [r.subscription_id for r in queued] == [watcher]


async def test_continuous_failure_disables_and_notifies(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    failing, _ = await subscribe(engine, receiver.state.url("bad"))
    watcher, _ = await subscribe(engine, receiver.state.url("w"), event_types=("subscription.*",))
    receiver.state.answer("bad", 500)
    message = await queue(engine, clock)
    settings = {"retry_schedule_seconds": (0, 0, 0, 0), "disable_after_seconds": 60}
    async with dispatcher(engine, clock, **settings) as sender:
        assert await sender.deliver_due() == 1
        started = (await subscription(engine, failing)).failing_since
        assert started is not None
        clock.advance(30)
        assert await sender.deliver_due() == 1
        assert (await subscription(engine, failing)).state == "active"
        clock.advance(31)
        assert await sender.deliver_due() == 1
    row = await subscription(engine, failing)
    assert row.state == "disabled"
    assert row.failing_since == started
    assert "60 seconds" in row.disabled_reason
    assert (await delivery(engine, failing, message.id)).state == "cancelled"
    assert len(receiver.state.of("bad")) == 3
    async with engine.connect() as connection:
        notices = await connection.execute(
            select(deliveries.c.subscription_id, messages.c.body)
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(messages.c.event_type == "subscription.disabled")
        )
        [(notified, body)] = list(notices)
    assert notified == watcher
    assert json.loads(body)["data"]["subscription_id"] == failing


async def test_a_success_resets_the_run_of_failures(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    sub, _ = await subscribe(engine, receiver.state.url("flaky"))
    receiver.state.answer("flaky", 500)
    await queue(engine, clock, position=1)
    async with dispatcher(engine, clock, disable_after_seconds=60) as sender:
        assert await sender.deliver_due() == 1
        assert (await subscription(engine, sub)).failing_since is not None
        receiver.state.answer("flaky", 204)
        assert await sender.deliver_due() == 1
        assert (await subscription(engine, sub)).failing_since is None
        # Failing again long after: a new run begins, the subscription stays active.
        clock.advance(120)
        receiver.state.answer("flaky", 500)
        await queue(engine, clock, position=2)
        assert await sender.deliver_due() == 1
    row = await subscription(engine, sub)
    assert row.state == "active"
    assert abs(row.failing_since - clock()) < timedelta(seconds=10)


async def test_a_receiver_down_then_back_up(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    sub, secret = await subscribe(engine, receiver.state.url("back"))
    receiver.state.secrets["back"] = [secret]
    message = await queue(engine, clock)
    receiver.stop()
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 1
        receiver.start()
        assert await sender.deliver_due() == 1
    row = await delivery(engine, sub, message.id)
    assert (row.state, row.attempts) == ("delivered", 2)
    refused, accepted = await logged(engine, row.id)
    assert refused.status is None
    assert "could not connect" in refused.error
    assert (accepted.status, accepted.error) == (204, None)
    assert [r.verified for r in receiver.state.of("back")] == [True]


async def test_a_loopback_target_without_the_allow_list_is_not_sent(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    url = receiver.state.url("inside").replace("127.0.0.1", "localhost")
    sub, _ = await subscribe(engine, url)
    message = await queue(engine, clock)
    async with dispatcher(engine, clock, allowed_targets="") as sender:
        assert await sender.deliver_due() == 1
    assert receiver.state.of("inside") == []
    row = await delivery(engine, sub, message.id)
    assert (row.state, row.attempts) == ("pending", 1)
    [attempt] = await logged(engine, row.id)
    assert attempt.status is None
    assert "not sent" in attempt.error
    assert "loopback" in attempt.error


async def test_the_connection_goes_to_the_addresses_checked_not_to_a_fresh_answer(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name no DNS answers for; the check's resolver alone says where it is.
    url = receiver.state.url("named").replace("127.0.0.1", "receiver.invalid")
    looked_up: list[str] = []

    async def checked_resolve(host: str) -> list[IPv4Address]:
        looked_up.append(host)
        return [IPv4Address("127.0.0.1")]

    monkeypatch.setattr(targets, "resolve", checked_resolve)
    sub, _ = await subscribe(engine, url)
    message = await queue(engine, clock)
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 1
    assert looked_up == ["receiver.invalid"]
    assert len(receiver.state.of("named")) == 1
    row = await delivery(engine, sub, message.id)
    assert (row.state, row.attempts) == ("delivered", 1)


async def test_a_redirect_is_a_failure_and_is_not_followed(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    sub, _ = await subscribe(engine, receiver.state.url("moved"))
    receiver.state.answer("moved", 307, {"Location": receiver.state.url("elsewhere")})
    message = await queue(engine, clock)
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 1
    assert receiver.state.of("elsewhere") == []
    row = await delivery(engine, sub, message.id)
    assert (row.state, row.attempts) == ("pending", 1)
    [attempt] = await logged(engine, row.id)
    assert attempt.status == 307
    assert "redirects are not followed" in attempt.error


async def test_no_answer_within_the_timeout_is_a_failure(
    engine: AsyncEngine, probe: tuple[Probe, str], clock: Clock
) -> None:
    _, url = probe
    sub, _ = await subscribe(engine, f"{url}/slow/1.5")
    message = await queue(engine, clock)
    async with dispatcher(engine, clock, delivery_timeout_seconds=0.3) as sender:
        started = time.monotonic()
        assert await sender.deliver_due() == 1
        assert time.monotonic() - started < 1.2
    [attempt] = await logged(engine, (await delivery(engine, sub, message.id)).id)
    assert attempt.status is None
    assert "within 0.3 s" in attempt.error
    assert attempt.latency_ms >= 300


async def test_deliveries_overlap_up_to_the_concurrency_and_no_further(
    engine: AsyncEngine, probe: tuple[Probe, str], clock: Clock
) -> None:
    state, url = probe
    for n in range(6):
        await subscribe(engine, f"{url}/slow/0.2?n={n}")
    await queue(engine, clock)
    async with dispatcher(engine, clock, delivery_concurrency=2) as sender:
        assert await sender.deliver_due() == 6
    assert state.peak == 2


async def test_a_disabled_subscription_gets_nothing(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    sub, _ = await subscribe(engine, receiver.state.url("off"))
    message = await queue(engine, clock)
    async with engine.begin() as connection:
        await connection.execute(
            update(subscriptions).where(subscriptions.c.id == sub).values(state="disabled")
        )
    async with dispatcher(engine, clock) as sender:
        assert await sender.deliver_due() == 0
    assert receiver.state.of("off") == []
    row = await delivery(engine, sub, message.id)
    assert (row.state, row.attempts) == ("cancelled", 0)
    assert row.finished_at is not None


async def sending_while_the_log_is_busy(
    sender: Dispatcher, receiver: ServedReceiver, hooks: list[str]
) -> asyncio.Task[int]:
    """A round whose attempts all end while the log is held, as a busy database would hold it."""
    take = sender._take_due
    held = asyncio.Event()

    async def take_then_hold(limit: int) -> Any:
        due = await take(limit)
        await sender._writing.acquire()
        held.set()
        return due

    sender._take_due = take_then_hold  # type: ignore[method-assign]
    round_ = asyncio.create_task(sender.deliver_due())
    await held.wait()
    await asyncio.to_thread(lambda: [receiver.state.wait_for(hook, 1) for hook in hooks])
    async with asyncio.timeout(10):
        while len(sender._unlogged) < len(hooks):  # answered, and each attempt's result read
            await asyncio.sleep(0.01)
    sender._take_due = take  # type: ignore[method-assign]
    sender._writing.release()
    return round_


async def test_attempts_ending_together_are_logged_in_one_transaction(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    subs = [await subscribe(engine, receiver.state.url(f"t{n}")) for n in range(5)]
    message = await queue(engine, clock)
    async with dispatcher(engine, clock) as sender:
        units: list[str] = []
        write = sender._database.write

        async def counted(work: Any) -> Any:
            units.append(getattr(work, "__name__", "unit"))
            return await write(work)

        sender._database.write = counted  # type: ignore[method-assign]
        round_ = await sending_while_the_log_is_busy(sender, receiver, [f"t{n}" for n in range(5)])
        assert await round_ == 5
    assert len(units) == 2  # taking the due deliveries, then logging all five at once
    for sub, _ in subs:
        row = await delivery(engine, sub, message.id)
        assert (row.state, row.attempts) == ("delivered", 1)
        assert [a.status for a in await logged(engine, row.id)] == [204]


async def test_an_attempt_that_cannot_be_logged_loses_none_of_the_others(
    engine: AsyncEngine, receiver: ServedReceiver, clock: Clock
) -> None:
    subs = [(await subscribe(engine, receiver.state.url(f"l{n}")))[0] for n in range(4)]
    message = await queue(engine, clock)
    unloggable = (await delivery(engine, subs[0], message.id)).id
    async with dispatcher(engine, clock) as sender:
        log = sender._log_arrived

        def failing(connection: Any, arrived: Any) -> None:
            if unloggable in (delivery.id for delivery, _ in arrived):
                raise RuntimeError("the log of this attempt cannot be written")
            log(connection, arrived)

        sender._log_arrived = failing  # type: ignore[method-assign]
        round_ = await sending_while_the_log_is_busy(sender, receiver, [f"l{n}" for n in range(4)])
        with pytest.raises(RuntimeError, match="cannot be written"):
            await round_
        for sub in subs[1:]:
            row = await delivery(engine, sub, message.id)
            assert (row.state, row.attempts) == ("delivered", 1)
            assert len(await logged(engine, row.id)) == 1
        # Unlogged, it stays due: sent again (at least once), then logged.
        row = await delivery(engine, subs[0], message.id)
        assert (row.state, row.attempts) == ("pending", 0)
        sender._log_arrived = log  # type: ignore[method-assign]
        assert await sender.deliver_due() == 1
    assert len(receiver.state.of("l0")) == 2
    row = await delivery(engine, subs[0], message.id)
    assert (row.state, row.attempts) == ("delivered", 1)


@pytest.mark.parametrize(
    ("answers", "failing"),
    [((500, 204), False), ((204, 500), True), ((204, 204), False), ((500, 500), True)],
)
async def test_attempts_logged_together_count_in_the_order_they_ended(
    engine: AsyncEngine, clock: Clock, answers: tuple[int, int], failing: bool
) -> None:
    sub, _ = await subscribe(engine, "http://127.0.0.1:9/hook")
    for position in (1, 2):
        await queue(engine, clock, position=position)
    async with dispatcher(engine, clock, disable_after_seconds=3600) as sender:
        due = await sender._take_due(10)
        assert len(due) == 2
        results = [AttemptResult(clock(), 5, status) for status in answers]
        await sender._database.write(
            partial(sender._log_all, batch=list(zip(due, results, strict=True)))
        )
    # The last attempt to end says whether the subscription is failing.
    assert ((await subscription(engine, sub)).failing_since is not None) is failing
    for one, status in zip(due, answers, strict=True):
        row = await delivery(engine, sub, one.message_id)
        expected = "delivered" if status == 204 else "pending"
        assert (row.state, row.attempts) == (expected, 1)
        assert [a.status for a in await logged(engine, row.id)] == [status]
