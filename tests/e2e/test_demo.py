"""The demo's story, smaller, across the three services as processes on PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from demo.api import Api, fen
from demo.receiver import Receiver
from demo.scenario import PUSH_DOWN_FEN, SMALL, build
from demo.story import tell
from tests.e2e.test_notifier import OVERRIDES
from tests.support.postgres import PostgresServer
from tests.support.processes import RunningService, free_ports, running_services

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]


@pytest.fixture
def stack(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[dict[str, RunningService]]:
    """The three services, each on a fresh PostgreSQL database of its own."""
    names = [postgres_server.create_database() for _ in range(3)]
    databases = {
        f"{service.upper()}_DATABASE_URL": postgres_server.url(name)
        for service, name in zip(("catalog", "ledger", "notifier"), names, strict=True)
    }
    try:
        with running_services(tmp_path / "services", {**OVERRIDES, **databases}) as running:
            yield running
    finally:
        for name in names:
            postgres_server.drop_database(name)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The demo's webhook receiver on a free loopback port."""
    served = Receiver(free_ports(1)[0])
    served.start()
    try:
        yield served
    finally:
        served.stop()


def figures(node: dict[str, Any], *names: str) -> tuple[int, ...]:
    """A node's figures in fen."""
    return tuple(fen(node[name]) for name in names)


async def test_the_story_adds_up_is_notified_once_verifies_and_loads_once(
    stack: dict[str, RunningService], receiver: Receiver, tmp_path: Path
) -> None:
    scenario = build(SMALL)
    api = Api(stack["catalog"].url, stack["ledger"].url, stack["notifier"].url)
    shown = io.StringIO()
    console = Console(file=shown, width=120)
    try:
        first = await tell(api, scenario, receiver, console, tmp_path / "audit.json")
        budget_id = first.loaded.budgets[scenario.push_down.reference]["id"]
        replayed = await api.get(
            api.ledger, f"/audit/budgets/{budget_id}/flow", api.auditor, {"source": "replay"}
        )
        second = await tell(api, scenario, receiver, console, tmp_path / "audit.json")
        again = await api.get(api.ledger, f"/audit/budgets/{budget_id}/flow", api.auditor)
    finally:
        await api.aclose()

    # Replayed from the events alone: every fen of the 30.85 million allocated, committed,
    # accepted and paid, and the read model the demo printed from says the same.
    root = replayed["budget"]
    everything = (PUSH_DOWN_FEN,) * 5
    assert figures(root, "appropriated", "allocated", "committed", "accepted", "paid") == everything
    assert fen(root["remaining"]) == 0
    assert {**first.flow, "source": "replay"} == replayed
    contracts = [n for a in root["children"] for n in a["children"] if n["kind"] == "contract"]
    assert len(contracts) == len(scenario.purchases)
    assert sum(fen(c["paid"]) for c in contracts) == PUSH_DOWN_FEN
    # The rejected reports and the payment keyed wrong are on record, counting nothing.
    deliveries = [d for c in contracts for d in c["children"] if d["kind"] == "delivery"]
    assert sum(d["state"] == "rejected" for d in deliveries) == SMALL.rejected_deliveries
    payments = [p for c in contracts for p in c["children"] if p["kind"] == "payment"]
    assert [p["id"] for p in payments if p["state"] == "reversed"] == [
        p.reference for s in scenario.purchases for p in s.payments if p.reversal
    ]

    # Every payment reached the receiver, each under one webhook-id, however often it came.
    expected = {p.reference for s in scenario.purchases for p in s.payments}
    assert set(receiver.received.payments) == expected
    assert all(len(ids) == 1 for ids in receiver.received.payments.values())
    assert receiver.received.refused == 0

    assert first.reconciliation["violations"] == []
    assert all(check["ran"] for check in first.reconciliation["checks"])
    assert first.verified
    assert "no violations" in shown.getvalue()

    # Loading it again finds everything made the first time and adds nothing.
    assert first.events_recorded > 0
    assert second.events_recorded == 0
    assert second.loaded.ids == first.loaded.ids
    assert again == first.flow
    assert second.verified
