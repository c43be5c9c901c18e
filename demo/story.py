"""The demo from end to end against running services: subscribe, load, wait, show."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from demo.api import Api
from demo.load import Loaded, Loader
from demo.receiver import Receiver
from demo.report import show_flow, show_reconciliation, show_verification
from demo.scenario import Scenario

SUBSCRIPTION = "demo receiver: payments and alerts"
NOTIFIED_WITHIN_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    """What the run did and found."""

    loaded: Loaded
    events_recorded: int
    flow: dict[str, Any]
    reconciliation: dict[str, Any]
    verified: bool


async def subscribe(api: Api, receiver: Receiver) -> str:
    """Subscribe the receiver afresh (its secret is shown only once); the subscription's id."""
    listed = await api.get(api.notifier, "/subscriptions", api.finance, {"limit": 100})
    for old in listed["items"]:
        if old["description"] == SUBSCRIPTION:
            response = await api.notifier.delete(f"/subscriptions/{old['id']}", headers=api.finance)
            response.raise_for_status()
    made = await api.post(
        api.notifier,
        "/subscriptions",
        {
            "url": receiver.url,
            "event_types": ["payment.recorded", "payment.reversed", "alert.*"],
            "description": SUBSCRIPTION,
        },
        api.finance,
    )
    receiver.received.secret = made["secret"]
    return str(made["id"])


async def _head(api: Api) -> int:
    page = await api.get(api.ledger, "/events", api.auditor, {"limit": 1})
    return int(page["head"])


async def _notified(api: Api, subscription_id: str, head: int) -> bool:
    """Whether the notifier has read the ledger through `head` and sent everything due."""
    scraped = (await api.notifier.get("/metrics")).text
    position = next(
        (
            sample.value
            for family in text_string_to_metric_families(scraped)
            for sample in family.samples
            if sample.name == "notifier_feed_position" and sample.labels == {"feed": "ledger"}
        ),
        0.0,
    )
    pending = await api.get(
        api.notifier,
        f"/subscriptions/{subscription_id}/deliveries",
        api.finance,
        {"state": "pending", "limit": 1},
    )
    return position >= head and not pending["items"]


async def tell(
    api: Api, scenario: Scenario, receiver: Receiver, console: Console, audit_state: Path
) -> Outcome:
    """Load the scenario through the APIs, then show its flow, reconcile and verify."""
    subscription_id = await subscribe(api, receiver)
    before = await _head(api)
    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        loaded = await Loader(api, scenario).run(progress)
    head = await _head(api)
    console.print(
        f"loaded in {time.monotonic() - started:.1f} s: {head - before} new ledger events "
        f"(the feed's head is {head}){'' if head > before else '; nothing new: all was there'}"
    )
    deadline = time.monotonic() + NOTIFIED_WITHIN_SECONDS
    while not await _notified(api, subscription_id, head):
        if time.monotonic() > deadline:
            console.print("[yellow]the notifier has not caught up yet; counts below are partial[/]")
            break
        await asyncio.sleep(0.2)
    types = receiver.received.types()
    console.print(
        f"webhook receiver: {types['payment.recorded']} payments, "
        f"{types['payment.reversed']} reversal, "
        f"{sum(n for t, n in types.items() if t.startswith('alert.'))} alerts "
        f"({', '.join(f'{t} {n}' for t, n in sorted(types.items()) if t.startswith('alert.'))}); "
        f"every signature checked, {receiver.received.refused} refused"
    )
    names = {loaded.ids[o.code]: o.name for o in scenario.organizations}
    push_down = loaded.budgets[scenario.push_down.reference]
    flow = await show_flow(console, api, push_down["id"], names)
    reconciliation = await show_reconciliation(console, api)
    verified = await show_verification(console, api, audit_state) == 0
    return Outcome(loaded, head - before, flow, reconciliation, verified)
