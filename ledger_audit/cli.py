"""`ledger-audit`: verify the ledger's log, read a budget's flow, reconcile, export OCDS.

It talks to the ledger's HTTP API only, with an auditor's (or finance's) bearer token, so it
needs nothing from the operators but that API: `--url` / LEDGER_AUDIT_URL and `--token` /
LEDGER_AUDIT_TOKEN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.tree import Tree

from ledger_audit.client import AuditClient, LedgerUnreachable
from ledger_audit.verification import (
    RootMismatch,
    VerificationFailed,
    Verified,
    first_difference,
    verify_log,
)

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
# Soft wrap: long findings stay one line, so logs and scripts can search them.
console = Console(soft_wrap=True)

Url = Annotated[str, typer.Option(envvar="LEDGER_AUDIT_URL", help="The ledger's base URL")]
Token = Annotated[
    str, typer.Option(envvar="LEDGER_AUDIT_TOKEN", help="A bearer token (auditor or finance)")
]
Timeout = Annotated[
    float,
    typer.Option(
        min=1,
        help="Seconds to wait for each answer; the ledger builds a whole flow before it "
        "answers, which takes a while on a large budget (a reconciliation says how far it has "
        "gone every second)",
    ),
]
DEFAULT_URL = "http://127.0.0.1:8002"
# A ledger of an earlier release answers a reconciliation only once done, about 10,000 events
# a second on a two-core machine (BENCHMARKS.md); this one says how far it has gone meanwhile.
LONG_TIMEOUT = 900.0


def _client(url: str, token: str, timeout: float = 30.0) -> AuditClient:
    """A client that says so when the ledger asks it to come back later."""
    return AuditClient(
        url, token, timeout, waiting=lambda message: console.print(f"[yellow]{message}[/]")
    )


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]{message}[/]")
    return typer.Exit(code)


@app.command()
def verify(
    url: Url = DEFAULT_URL,
    token: Token = "",
    state: Annotated[
        Path, typer.Option(help="Where the last verified checkpoint and the key are kept")
    ] = Path(".ledger-audit/state.json"),
    public_key: Annotated[
        str | None, typer.Option(help="The checkpoint key to trust (hex); default: pinned")
    ] = None,
) -> None:
    """Recompute every leaf hash and root, check every signature and the earlier verified root."""
    client = _client(url, token)
    try:
        earlier = Verified.load(state)
        served_key = client.get("/audit/public-key")["raw"]
        trusted = public_key or (earlier.public_key if earlier else served_key)
        if served_key != trusted:
            raise VerificationFailed(
                f"the ledger now signs with key {served_key}, not the trusted {trusted}"
            )
        checkpoints = client.checkpoints()
        head = client.head()
        with Progress(
            TextColumn("hashing the feed"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            task = progress.add_task("feed", total=head)
            size, latest = verify_log(
                client.log(),
                checkpoints,
                trusted,
                earlier,
                progress=lambda n: progress.advance(task, n),
            )
    except RootMismatch as exc:
        # The ledger's own record of each leaf hash points at the entry that changed, when the
        # operator did not rewrite that record too.
        where = first_difference(exc.computed, client.leaves(len(exc.computed)))
        hint = (
            f"; position {where} no longer hashes as the ledger recorded it"
            if where is not None
            else "; the ledger's recorded leaf hashes were rewritten too"
        )
        raise _fail(f"NOT VERIFIED: {exc}{hint}") from None
    except VerificationFailed as exc:
        raise _fail(f"NOT VERIFIED: {exc}") from None
    except LedgerUnreachable as exc:
        raise _fail(str(exc), code=2) from None
    finally:
        client.close()
    if latest is not None:
        Verified(trusted, latest["tree_size"], latest["root_hash"], latest["timestamp"]).save(state)
    console.print(
        f"verified: {size} entries, {len(checkpoints)} checkpoints signed by {trusted[:16]}…"
        + (f"; latest root {latest['root_hash']} at {latest['tree_size']}" if latest else "")
    )


def _money(value: dict[str, str] | None) -> str:
    return "" if value is None else f"{value['amount']}"


def _label(node: dict[str, Any]) -> str:
    figures = (
        "appropriated",
        "allocated",
        "committed",
        "accepted",
        "paid",
        "remaining",
    )
    shown = ", ".join(f"{name} {_money(node[name])}" for name in figures if node.get(name))
    name = node.get("reference") or node.get("title") or node["id"]
    return f"[bold]{node['kind']}[/] {name}: {shown}"


def _grow(tree: Tree, node: dict[str, Any]) -> None:
    for child in node.get("children", []):
        _grow(tree.add(_label(child)), child)


@app.command()
def flow(
    budget: Annotated[str, typer.Argument(help="The budget's id")],
    url: Url = DEFAULT_URL,
    token: Token = "",
    as_of: Annotated[
        str | None, typer.Option(help="Business time, e.g. 2014-12-31T23:59:59+08:00")
    ] = None,
    known_at: Annotated[str | None, typer.Option(help="Record time, or a feed position")] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the flow as CSV here")] = None,
    replay: Annotated[
        bool,
        typer.Option(
            help="Have the ledger replay the budget's events for this answer instead of "
            "reading its flow read model"
        ),
    ] = False,
    timeout: Timeout = LONG_TIMEOUT,
) -> None:
    """Where a budget's money went: allocations, contracts, deliveries accepted, payments."""
    client = _client(url, token, timeout)
    asked = {"as_of": as_of, "known_at": known_at, "source": "replay" if replay else None}
    try:
        answer = client.get(f"/audit/budgets/{budget}/flow", **asked)
        if csv is not None:
            text = client.text(f"/audit/budgets/{budget}/flow.csv", **asked)
            csv.write_text(text, encoding="utf-8")
    except LedgerUnreachable as exc:
        raise _fail(str(exc), code=2) from None
    finally:
        client.close()
    root = answer["budget"]
    tree = Tree(_label(root))
    _grow(tree, root)
    console.print(f"as known at feed position {answer['position']} ({answer['source']})")
    console.print(tree)


