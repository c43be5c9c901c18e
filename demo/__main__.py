"""`python -m demo` (`make demo`): start the services, load Wuhou's 2014 and Haiyu's story
through their REST APIs, show where the 30.85 million went, reconcile and verify."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from demo.api import AUDIT_OFFICE_ID, Api, LoadFailed
from demo.receiver import Receiver
from demo.scenario import SMALL, Scale, build
from demo.services import running
from demo.story import Outcome, tell

DATA = Path("data")
app = typer.Typer(add_completion=False)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_for_stop() -> None:
    """Until Ctrl-C or SIGTERM; either way the services are then stopped in order."""
    # Both, explicitly: a shell that starts the demo in the background ignores SIGINT for it.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()


@app.command()
def main(
    small: Annotated[
        bool, typer.Option(help="A smaller world (20 purchases), for a quick look")
    ] = False,
    stay: Annotated[bool, typer.Option(help="Keep the services running afterwards")] = True,
    receiver_port: Annotated[int, typer.Option(help="The webhook receiver's loopback port")] = 8009,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once")] = 8,
) -> None:
    """Load the demo story through the services' APIs and show what it did."""
    # Wide enough for the flow's tables even where output is piped (80 columns otherwise).
    console = Console(width=max(Console().width, 110))
    scenario = build(SMALL if small else Scale())
    receiver = Receiver(receiver_port)
    receiver.start()
    # The receiver is on loopback, which the notifier reaches only when allowed to; it polls
    # often so the demo's counts are complete soon after the last payment.
    allowed = ",".join(filter(None, [os.environ.get("NOTIFIER_ALLOWED_TARGETS"), "127.0.0.1/32"]))
    overrides = {"NOTIFIER_ALLOWED_TARGETS": allowed, "NOTIFIER_POLL_INTERVAL_SECONDS": "0.2"}
    try:
        with running(DATA / "demo-logs", overrides) as urls:
            api = Api(urls["catalog"], urls["ledger"], urls["notifier"], concurrency=concurrency)

            async def story() -> Outcome:
                try:
                    return await tell(api, scenario, receiver, console, DATA / "demo-audit.json")
                finally:
                    await api.aclose()

            try:
                outcome = asyncio.run(story())
            except LoadFailed as failed:
                console.print(f"[bold red]the demo could not load its story:[/] {failed}")
                raise typer.Exit(1) from None
            haiyu = outcome.loaded.ids["DEMO-BA-HAIYU"]
            longjin = outcome.loaded.ids["DEMO-WH-STREET-01-COMMUNITY-1"]
            budget_id = outcome.loaded.budgets[scenario.push_down.reference]["id"]
            console.print(
                "\n[bold]Where to look next[/] (the services keep running; Ctrl-C stops them):\n"
                f"  Haiyu's service guide:   {urls['catalog']}/communities/{haiyu}/guide\n"
                f"  Longjin's service guide: {urls['catalog']}/communities/{longjin}/guide\n"
                "  an auditor's token, for what follows:\n"
                "    export LEDGER_AUDIT_TOKEN=$(.venv/bin/python -m services.token "
                f"--role auditor --org {AUDIT_OFFICE_ID})\n"
                f'  the ledger\'s feed:       curl -H "Authorization: Bearer $LEDGER_AUDIT_TOKEN" '
                f"{urls['ledger']}/events\n"
                f"  the flow in mid-2014:    .venv/bin/ledger-audit flow {budget_id} "
                "--as-of 2014-06-30T23:59:59+08:00\n"
                "  each contract as OCDS:   .venv/bin/ledger-audit export-ocds ocds-2014\n"
                f"  the services' logs:      {DATA / 'demo-logs'}/"
            )
            sound = outcome.verified and not outcome.reconciliation["violations"]
            if stay:
                _wait_for_stop()
            if not sound:
                raise typer.Exit(1)
    finally:
        receiver.stop()


if __name__ == "__main__":
    app()
