"""`python -m bench` (`make bench`): every benchmark, printed and written to BENCHMARKS.md."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench.appends import (
    DELIVERIES,
    ECHO,
    PAYMENTS,
    appends_name,
    clients_text,
    library_name,
)
from bench.config import FULL, QUICK, Sizes
from bench.document import render, show
from bench.loadgen import LoadGenerator
from bench.machine import describe, load_average
from bench.memory import MemoryMonitor
from bench.report import Target, ceilings, fmt, million_estimate, targets
from bench.results import Results, Row
from bench.run import Run
from bench.services import Cores, Stack
from services.ledger.settings import LedgerSettings
from services.notifier.settings import NotifierSettings
from tests.support.postgres import find_or_start_postgres

app = typer.Typer(add_completion=False)


def _default_mode() -> str:
    return f"{LedgerSettings().group_commit_ms:g} ms (default)"


def _judge(results: Results, sizes: Sizes) -> tuple[list[Target], list[str]]:
    """The targets, and the ratios the run shows (group commit, echo, library)."""
    most = max(sizes.clients)
    echo = results.find("yardstick", f"{ECHO}, {clients_text(most)}")
    libraries = [results.find("yardstick", library_name(t)) for t in sizes.library_threads]
    measured = [row for row in libraries if row is not None]
    library = max(measured, key=lambda row: row.rate) if measured else None
    appends: list[tuple[str, Row]] = []
    ratios: list[str] = []
    for kind in (DELIVERIES, PAYMENTS):
        on = results.find("appends", appends_name(kind, most, _default_mode()))
        off = results.find("appends", appends_name(kind, most, "off"))
        if on is not None:
            appends.append((f"{kind}, {clients_text(most)}", on))
        if on is not None and off is not None and off.rate > 0:
            ratios.append(
                f"{kind}, {clients_text(most)}: group commit on / off = {on.rate / off.rate:.2f}× "
                f"({fmt(on.rate)} / {fmt(off.rate)} req/s; p99 {fmt(on.p99)} / "
                f"{fmt(off.p99)} ms)"
            )
        if on is not None and echo is not None and echo.rate > 0:
            ratios.append(f"{kind}, {clients_text(most)} / echo: {on.rate / echo.rate:.2f}×")
        if on is not None and library is not None and library.rate > 0:
            ratios.append(
                f"{kind}, {clients_text(most)} / library alone: {on.rate / library.rate:.2f}×"
            )
    ratios += ceilings(echo, library, most)
    return targets(results, appends=appends, echo=echo, library=library), ratios


def _method(results: Results, sizes: Sizes, cores: Cores, poll: float) -> None:
    results.method = {
        "pinning": f"{cores.describe()} (`sched_setaffinity` on every thread of each "
        "service, the echo server and the library's process; the load generator, the webhook "
        "receiver and `ledger-audit` run in processes of their own on the load core). "
        "PostgreSQL is not started by the benchmark and is not pinned: it shares both cores.",
        "load generator": "a spawned process running N asyncio clients (aiohttp, one keep-alive "
        "connection each, closed loop: one request in flight per client); it measures its own "
        "CPU time over the measured window, and a figure marked saturated is a floor",
        "durations": f"{sizes.warmup_seconds:g} s warm-up, then {sizes.measure_seconds:g} s "
        f"measured, per setup and run; {sizes.repetitions} runs of every setup, interleaved "
        "(each run measures every setup once), medians reported",
        "appends": f"{sizes.contracts} contracts on one budget, loaded over HTTP by the demo's "
        f"loader; {sizes.pool} take deliveries (1.00 CNY each) and {sizes.pool} take payments "
        "(0.01 CNY each, fresh treasury reference, against one accepted delivery each). Each "
        "client writes only to its own share of them, so there are no write conflicts; every "
        "non-2xx answer counts as an error. 'Payments against one hot budget' means payments "
        "on many contracts that all commit against one budget: a payment changes its contract "
        "only. Group commit is measured as the ledger ships (on) at every number of clients, "
        f"and off at {clients_text(max(sizes.clients))} to compare; the ledger is restarted "
        "between the two.",
        "yardsticks": "(a) a trivial FastAPI app (bench/echo.py) on uvicorn with the services' "
        "settings, echoing the delivery requests' bodies on the same paths and headers; (b) "
        "the eventsourcing library alone (a plain Application on PostgreSQL, an aggregate "
        "whose event carries a delivery's fields), one save per event",
        "as-of": f"the appends' budget brought to {sizes.flow_events:,} events behind it "
        "(its own and its contracts') by seeding deliveries, acceptances and payments "
        "in-process through the domain's commands, dated October to December 2014; then "
        "`GET /audit/budgets/{id}/flow` (the read model, the default source) by one client "
        f"over HTTP, in {sizes.repetitions} runs, interleaved: in each, one warm-up request, "
        f"then at least {sizes.as_of_least} and at most {sizes.as_of_requests} (or "
        f"{sizes.measure_seconds:g} s) of them; with only a few requests, a run's p99 is its "
        "slowest, and the median of the runs' is reported. Each flow is read two ways: as "
        "any caller reads it, answered from the answer kept since an earlier read while the "
        "budget is unchanged (the warm-up's, or an earlier run's); the whole tree read "
        "first after a change to one of its contracts (a 1.00 CNY delivery recorded over "
        "HTTP before each read, not timed, though its CPU counts in the server's); and built "
        "afresh (`Cache-Control: no-cache`), every part of it",
        "server CPU": "the CPU time the server process (the ledger; the echo app; for "
        "webhooks, the notifier) used over each run, as a share of its one core, and per "
        "unit of work",
        "feed and verification": "the same ledger after seeding"
        + (
            f", brought to {sizes.feed_entries:,} entries by seeding more on a second budget "
            "(16 contracts; the same events, recorded through the aggregates' event methods "
            "without the commands' checks), while the read model followed in a process of its "
            "own; "
            if sizes.feed_entries
            else ", "
        )
        + "paged through at 1000 entries "
        "a page by one reader on the load core, then `ledger-audit verify` (a subprocess on "
        f"the load core) after a checkpoint was signed, {sizes.repetitions} times in turn; "
        "entries/s = entries / wall seconds, the median of the runs",
        "webhooks": f"a ledger of its own with {sizes.webhook_contracts} contracts, the "
        f"notifier (poll interval {poll:g} s) and a receiver process on the load core with "
        f"{sizes.subscriptions} subscriptions to `payment.recorded`; {sizes.webhook_payments} "
        f"payments at {sizes.payments_per_second:g}/s (steady), then {sizes.webhook_payments} "
        f"at once (burst), {sizes.repetitions} times in turn",
        "memory": "VmRSS of each service process sampled four times a second from /proc, plus "
        "the kernel's VmHWM for the peak",
    }


PHASES = ("appends", "as-of", "feed", "webhooks")


@app.command()
def main(
    quick: Annotated[bool, typer.Option(help="Small sizes and short runs: a smoke test")] = False,
    output: Annotated[Path, typer.Option(help="Where to write the report")] = Path("BENCHMARKS.md"),
    feed_entries: Annotated[
        int | None,
        typer.Option(
            help="Seed the ledger up to this many feed entries (default: a million; 0: only "
            "the as-of seeding's)"
        ),
    ] = None,
    notifier_poll_seconds: Annotated[
        float, typer.Option(help="The notifier's poll interval (default: the notifier's own)")
    ] = NotifierSettings.model_fields["poll_interval_seconds"].default,
    keep: Annotated[bool, typer.Option(help="Keep the services' logs (path printed)")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Run only these: appends, as-of, feed, webhooks (repeatable)"),
    ] = None,
) -> None:
    """Run every benchmark on PostgreSQL and write BENCHMARKS.md."""
    console = Console(width=max(Console().width, 120))
    sizes = QUICK if quick else FULL
    if feed_entries is not None:
        sizes = replace(sizes, feed_entries=feed_entries)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    server, stop_postgres = find_or_start_postgres(workdir / "postgres")
    cores = Cores.split()
    memory = MemoryMonitor()
    stack = Stack(server, workdir / "logs", cores, memory)
    loadgen = LoadGenerator(cores.load)
    run = Run(stack, loadgen, memory, sizes, console, notifier_poll_seconds=notifier_poll_seconds)
    results = run.results
    failed = False
    try:
        results.machine = describe(server)
        run.set_up()
        chosen = set(only or PHASES)
        if unknown := chosen - set(PHASES):
            raise typer.BadParameter(f"no phase {', '.join(sorted(unknown))}", param_hint="--only")
        if "appends" in chosen:
            run.appends()
        if "as-of" in chosen or "feed" in chosen:
            run.as_of()  # the feed is read from the ledger the as-of seeding leaves
        if "feed" in chosen:
            run.feed_and_verify(workdir / "audit-state.json")
        if "webhooks" in chosen:
            run.webhooks(workdir / "audit-state.json")
        run.correctness()
    except Exception as exc:
        # What was measured before is still worth writing down, with why the rest is missing.
        failed = True
        console.print_exception()
        results.notes.append(f"**The run stopped early**: {type(exc).__name__}: {exc}")
    finally:
        loadgen.close()
        memory.sample()
        results.memory = {
            w.label: (w.peak_kib, [(p, f[0], f[1], f[2]) for p, f in w.phases.items() if p])
            for w in memory.watched.values()
        }
        stack.close()
        memory.close()
        stop_postgres()
        if keep:
            console.print(f"logs kept in {workdir / 'logs'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    _method(results, sizes, cores, notifier_poll_seconds)
    million = million_estimate(results, sizes.repetitions)
    if million is not None:
        results.notes.insert(0, million)
    found, ratios = _judge(results, sizes)
    show(console, results, found)
    results.machine["load average (1, 5, 15 min) at the end"] = load_average()
    output.write_text(render(results, found, ratios), encoding="utf-8")
    console.print(f"written to {output}")
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