_STAGES = {"replaying": "replaying the feed", "checking": "checking beside the feed"}


@app.command()
def reconcile(url: Url = DEFAULT_URL, token: Token = "", timeout: Timeout = LONG_TIMEOUT) -> None:
    """Replay the whole ledger and check every invariant; exit 1 on any violation."""
    client = _client(url, token, timeout)
    answer: dict[str, Any] | None = None
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            task = progress.add_task("replaying the feed", total=None)
            for line in client.lines("/audit/reconcile"):
                if "progress" in line:
                    how_far = line["progress"]
                    progress.update(
                        task,
                        description=_STAGES.get(how_far["stage"], how_far["stage"]),
                        completed=how_far["replayed_through"],
                        total=how_far["head"],
                    )
                elif "problem" in line:
                    raise _fail(f"the reconciliation stopped: {line['problem']['detail']}", code=2)
                else:
                    answer = line.get("reconciliation", line)
    except LedgerUnreachable as exc:
        raise _fail(str(exc), code=2) from None
    finally:
        client.close()
    if answer is None:
        raise _fail("the ledger's answer ended before the reconciliation did", code=2)
    for check in answer["checks"]:
        mark = "[green]ok[/]" if check["ran"] and not check["violations"] else "[red]!![/]"
        mark = mark if check["ran"] else "[yellow]not run[/]"
        console.print(f"{mark} {check['rule']}: {check['invariant']}")
    for violation in answer["violations"]:
        positions = ", ".join(str(e["position"]) for e in violation["events"])
        console.print(f"[red]{violation['rule']}[/]: {violation['message']} ({positions})")
    console.print(
        f"checked {answer['events_checked']} events, to position {answer['checked_through']}"
    )
    if answer["violations"]:
        raise typer.Exit(1)


@app.command("export-ocds")
def export_ocds(
    directory: Annotated[Path, typer.Argument(help="Where to write the OCDS packages")],
    url: Url = DEFAULT_URL,
    token: Token = "",
    budget: Annotated[str | None, typer.Option(help="Only this budget's contracts")] = None,
) -> None:
    """Write each contract's OCDS release package and record package as JSON files."""
    client = _client(url, token)
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        cursor: int | None = 0
        while cursor is not None:
            page = client.get("/contracts", budget_id=budget, limit=100, cursor=cursor)
            for contract in page["items"]:
                path = f"/audit/ocds/contracts/{contract['id']}"
                releases = client.get(f"{path}/releases")
                record = client.get(f"{path}/record")
                ocid = record["records"][0]["ocid"]
                for suffix, package in (("releases", releases), ("record", record)):
                    target = directory / f"{ocid}.{suffix}.json"
                    target.write_text(
                        json.dumps(package, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
                    )
                written += 1
            cursor = page["next_cursor"]
    except LedgerUnreachable as exc:
        raise _fail(str(exc), code=2) from None
    finally:
        client.close()
    console.print(f"wrote the OCDS packages of {written} contracts to {directory}")
