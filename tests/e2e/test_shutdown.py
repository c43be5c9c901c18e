"""Stopping a service (SIGTERM, as any orchestrator does) loses nothing it had begun."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_notifier import OVERRIDES, Story, subscribe
from tests.support.actors import FINANCE
from tests.support.catalog import seed_parties
from tests.support.ledger_api import allocate, contract_body, entrust, ok, open_budget
from tests.support.processes import GRACEFUL_EXIT_CODE, free_ports, running_services
from tests.support.receiver import webhook_receiver

pytestmark = pytest.mark.asyncio
SLOW_SECONDS = 2.0


@contextmanager
def slow_proxy(upstream: str, port: int) -> Iterator[list[str]]:
    """Forwards GETs to `upstream` after SLOW_SECONDS; yields the paths it has begun to serve."""
    begun: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            begun.append(self.path)
            time.sleep(SLOW_SECONDS)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            answer = httpx.get(upstream + self.path, headers=headers, trust_env=False)
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("content-type", ""))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield begun
    finally:
        server.shutdown()
        server.server_close()


async def wait_for(condition: object, timeout: float = 20.0) -> None:
    """Poll until `condition()` is true."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_signing_in_flight_when_the_ledger_is_stopped_completes(tmp_path: Path) -> None:
    (proxy_port,) = free_ports(1)
    with running_services(tmp_path, names=["catalog"]) as catalog_only:
        catalog = catalog_only["catalog"]
        parties = seed_parties(catalog.url)
        overrides = {"LEDGER_CATALOG_URL": f"http://127.0.0.1:{proxy_port}"}
        with (
            slow_proxy(catalog.url, proxy_port) as begun,
            running_services(tmp_path / "ledger", overrides, names=["ledger"]) as running,
        ):
            ledger = running["ledger"]
            async with httpx.AsyncClient(base_url=ledger.url, trust_env=False, timeout=30) as http:
                budget = await open_budget(http)
                allocation = await allocate(
                    http, budget["id"], "100000.00", parties.street_office_id
                )
                project = await entrust(http, budget["id"], allocation, "36000.00", parties)
                body = contract_body(budget["id"], allocation, "36000.00", parties, project)
                begun.clear()
                signing = asyncio.create_task(
                    http.post("/contracts", json=body, headers=parties.street)
                )
                # The ledger is asking the (slow) catalog: the request is in flight.
                await wait_for(lambda: bool(begun))
                ledger.terminate()
                signed = await signing
                assert signed.status_code == 201, signed.text
            assert ledger.process.wait(30) == GRACEFUL_EXIT_CODE, ledger.log_tail()
            # Once stopped, it is stopped: the record it made is there after a restart.
            ledger.restart()
            async with httpx.AsyncClient(base_url=ledger.url, trust_env=False) as http:
                again = ok(
                    await http.get(f"/contracts/{signed.json()['id']}", headers=FINANCE), 200
                )
            assert again["state"] == "signed"


async def test_a_notifier_stopped_mid_delivery_finishes_it_and_sends_it_once(
    tmp_path: Path,
) -> None:
    with running_services(tmp_path, OVERRIDES) as stack, webhook_receiver() as receiver:
        notifier = stack["notifier"]
        subscribe(notifier, receiver, "slow", ["payment.recorded"])
        receiver.state.delay("slow", SLOW_SECONDS)
        async with httpx.AsyncClient(base_url=stack["ledger"].url, trust_env=False) as ledger:
            story = Story(ledger, seed_parties(stack["catalog"].url))
            await story.begin()
            await story.pay("GK-2014-STOP-1")
        await wait_for(lambda: bool(receiver.state.arrived))
        notifier.terminate()  # while the receiver takes its time to answer
        assert notifier.process.wait(30) == GRACEFUL_EXIT_CODE, notifier.log_tail()
        assert len(receiver.state.of("slow")) == 1  # the answer came, and was waited for

        receiver.state.delay("slow", 0)
        notifier.restart()
        time.sleep(1.5)  # several rounds of the restarted worker
        with httpx.Client(base_url=notifier.url, trust_env=False) as http:
            listed = ok(http.get("/subscriptions", headers=FINANCE), 200)["items"]
            (subscription,) = [s for s in listed if s["url"] == receiver.state.url("slow")]
            path = f"/subscriptions/{subscription['id']}/deliveries"
            deliveries = ok(http.get(path, headers=FINANCE), 200)["items"]
    # Recorded as delivered before the worker stopped: not sent again after the restart.
    assert [(d["state"], d["attempts"]) for d in deliveries] == [("delivered", 1)]
    assert len(receiver.state.arrived) == 1
