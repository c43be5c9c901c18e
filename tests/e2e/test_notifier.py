"""The notifier as a real process: signed webhooks that survive crashes and outages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from tests.support.actors import FINANCE
from tests.support.catalog import Parties, seed_parties
from tests.support.ledger_api import (
    allocate,
    cny,
    deliver,
    ok,
    open_budget,
    sign_contract,
    street_of,
)
from tests.support.metrics import sample
from tests.support.processes import RunningService, running_services
from tests.support.readme import section
from tests.support.receiver import ServedReceiver, webhook_receiver

pytestmark = pytest.mark.asyncio

OVERRIDES = {
    # The receiver listens on loopback, which only an operator's allow-list opens.
    "NOTIFIER_ALLOWED_TARGETS": "127.0.0.1/32",
    "NOTIFIER_POLL_INTERVAL_SECONDS": "0.1",
    "NOTIFIER_LEASE_SECONDS": "2",
    "NOTIFIER_RETRY_SCHEDULE_SECONDS": "[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
    "NOTIFIER_RETRY_JITTER": "0",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningService]]:
    """Catalog, ledger and notifier as processes, the notifier polling and retrying quickly."""
    with running_services(tmp_path_factory.mktemp("notifier-e2e"), OVERRIDES) as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[ServedReceiver]:
    """A webhook receiver on loopback."""
    with webhook_receiver() as served:
        yield served


def subscribe(
    notifier: RunningService, receiver: ServedReceiver, hook: str, event_types: list[str]
) -> dict[str, Any]:
    """Subscribe the receiver's hook as finance, and give the receiver the secret."""
    with httpx.Client(base_url=notifier.url, trust_env=False, timeout=10) as http:
        created: dict[str, Any] = ok(
            http.post(
                "/subscriptions",
                json={"url": receiver.state.url(hook), "event_types": event_types},
                headers=FINANCE,
            )
        )
    receiver.state.secrets[hook] = [created["secret"]]
    return created


class Story:
    """One contract to pay against, over the ledger's API."""

    def __init__(self, ledger: httpx.AsyncClient, parties: Parties) -> None:
        self.ledger = ledger
        self.parties = parties
        self.contract: dict[str, Any] = {}

    async def begin(self) -> None:
        """A budget, an allocation, an active contract."""
        budget = await open_budget(self.ledger)
        allocation = await allocate(
            self.ledger, budget["id"], "1000000.00", self.parties.street_office_id
        )
        self.contract = await sign_contract(
            self.ledger, budget["id"], allocation, "360000.00", self.parties
        )
        path = f"/contracts/{self.contract['id']}/activation"
        ok(await self.ledger.post(path, json={}, headers=street_of(self.contract)))

    async def pay(self, reference: str) -> None:
        """A delivery, accepted, and paid by the treasury under `reference`."""
        cid, street = self.contract["id"], street_of(self.contract)
        delivery = await deliver(self.ledger, self.contract, "100.00", reference=reference)
        acceptance = f"/contracts/{cid}/deliveries/{delivery['id']}/acceptance"
        ok(await self.ledger.post(acceptance, json={}, headers=street))
        payment = {"reference": reference, "amount": cny("100.00")}
        ok(await self.ledger.post(f"/contracts/{cid}/payments", json=payment, headers=street))


