"""A webhook receiver on loopback, as another government system would run one.

It checks every delivery's Standard Webhooks signature with the secrets it was given, records
what arrived, and answers as told per hook: accept, fail, answer 410 Gone, ask to retry later.
It can be stopped and started again on the same port, to play a receiver that is down a while.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.processes import free_ports


@dataclass(frozen=True)
class Received:
    """One delivery as the receiver saw it."""

    hook: str
    webhook_id: str
    event_type: str
    body: dict[str, Any]
    verified: bool
    answered: int
    raw: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """The state behind the receiver's app: secrets, answers and what arrived, per hook."""

    port: int
    secrets: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    # webhook-ids of deliveries as they arrive, before any delay in answering them
    arrived: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, hook: str) -> str:
        """The URL to subscribe for one hook."""
        return f"http://127.0.0.1:{self.port}/hooks/{hook}"

    def answer(self, hook: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer deliveries to `hook` with this status from now on (204 by default)."""
        self.answers[hook] = (status, headers or {})

    def delay(self, hook: str, seconds: float) -> None:
        """Answer deliveries to `hook` only after `seconds`, as a slow receiver would."""
        self.delays[hook] = seconds

    def of(self, hook: str) -> list[Received]:
        """What arrived for one hook, in order."""
        with self._lock:
            return [r for r in self.received if r.hook == hook]

    def wait_for(self, hook: str, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until `count` deliveries to `hook` were accepted (2xx); AssertionError after."""
        deadline = time.monotonic() + timeout
        while True:
            accepted = [r for r in self.of(hook) if 200 <= r.answered < 300]
            if len(accepted) >= count:
                return accepted
            if time.monotonic() > deadline:
                raise AssertionError(f"{hook}: {len(accepted)} of {count} deliveries arrived")
            time.sleep(0.05)

    async def _hook(self, request: Request) -> Response:
        hook = request.path_params["hook"]
        payload = await request.body()
        headers = dict(request.headers)
        with self._lock:
            self.arrived.append(headers.get("webhook-id", ""))
        await asyncio.sleep(self.delays.get(hook, 0))
        verified, body = False, {}
        for secret in self.secrets.get(hook, []):
            try:
                body = Webhook(secret).verify(payload, headers)
                verified = True
                break
            except WebhookVerificationError:
                continue
        status, extra = self.answers.get(hook, (204, {}))
        with self._lock:
            self.received.append(
                Received(
                    hook=hook,
                    webhook_id=headers.get("webhook-id", ""),
                    event_type=str(body.get("type", "")) if verified else "",
                    body=body,
                    verified=verified,
                    answered=status,
                    raw=payload,
                    headers=headers,
                )
            )
        return Response(status_code=status, headers=extra)


class ServedReceiver:
    """The receiver served by uvicorn in a thread; `stop` and `start` keep its port."""

    def __init__(self) -> None:
        self.state = Receiver(port=free_ports(1)[0])
        self._app = Starlette(routes=[Route("/hooks/{hook}", self.state._hook, methods=["POST"])])
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve (again) on the receiver's port."""
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=self.state.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="receiver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop answering: connections to the port are refused until `start`."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None


@contextmanager
def webhook_receiver() -> Iterator[ServedReceiver]:
    """A receiver on a free loopback port, stopped at the end."""
    receiver = ServedReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
