"""Benchmark 1: durable appends over HTTP, with its two yardsticks measured in the same run.

Deliveries are recorded against many contracts; payments against many contracts that all
commit against one budget (a payment changes only its contract, not the budget). Two writes to
the same contract at once are refused (409 concurrent-write), so each client writes only to
its own share of the contracts, cycling through them: the benchmark measures throughput, not
conflicts. Every answer that is not 2xx counts as an error.

Each repetition measures every setup once, group commit on at every number of clients and off
at the most (in alternating order), so the slow growth of the contracts (each write replays its
contract's events) and the shared machine's other load weigh on both alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.config import Sizes
from bench.library import Library
from bench.loadgen import MARK, Client, Load, LoadGenerator, Outcome
from bench.results import Results
from bench.world import ContractRef, delivery_body, payment_body
from demo.api import Api
from proto.actor import Role

DELIVERIES = "deliveries, many contracts"
PAYMENTS = "payments, one hot budget"
ECHO = "trivial FastAPI echo"
PAYMENT_FEN = 1  # 0.01 CNY: a contract's accepted value lasts for a million of them


@dataclass(frozen=True)
class Mode:
    """A ledger configuration the appends run under: its label and its LEDGER_ env."""

    label: str
    env: dict[str, str]
    # Only at the most clients, where the two modes are compared; every level when False.
    most_only: bool = False


def _share(contracts: list[ContractRef], clients: int, index: int) -> list[ContractRef]:
    """Client `index`'s own contracts: every `clients`-th one, so no two clients share one."""
    return contracts[index::clients] or [contracts[index % len(contracts)]]


def delivery_clients(api: Api, contracts: list[ContractRef], clients: int) -> tuple[Client, ...]:
    """Clients recording 1.00 CNY deliveries, each as the provider of its own contracts."""
    body = json.dumps(delivery_body(f"BENCH-D-{MARK}", 100))
    return tuple(
        Client(
            "POST",
            tuple(
                (f"/contracts/{c.id}/deliveries", _json(api.as_(Role.PROVIDER, c.provider_id)))
                for c in _share(contracts, clients, i)
            ),
            body,
        )
        for i in range(clients)
    )


def payment_clients(api: Api, contracts: list[ContractRef], clients: int) -> tuple[Client, ...]:
    """Clients recording 0.01 CNY payments with fresh treasury references, as street offices."""
    body = json.dumps(payment_body(f"BENCH-GK-{MARK}", PAYMENT_FEN))
    return tuple(
        Client(
            "POST",
            tuple(
                (f"/contracts/{c.id}/payments", _json(api.as_(Role.STREET, c.purchaser_id)))
                for c in _share(contracts, clients, i)
            ),
            body,
        )
        for i in range(clients)
    )


def _json(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"}


class AllFailed(RuntimeError):
    """Every request of a setup failed: the service is broken, measuring on is pointless."""


def _measured(
    loadgen: LoadGenerator, load: Load, server_cpu: Callable[[], float]
) -> tuple[Outcome, float]:
    """Run a load; what it measured, and the server's CPU share of one core meanwhile."""
    cpu, wall = server_cpu(), time.perf_counter()
    outcome = loadgen.run(load)
    return outcome, (server_cpu() - cpu) / (time.perf_counter() - wall)


def _record(results: Results, group: str, name: str, outcome: Outcome, cpu: float) -> None:
    row = results.row(group, name, "req/s")
    row.add(outcome.rate, outcome.p50_ms, outcome.p99_ms)
    row.errors += outcome.errors
    row.loadgen_cpu.append(outcome.cpu_share)
    row.server_cpu.append(cpu)
    if outcome.first_error and not row.note:
        row.note = f"first error: {outcome.first_error}"
    if outcome.answered == 0 and outcome.errors:
        raise AllFailed(f"{name}: every request failed, e.g. {outcome.first_error}")


def clients_text(clients: int) -> str:
    """`1 client`, `16 clients`."""
    return f"{clients} client{'s' if clients != 1 else ''}"


def appends_name(kind: str, clients: int, mode: str) -> str:
    """The row name of one appends setup."""
    return f"{kind}, {clients_text(clients)}, group commit {mode}"


def measure_appends(
    results: Results,
    loadgen: LoadGenerator,
    sizes: Sizes,
    api: Api,
    *,
    deliveries: list[ContractRef],
    payments: list[ContractRef],
    modes: list[Mode],
    ledger: Callable[[Mode], str],
    echo_url: str,
    library: Library,
    library_url: str,
    server_cpu: Callable[[str], float],
    progress: Callable[[str], None],
) -> None:
    """Every appends setup, the echo and the library, once per repetition; into `results`."""
    for rep in range(sizes.repetitions):
        # Off, on; on, off; off, on: each mode gets the earlier and the later slots alike, and
        # the ledger restarts only when the mode changes.
        for mode in modes if rep % 2 == 0 else list(reversed(modes)):
            url = ledger(mode)
            for kind, make in ((DELIVERIES, delivery_clients), (PAYMENTS, payment_clients)):
                pool = deliveries if kind == DELIVERIES else payments
                levels = (max(sizes.clients),) if mode.most_only else sizes.clients
                for clients in levels:
                    progress(f"run {rep + 1}: {appends_name(kind, clients, mode.label)}")
                    outcome, cpu = _measured(
                        loadgen,
                        Load(
                            url,
                            make(api, pool, clients),
                            sizes.warmup_seconds,
                            sizes.measure_seconds,
                            tag=f"r{rep}-{mode.label[:3]}-{clients}",
                        ),
                        lambda: server_cpu("ledger"),
                    )
                    name = appends_name(kind, clients, mode.label)
                    _record(results, "appends", name, outcome, cpu)
        for clients in sizes.clients:
            progress(f"run {rep + 1}: echo, {clients_text(clients)}")
            outcome, cpu = _measured(
                loadgen,
                Load(
                    echo_url,
                    delivery_clients(api, deliveries, clients),
                    sizes.warmup_seconds,
                    sizes.measure_seconds,
                    tag=f"echo-r{rep}-{clients}",
                ),
                lambda: server_cpu("echo"),
            )
            _record(results, "yardstick", f"{ECHO}, {clients_text(clients)}", outcome, cpu)
        for threads in sizes.library_threads:
            progress(f"run {rep + 1}: eventsourcing library, {threads} threads")
            saved = library.run(library_url, threads, sizes.warmup_seconds, sizes.measure_seconds)
            row = results.row("yardstick", library_name(threads), "events/s")
            row.add(saved.rate, saved.p50_ms, saved.p99_ms)


def library_name(threads: int) -> str:
    """The row name of the library yardstick with `threads` threads."""
    threads_text = f"{threads} thread{'s' if threads != 1 else ''}"
    return f"eventsourcing library alone, one save per event, {threads_text}"