def payments_received(receiver: ServedReceiver, hook: str) -> dict[str, set[str]]:
    """Treasury reference → the webhook-ids it arrived under (verified and accepted only)."""
    found: dict[str, set[str]] = {}
    for arrival in receiver.state.of(hook):
        assert arrival.verified, arrival
        if 200 <= arrival.answered < 300:
            reference = arrival.body["data"]["payload"]["reference"]
            found.setdefault(reference, set()).add(arrival.webhook_id)
    return found


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    """Poll until `condition()` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


async def test_every_payment_arrives_signed_once_per_webhook_id_across_a_crash(
    stack: dict[str, RunningService], receiver: ServedReceiver
) -> None:
    subscribe(stack["notifier"], receiver, "payments", ["payment.recorded"])
    subscribe(stack["notifier"], receiver, "alerts", ["alert.payment_made"])
    references = [f"GK-2014-{n:04d}" for n in range(1, 11)]
    async with httpx.AsyncClient(base_url=stack["ledger"].url, trust_env=False) as ledger:
        story = Story(ledger, seed_parties(stack["catalog"].url))
        await story.begin()
        for reference in references[:5]:
            await story.pay(reference)
        # Killed outright, mid-stream: no chance to finish anything in hand.
        notifier = stack["notifier"]
        notifier.process.kill()
        notifier.process.wait()
        for reference in references[5:8]:
            await story.pay(reference)
        notifier.restart()
        for reference in references[8:]:
            await story.pay(reference)

    wait_until(lambda: len(payments_received(receiver, "payments")) == len(references))
    received = payments_received(receiver, "payments")
    assert sorted(received) == references
    # Duplicates, if the crash caused any, carry the same webhook-id: one id per payment.
    assert all(len(ids) == 1 for ids in received.values()), received
    alerts = receiver.state.wait_for("alerts", len(references))
    assert {a.event_type for a in alerts} == {"alert.payment_made"}
    assert all(a.verified for a in alerts)


async def test_the_readme_code_verifies_a_real_delivery_and_refuses_a_forged_one(
    stack: dict[str, RunningService], receiver: ServedReceiver
) -> None:
    created = subscribe(stack["notifier"], receiver, "readme", ["payment.recorded"])
    async with httpx.AsyncClient(base_url=stack["ledger"].url, trust_env=False) as ledger:
        story = Story(ledger, seed_parties(stack["catalog"].url))
        await story.begin()
        await story.pay("GK-2014-README")
    arrival = receiver.state.wait_for("readme", 1)[0]
    namespace: dict[str, Any] = {}
    exec(section("<!-- verify-example:start -->", "python"), namespace)  # noqa: S102
    receive = namespace["receive"]

    event = receive(created["secret"], arrival.raw, arrival.headers)
    assert event["type"] == "payment.recorded"
    assert event["data"]["payload"]["reference"] == "GK-2014-README"
    assert receive(created["secret"], arrival.raw, arrival.headers) is None  # the same id again
    forged = arrival.raw.replace(b"GK-2014-README", b"GK-2014-FORGED")
    with pytest.raises(WebhookVerificationError):
        receive(created["secret"], forged, {**arrival.headers, "webhook-id": "msg_other"})


async def test_a_receiver_down_for_a_while_gets_everything_when_back(
    stack: dict[str, RunningService], receiver: ServedReceiver
) -> None:
    subscribe(stack["notifier"], receiver, "outage", ["payment.recorded"])
    references = [f"GK-2014-OUT-{n}" for n in range(1, 4)]
    async with httpx.AsyncClient(base_url=stack["ledger"].url, trust_env=False) as ledger:
        story = Story(ledger, seed_parties(stack["catalog"].url))
        await story.begin()
        receiver.stop()
        try:
            for reference in references:
                await story.pay(reference)
            time.sleep(2.5)  # long enough for attempts to fail against the closed port
        finally:
            receiver.start()

    wait_until(lambda: set(references) <= set(payments_received(receiver, "outage")))
    with httpx.Client(base_url=stack["notifier"].url, trust_env=False) as http:
        subscription = receiver_subscription(http, receiver, "outage")
        path = f"/subscriptions/{subscription['id']}/deliveries"

        def states() -> set[str]:
            return {d["state"] for d in ok(http.get(path, headers=FINANCE), 200)["items"]}

        # The notifier records an answer just after the receiver gave it: wait for its books.
        wait_until(lambda: states() == {"delivered"})
        assert states() == {"delivered"}  # and they stay so: nothing is sent again


def receiver_subscription(http: httpx.Client, receiver: ServedReceiver, hook: str) -> Any:
    """The subscription of the receiver's hook, as finance lists it."""
    listed = ok(http.get("/subscriptions", headers=FINANCE, params={"limit": 100}), 200)
    return next(s for s in listed["items"] if s["url"] == receiver.state.url(hook))


async def test_a_receiver_answering_410_is_unsubscribed_and_that_is_notified(
    stack: dict[str, RunningService], receiver: ServedReceiver
) -> None:
    gone = subscribe(stack["notifier"], receiver, "gone", ["payment.recorded"])
    subscribe(stack["notifier"], receiver, "operations", ["subscription.disabled"])
    receiver.state.answer("gone", 410)
    async with httpx.AsyncClient(base_url=stack["ledger"].url, trust_env=False) as ledger:
        story = Story(ledger, seed_parties(stack["catalog"].url))
        await story.begin()
        await story.pay("GK-2014-GONE-1")

    notices = receiver.state.wait_for("operations", 1)
    assert notices[0].event_type == "subscription.disabled"
    assert notices[0].body["data"]["subscription_id"] == gone["id"]
    with httpx.Client(base_url=stack["notifier"].url, trust_env=False) as http:
        now = ok(http.get(f"/subscriptions/{gone['id']}", headers=FINANCE), 200)
    assert now["state"] == "disabled"
    assert "410" in now["disabled_reason"]
    assert len(receiver.state.of("gone")) == 1  # no retry after 410
    # Ops see it too: the one attempt counted as gone, and nothing left queued for that hook.
    with httpx.Client(base_url=stack["notifier"].url, trust_env=False) as http:
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert sample(scraped.text, "notifier_webhook_attempts_total", outcome="gone") == 1.0
    delivered = sample(scraped.text, "notifier_webhook_attempts_total", outcome="delivered")
    assert delivered is not None
    assert delivered >= 1.0  # the subscription.disabled notice, at least
    assert sample(scraped.text, "notifier_feed_lag_entries", feed="ledger") is not None
