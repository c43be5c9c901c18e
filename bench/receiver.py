"""The webhook receiver for benchmark 5: a process of its own, pinned to the load generator's core.

It notes the arrival time of every delivery before anything else, answers 204 at once, and
checks the Standard Webhooks signatures afterwards, when asked for what arrived (so checking
costs the notifier no time). Each subscription posts to its own path, `/hooks/<n>`, and has its
own secret.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.loadgen import pin_self
from bench.services import wait_until_answers
from tests.support.processes import free_ports


@dataclass(frozen=True)
class Arrival:
    """One delivery: when it arrived, where, its webhook-id, and when the event was recorded.

    The webhook-id names the message (the event), the same for every subscription it goes to.
    """

    arrived: float
    hook: str
    webhook_id: str
    recorded: float
    reference: str
    verified: bool


def _serve(port: int, cpus: frozenset[int]) -> None:
    from aiohttp import web
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    pin_self(cpus)
    raw: list[tuple[float, str, dict[str, str], bytes]] = []
    secrets: dict[str, str] = {}

    async def hook(request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        raw.append((arrived, request.match_info["hook"], dict(request.headers), body))
        return web.Response(status=204)

    async def set_secrets(request: web.Request) -> web.Response:
        secrets.update(await request.json())
        return web.Response(status=204)

    def check(hook: str, headers: dict[str, str], body: bytes) -> bool:
        try:
            Webhook(secrets[hook]).verify(body, {k.lower(): v for k, v in headers.items()})
        except (KeyError, WebhookVerificationError):
            return False
        return True

    async def received(request: web.Request) -> web.Response:
        found = []
        for arrived, hook, headers, body in raw:
            data = json.loads(body)["data"]
            found.append(
                {
                    "arrived": arrived,
                    "hook": hook,
                    "webhook_id": headers.get("webhook-id", ""),
                    "recorded": datetime.fromisoformat(data["recorded_at"]).timestamp(),
                    "reference": str(data.get("payload", {}).get("reference", "")),
                    "verified": check(hook, headers, body),
                }
            )
        return web.json_response(found)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"arrived": len(raw)})

    app = web.Application()
    app.router.add_post("/hooks/{hook}", hook)
    app.router.add_post("/secrets", set_secrets)
    app.router.add_get("/received", received)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Receiver:
    """The receiver process; `url(n)` is subscription n's target."""

    def __init__(self, cpus: frozenset[int]) -> None:
        self.port = free_ports(1)[0]
        self.base = f"http://127.0.0.1:{self.port}"
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(target=_serve, args=(self.port, cpus), daemon=True)
        self.process.start()
        wait_until_answers(f"{self.base}/healthz")

    def url(self, n: int) -> str:
        """Where subscription `n` delivers."""
        return f"{self.base}/hooks/{n}"

    def give_secrets(self, secrets: dict[str, str]) -> None:
        """The signing secret of each hook (by its number, as a string)."""
        httpx.post(f"{self.base}/secrets", json=secrets, trust_env=False).raise_for_status()

    def arrived(self) -> int:
        """How many deliveries arrived so far."""
        answer: dict[str, Any] = httpx.get(f"{self.base}/healthz", trust_env=False).json()
        return int(answer["arrived"])

    def received(self) -> list[Arrival]:
        """Every delivery that arrived, its signature checked."""
        answer = httpx.get(f"{self.base}/received", timeout=120.0, trust_env=False)
        return [Arrival(**item) for item in answer.json()]

    def stop(self) -> None:
        """Stop the receiver process."""
        self.process.terminate()
        self.process.join(10)
