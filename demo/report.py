"""What the demo shows once loaded: the push-down budget's flow, reconciliation, verification."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from demo.api import Api, fen

TOP_PROVIDERS = 12


def _money(value: int) -> str:
    return f"{value // 100:,}.{value % 100:02d}"


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node["children"]:
        yield from _walk(child)


def flow_tables(flow: dict[str, Any], names: dict[str, str]) -> tuple[Table, Table]:
    """The flow by street office (its allocations) and by provider (its contracts)."""
    root = flow["budget"]
    streets = Table(title=f"{root['title']}: by street office", title_justify="left")
    for column in ("street office", "allocated", "committed", "accepted", "paid", "remaining"):
        streets.add_column(column, justify="left" if column == "street office" else "right")
    for allocation in root["children"]:
        streets.add_row(
            names.get(allocation["street_office_id"], allocation["street_office_id"]),
            *(
                _money(fen(allocation[f]))
                for f in ("allocated", "committed", "accepted", "paid", "remaining")
            ),
        )
    streets.add_row(
        "total",
        *(
            _money(fen(root[f]))
            for f in ("allocated", "committed", "accepted", "paid", "remaining")
        ),
        style="bold",
    )
    by_provider: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for node in _walk(root):
        if node["kind"] == "contract":
            figures = by_provider[node["provider_id"]]
            figures[0] += 1
            for n, name in enumerate(("committed", "accepted", "paid"), 1):
                figures[n] += fen(node[name])
    providers = Table(
        title=f"by provider ({len(by_provider)} providers; the {TOP_PROVIDERS} paid most)",
        title_justify="left",
    )
    for column in ("provider", "contracts", "committed", "accepted", "paid"):
        providers.add_column(column, justify="left" if column == "provider" else "right")
    ranked = sorted(by_provider.items(), key=lambda kv: (-kv[1][3], kv[0]))
    for provider_id, (count, committed, accepted, paid) in ranked[:TOP_PROVIDERS]:
        providers.add_row(
            names.get(provider_id, provider_id),
            str(count),
            *map(_money, (committed, accepted, paid)),
        )
    totals = [sum(f[n] for f in by_provider.values()) for n in range(4)]
    providers.add_row("all providers", str(totals[0]), *map(_money, totals[1:]), style="bold")
    return streets, providers


async def show_flow(
    console: Console, api: Api, budget_id: str, names: dict[str, str]
) -> dict[str, Any]:
    """Print the budget's flow from the ledger's audit API; the flow as read."""
    flow: dict[str, Any] = await api.get(
        api.ledger, f"/audit/budgets/{budget_id}/flow", api.auditor
    )
    streets, providers = flow_tables(flow, names)
    console.print(streets)
    console.print(providers)
    return flow


async def show_reconciliation(console: Console, api: Api) -> dict[str, Any]:
    """Run the reconciliation and print its outcome."""
    report: dict[str, Any] = await api.get(api.ledger, "/audit/reconcile", api.auditor)
    ran = [c for c in report["checks"] if c["ran"]]
    mark = (
        "[green]no violations[/]"
        if not report["violations"]
        else f"[red]{len(report['violations'])} violations[/]"
    )
    console.print(
        f"reconciliation: {report['events_checked']} events replayed, {len(ran)} of "
        f"{len(report['checks'])} checks run: {mark}"
    )
    for violation in report["violations"]:
        console.print(f"  [red]{violation['rule']}[/]: {violation['message']}")
    return report


async def show_verification(console: Console, api: Api, state: Path) -> int:
    """Have the ledger sign a checkpoint, then verify the whole log as an outside auditor would."""
    await api.post(api.ledger, "/audit/checkpoints", {}, api.auditor)
    token = api.auditor["Authorization"].removeprefix("Bearer ")
    done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "ledger_audit",
            "verify",
            "--url",
            api.ledger_url,
            "--state",
            str(state),
        ],
        env=os.environ | {"LEDGER_AUDIT_TOKEN": token},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    console.print(f"ledger-audit verify: {lines[-1] if lines else '(no output)'}")
    return done.returncode
