"""Benchmarks 2 to 4: as-of flow reads, paging through the feed, and the auditor's verification."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.config import Sizes
from bench.loadgen import Change, LoadGenerator
from bench.results import Results
from bench.services import pin

# A past date in the middle of the seeded deliveries (October to December 2014).
PAST = "2014-11-15T23:59:59+08:00"
FEED_PAGE = 1000  # the largest page GET /events serves


# How each flow is asked for: answered from the one kept since an earlier read of the unchanged
# budget (the default); read first after a delivery to one of its contracts, as a budget being
# written to is (the whole tree only: read to its contracts, such a read is one built afresh);
# or built afresh from the read model, every part of it.
_ANSWERS: tuple[tuple[str, dict[str, str], bool], ...] = (
    ("kept from an earlier read", {}, False),
    ("after a change to one contract", {}, True),
    ("built afresh", {"Cache-Control": "no-cache"}, False),
)


@dataclass(frozen=True)
class FlowRead:
    """One way of reading a flow: its row name, URL, extra headers, and whether a delivery to
    one of the budget's contracts goes before each read."""

    name: str
    url: str
    headers: dict[str, str]
    after_change: bool


def flow_reads(events: int, url: str) -> list[FlowRead]:
    """Each flow read: the whole tree and to contracts, now and in the past, kept, after a
    change and afresh."""
    past = f"as_of={PAST.replace('+', '%2B')}"
    reads = []
    for label, depth in (("", ""), (" to contracts", "depth=contracts")):
        for answer, more, after_change in _ANSWERS:
            if after_change and depth:
                continue
            for when, terms in (("now", ""), (f"as of {PAST[:10]}", past)):
                query = "&".join(part for part in (depth, terms) if part)
                name = f"budget flow{label}, {events:,} events behind it, {when}, {answer}"
                full = f"{url}?{query}" if query else url
                reads.append(FlowRead(name, full, more, after_change))
    return reads


def measure_flows(
    results: Results,
    loadgen: LoadGenerator,
    sizes: Sizes,
    ledger_url: str,
    budget_id: str,
    auditor: dict[str, str],
    events: int,
    server_cpu: Callable[[], float],
    change: Change,
) -> None:
    """`GET /audit/budgets/{id}/flow`, now and as of a past date, by one client, each run.

    Counted by requests rather than in a time window: one read may take longer than a window.
    Runs are interleaved, as the appends' are: each run reads every flow once.
    """
    reads = flow_reads(events, f"{ledger_url}/audit/budgets/{budget_id}/flow")
    for _ in range(sizes.repetitions):
        for read in reads:
            cpu, wall = server_cpu(), time.perf_counter()
            outcome = loadgen.repeat(
                read.url,
                {**auditor, **read.headers},
                requests=sizes.as_of_requests,
                least=sizes.as_of_least,
                seconds=sizes.measure_seconds,
                change=change if read.after_change else None,
            )
            name = read.name
            row = results.row("as-of", name, "req/s")
            row.server_cpu.append((server_cpu() - cpu) / (time.perf_counter() - wall))
            row.add(outcome.rate, outcome.p50_ms, outcome.p99_ms)
            row.errors += outcome.errors
            row.loadgen_cpu.append(outcome.cpu_share)
            if outcome.first_error and not row.note:
                row.note = f"first error: {outcome.first_error}"


def feed_name(entries: int) -> str:
    """The row name of the feed read."""
    return f"paging through {entries:,} feed entries, {FEED_PAGE} a page, one reader"


def measure_feed(
    results: Results,
    loadgen: LoadGenerator,
    ledger_url: str,
    auditor: dict[str, str],
    server_cpu: Callable[[], float],
) -> int:
    """Read the whole feed, page by page, from the load generator's core; the entries read."""
    cpu = server_cpu()
    paged = loadgen.page_feed(ledger_url, auditor, FEED_PAGE)
    row = results.row("feed", feed_name(paged.entries), "entries/s")
    row.server_cpu.append((server_cpu() - cpu) / paged.seconds)
    row.add(paged.rate, paged.page_p50_ms, paged.page_p99_ms)
    row.loadgen_cpu.append(paged.cpu_share)
    row.note = f"{paged.pages} pages; latency columns are per page"
    return paged.entries


@dataclass(frozen=True)
class Verified:
    """What one `ledger-audit verify` said, and how long it took."""

    ok: bool
    entries: int
    seconds: float
    output: str
    cpu_seconds: float


def sign_checkpoint(ledger_url: str, auditor: dict[str, str]) -> float:
    """Have the ledger sign a checkpoint of every entry now; the seconds it took."""
    started = time.perf_counter()
    response = httpx.post(
        f"{ledger_url}/audit/checkpoints", headers=auditor, timeout=600.0, trust_env=False
    )
    response.raise_for_status()
    return time.perf_counter() - started


def verify(ledger_url: str, token: str, state: Path, cpus: frozenset[int]) -> Verified:
    """Run `ledger-audit verify` as an auditor would, in its own process on `cpus`."""
    env = {**os.environ, "LEDGER_AUDIT_URL": ledger_url, "LEDGER_AUDIT_TOKEN": token}
    # The state file pins the key and the last root: a fresh one per verification here.
    state.unlink(missing_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603  (this interpreter, the project's own CLI)
        [sys.executable, "-m", "ledger_audit", "verify", "--state", str(state)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pin(process.pid, cpus)
    assert process.stdout is not None
    output = process.stdout.read()
    # wait4 rather than wait: it also says how much CPU the verifier itself used.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    found = re.search(r"verified: (\d+) entries", output)
    last = output.strip().splitlines()[-1] if output.strip() else ""
    return Verified(
        process.returncode == 0 and found is not None,
        int(found.group(1)) if found else 0,
        seconds,
        last,
        usage.ru_utime + usage.ru_stime,
    )


def measure_verify(
    results: Results,
    ledger_url: str,
    token: str,
    state: Path,
    cpus: frozenset[int],
    server_cpu: Callable[[], float],
) -> Verified:
    """The verification benchmark: entries per wall second of `ledger-audit verify`."""
    cpu = server_cpu()
    done = verify(ledger_url, token, state, cpus)
    row = results.row("verify", f"ledger-audit verify, {done.entries:,} entries", "entries/s")
    row.add(done.entries / done.seconds if done.ok else 0.0)
    row.server_cpu.append((server_cpu() - cpu) / done.seconds)
    # The verifier's own CPU, in the column the load generator's takes elsewhere.
    row.loadgen_cpu.append(done.cpu_seconds / done.seconds)
    row.note = f"load CPU is the verifier's own; {done.output[:160]}"
    return done
