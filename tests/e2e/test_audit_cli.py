"""The auditor's command line against the ledger as a real process, over HTTP only."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.actors import AUDIT_OFFICE_ID, AUDITOR, token
from tests.support.catalog import seed_parties
from tests.support.ledger_api import (
    allocate,
    cny,
    deliver,
    ok,
    open_budget,
    sign_contract,
    street_of,
)
from tests.support.ocds import ocds_errors
from tests.support.processes import RunningService, running_services

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningService]]:
    """A catalog and a ledger, checkpoints taken only when asked."""
    overrides = {
        "LEDGER_CHECKPOINT_EVERY_ENTRIES": "1000000",
        "LEDGER_CHECKPOINT_EVERY_SECONDS": "86400",
    }
    directory = tmp_path_factory.mktemp("audit-cli")
    with running_services(directory, overrides, names=["catalog", "ledger"]) as running:
        yield running


def audit(ledger: RunningService, *args: str, state: Path | None = None) -> Any:
    """Run `ledger-audit` as an auditor would, against the ledger's URL."""
    env = {
        **os.environ,
        "LEDGER_AUDIT_URL": ledger.url,
        "LEDGER_AUDIT_TOKEN": token("auditor", AUDIT_OFFICE_ID),
        "NO_PROXY": "127.0.0.1",
        "COLUMNS": "200",
    }
    extra = ["--state", str(state)] if state is not None else []
    return subprocess.run(
        [sys.executable, "-m", "ledger_audit", *args, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def story(ledger_url: str, catalog_url: str, reference: str) -> dict[str, Any]:
    """A budget, an allocation, a contract with a delivery accepted and paid; the budget."""
    parties = seed_parties(catalog_url)
    async with httpx.AsyncClient(base_url=ledger_url, trust_env=False) as ledger:
        budget = await open_budget(ledger)
        allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
        contract = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
        cid, street = contract["id"], street_of(contract)
        activation = {"occurred_at": "2014-04-15T09:00:00+08:00"}
        ok(await ledger.post(f"/contracts/{cid}/activation", json=activation, headers=street))
        delivery = await deliver(ledger, contract, "30000.00")
        accept = f"/contracts/{cid}/deliveries/{delivery['id']}/acceptance"
        ok(
            await ledger.post(
                accept, json={"occurred_at": "2014-06-10T10:00:00+08:00"}, headers=street
            )
        )
        pay = {
            "reference": reference,
            "amount": cny("30000.00"),
            "occurred_at": "2014-06-20T10:00:00+08:00",
        }
        ok(await ledger.post(f"/contracts/{cid}/payments", json=pay, headers=street))
        ok(await ledger.post("/audit/checkpoints", headers=AUDITOR), 200, 201)
    return budget


def tamper(ledger: RunningService, sql: str, *params: Any) -> None:
    """Change the ledger's SQLite file behind its back, as a rogue operator could."""
    path = ledger.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=10) as connection:
        connection.execute(sql, params)


async def test_an_auditor_verifies_reads_the_flow_reconciles_and_exports(
    pair: dict[str, RunningService], tmp_path: Path
) -> None:
    ledger = pair["ledger"]
    budget = await story(ledger.url, pair["catalog"].url, "GK-2014-06-000123")
    state = tmp_path / "state.json"

    verified = audit(ledger, "verify", state=state)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: 11 entries, 1 checkpoints" in verified.stdout
    kept = json.loads(state.read_text())
    assert kept["tree_size"] == 11

    flow = audit(ledger, "flow", budget["id"], "--as-of", "2014-12-31T23:59:59+08:00")
    assert flow.returncode == 0, flow.stderr
    assert "paid 30000.00" in flow.stdout
    assert "appropriated 30850000.00" in flow.stdout
    assert "(read-model)" in flow.stdout
    # Replayed from the events instead, the same tree but for where it came from.
    replayed = audit(
        ledger, "flow", budget["id"], "--as-of", "2014-12-31T23:59:59+08:00", "--replay"
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == flow.stdout.replace("(read-model)", "(replay)")

    reconciled = audit(ledger, "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout
    assert "checked 11 events" in reconciled.stdout

    exported = audit(ledger, "export-ocds", str(tmp_path / "ocds"))
    assert exported.returncode == 0, exported.stderr
    packages = sorted((tmp_path / "ocds").glob("*.json"))
    assert len(packages) == 2  # one contract: its release package and its record package
    for package in packages:
        assert ocds_errors(json.loads(package.read_text())) == [], package.name


async def test_an_altered_event_and_a_rewritten_history_are_both_caught(
    pair: dict[str, RunningService], tmp_path: Path
) -> None:
    ledger = pair["ledger"]
    await story(ledger.url, pair["catalog"].url, "GK-2014-06-000456")
    state = tmp_path / "state.json"
    assert audit(ledger, "verify", state=state).returncode == 0
    head = json.loads(state.read_text())["tree_size"]

    # The last payment's amount, raised in the stored event itself.
    tamper(
        ledger,
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), "
        "'\"amount_fen\":3000000', '\"amount_fen\":3100000') AS BLOB) "
        "WHERE topic LIKE '%PaymentRecorded' AND CAST(state AS TEXT) LIKE '%GK-2014-06-000456%'",
    )
    altered = audit(ledger, "verify", state=state)
    assert altered.returncode == 1
    assert "NOT VERIFIED" in altered.stdout
    assert f"position {head} no longer hashes as the ledger recorded it" in altered.stdout

    # The operator covers it up: new leaf hashes and a freshly signed checkpoint. The ledger
    # then agrees with itself, but not with the root this auditor verified before.
    tamper(ledger, "DELETE FROM ledger_checkpoints")
    tamper(ledger, "DELETE FROM ledger_leaves")
    ledger.restart()  # the operator's ledger starts over from the rewritten tables
    with httpx.Client(base_url=ledger.url, trust_env=False) as http:
        ok(http.post("/audit/checkpoints", headers=AUDITOR), 200, 201)
        assert ok(http.get("/audit/verification", headers=AUDITOR), 200)["ok"] is True
    rewritten = audit(ledger, "verify", state=state)
    assert rewritten.returncode == 1
    assert "no longer hash to the root this tool verified" in rewritten.stdout
