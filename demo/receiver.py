"""A local webhook receiver for the demo: checks each signature, counts what arrived."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    """Verified deliveries by webhook-id, and forged or unreadable ones refused."""

    secret: str = ""
    by_id: dict[str, str] = field(default_factory=dict)  # webhook-id -> event type
    # treasury reference -> the webhook-ids its payment.recorded arrived under
    payments: dict[str, set[str]] = field(default_factory=dict)
    arrivals: int = 0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def types(self) -> Counter[str]:
        """How many distinct webhooks of each type arrived."""
        with self._lock:
            return Counter(self.by_id.values())

    async def hook(self, request: Request) -> Response:
        """Verify, count once per webhook-id (retries share it), answer 204."""
        body = await request.body()
        try:
            event = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            with self._lock:
                self.refused += 1
            return Response(status_code=400)
        webhook_id = request.headers["webhook-id"]
        with self._lock:
            self.arrivals += 1
            self.by_id[webhook_id] = str(event.get("type", ""))
            if event.get("type") == "payment.recorded":
                reference = str(event["data"]["payload"]["reference"])
                self.payments.setdefault(reference, set()).add(webhook_id)
        return Response(status_code=204)


class Receiver:
    """The receiver served on a loopback port from a thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received = Received()
        app = Starlette(routes=[Route("/hooks/demo", self.received.hook, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="demo-receiver", daemon=True)

    @property
    def url(self) -> str:
        """The URL to subscribe."""
        return f"http://127.0.0.1:{self.port}/hooks/demo"

    def start(self) -> None:
        """Serve until `stop`."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the webhook receiver could not listen on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
