"""The whole run, phase by phase: set-up, appends, as-of reads, feed, verification, webhooks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from rich.console import Console

from bench import seed as seeding
from bench.appends import Mode, measure_appends
from bench.config import Sizes
from bench.library import Library
from bench.loadgen import MARK, Change, LoadGenerator
from bench.machine import load_average
from bench.memory import MemoryMonitor
from bench.reads import measure_feed, measure_flows, measure_verify, sign_checkpoint, verify
from bench.receiver import Receiver
from bench.results import SEEDED, Check, Results
from bench.services import Stack, cpu_seconds, wait_for_followers, wait_until_answers
from bench.webhooks import measure_webhooks, subscribe, wait_for_notifier
from bench.world import ContractRef, World, delivery_body, load_world, prepay
from demo.api import Api
from proto.actor import Role
from services.ledger.application import LedgerApplication
from services.ledger.settings import LedgerSettings
from tests.support.processes import free_ports

T = TypeVar("T")
_CATCH_UP_SECONDS = 900.0


class Run:
    """One benchmark run on a stack of services; fills `results`."""

    def __init__(
        self,
        stack: Stack,
        loadgen: LoadGenerator,
        memory: MemoryMonitor,
        sizes: Sizes,
        console: Console,
        *,
        notifier_poll_seconds: float,
    ) -> None:
        self.stack = stack
        self.loadgen = loadgen
        self.memory = memory
        self.sizes = sizes
        self.console = console
        self.notifier_poll = notifier_poll_seconds
        self.results = Results()
        self.urls: dict[str, str] = {}
        self.database: dict[str, str] = {}
        self.world: World | None = None
        # Tokens only: its clients are never used outside the loop that made them.
        self.tokens = Api("", "", "")

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase and mark it in the memory samples."""
        self.console.rule(f"[bold]{name}")
        self.memory.begin(name)
        load = load_average()
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            self.results.phases.append((name, seconds, load))
            self.memory.sample()
            self.console.print(f"{name}: {seconds:.1f} s")

    def say(self, text: str) -> None:
        """A progress line."""
        self.console.print(f"  {text}")

    def api(self, fn: Callable[[Api], Awaitable[T]], ledger: str = "ledger") -> T:
        """Run `fn` with fresh clients of the catalog, a ledger and the notifier."""

        async def go() -> T:
            api = Api(
                self.urls["catalog"],
                self.urls[ledger],
                self.urls.get("notifier", "http://127.0.0.1:9"),
                concurrency=8,
            )
            try:
                return await fn(api)
            finally:
                await api.aclose()

        return asyncio.run(go())

    @property
    def auditor(self) -> dict[str, str]:
        """An auditor's headers."""
        return self.tokens.auditor

    def start_ledger(self, label: str, env: dict[str, str] | None = None) -> str:
        """Start (or restart with `env`) a ledger; its URL."""
        if label in self.stack.services:
            running = self.stack.restart(label, env or {})
        else:
            overrides = {"LEDGER_CATALOG_URL": self.urls["catalog"], **(env or {})}
            running = self.stack.start(label, "ledger", self.database[label], overrides)
        self.urls[label] = running.url
        return running.url

    # --- phases ---------------------------------------------------------------------------

    def set_up(self) -> None:
        """The catalog and the ledger, and the appends' world loaded over HTTP."""
        with self.phase("set-up: services started, world loaded over HTTP"):
            self.database["catalog"] = self.stack.database("catalog")
            self.urls["catalog"] = self.stack.start(
                "catalog", "catalog", self.database["catalog"], {}
            ).url
            self.database["ledger"] = self.stack.database("ledger")
            self.start_ledger("ledger")
            started = time.monotonic()
            self.world = self.api(lambda api: load_world(api, self.sizes.contracts, "BENCH"))
            pool = self.sizes.pool
            self.api(lambda api: prepay(api, self.payments, "BENCH"))
            self.say(
                f"{len(self.world.contracts)} contracts signed and activated, {pool} of them "
                f"with accepted value to pay from, in {time.monotonic() - started:.1f} s"
            )

    @property
    def deliveries(self) -> list[ContractRef]:
        """The contracts deliveries are recorded against."""
        assert self.world is not None
        return self.world.contracts[: self.sizes.pool]

    @property
    def payments(self) -> list[ContractRef]:
        """The contracts payments are recorded against."""
        assert self.world is not None
        return self.world.contracts[self.sizes.pool :]

    def appends(self) -> None:
        """Benchmark 1 and its yardsticks."""
        with self.phase("1. appends, echo yardstick, library yardstick"):
            default = LedgerSettings().group_commit_ms
            modes = [
                Mode("off", {"LEDGER_GROUP_COMMIT_MS": "0"}, most_only=True),
                Mode(f"{default:g} ms (default)", {"LEDGER_GROUP_COMMIT_MS": f"{default:g}"}),
            ]
            echo_port = free_ports(1)[0]
            self.stack.spawn_python("echo", "bench.echo", "--port", str(echo_port))
            echo_url = f"http://127.0.0.1:{echo_port}"
            wait_until_answers(f"{echo_url}/healthz")
            self.stack.settle_extra("echo")
            library_url = self.stack.database("library")
            current: dict[str, str] = {}

            def ledger(mode: Mode) -> str:
                if current.get("mode") != mode.label:
                    self.start_ledger("ledger", mode.env)
                    current["mode"] = mode.label
                return self.urls["ledger"]

            library = Library(self.stack.cores.services)
            try:
                measure_appends(
                    self.results,
                    self.loadgen,
                    self.sizes,
                    self.tokens,
                    deliveries=self.deliveries,
                    payments=self.payments,
                    modes=modes,
                    ledger=ledger,
                    echo_url=echo_url,
                    library=library,
                    library_url=library_url,
                    server_cpu=lambda label: cpu_seconds(self.stack.pid(label)),
                    progress=self.say,
                )
            finally:
                library.close()
            self.stack.stop_extra("echo")

    def as_of(self) -> None:
        """Benchmark 2: the budget given `flow_events` events in-process, then read over HTTP."""
        assert self.world is not None
        with self.phase("2. as-of reads (seeding in-process, then reads over HTTP)"):
            # Contracts for more feed entries than the as-of seeding leaves, if asked: on a
            # budget of their own, loaded while the ledger still answers.
            filler = (
                self.api(lambda api: load_world(api, 16, "FILL"))
                if self.sizes.feed_entries
                else None
            )
            self.stack.stop("ledger")
            database = self.database["ledger"]
            with seeding.following(database, self.urls["catalog"]) as caught_up:
                done, behind = self._seed(database, filler)
            self.results.catch_up.append((SEEDED, done.events, done.seconds))
            self.say(f"seeded {done.events:,} events in {done.seconds:.1f} s ({done.rate:,.0f}/s)")
            for name, entries, seconds in caught_up:
                self.results.catch_up.append((name, entries, seconds))
                self.say(f"{name}: {entries:,} entries in {seconds:.1f} s")
            # Started afresh, so with the settings as they ship (group commit on).
            url = self.start_ledger("ledger")
            waited = wait_for_followers(url, _CATCH_UP_SECONDS)
            self.say(f"ledger restarted; its flow model was at the head after {waited:.1f} s")
            measure_flows(
                self.results,
                self.loadgen,
                self.sizes,
                url,
                self.world.budget_id,
                self.auditor,
                behind,
                lambda: cpu_seconds(self.stack.pid("ledger")),
                self._a_delivery(url),
            )

    def _seed(self, database: str, filler: World | None) -> tuple[seeding.Seeded, int]:
        """The as-of seeding, and the filler's if asked; what was seeded, and the events behind
        the budget."""
        assert self.world is not None
        ledger = seeding.open_seeder(database, self.urls["catalog"])
        try:
            budget = self.world.budget_id
            self._note_sizes(ledger)
            before = seeding.events_behind(ledger, budget, self.world.contracts)
            wanted = max(self.sizes.flow_events - before, 0)
            self.say(f"{before:,} events behind the budget; seeding {wanted:,} more")
            done = seeding.seed(ledger, self.world.contracts, wanted, tag="FLOW")
            behind = seeding.events_behind(ledger, budget, self.world.contracts)
            extra = self.sizes.feed_entries - ledger.reads.head()
            if filler is not None and extra > 0:
                self.say(f"seeding {extra:,} more entries on a second budget")
                more = seeding.seed(ledger, filler.contracts, extra, tag="FILL", checked=False)
                done = seeding.Seeded(done.events + more.events, done.seconds + more.seconds)
        finally:
            ledger.close()
        return done, behind

    def _a_delivery(self, ledger_url: str) -> Change:
        """A delivery to the first of the budget's contracts, as its provider reports it."""
        contract = self.deliveries[0]
        headers = self.tokens.as_(Role.PROVIDER, contract.provider_id)
        return Change(
            f"{ledger_url}/contracts/{contract.id}/deliveries",
            {**headers, "Content-Type": "application/json"},
            json.dumps(delivery_body(f"BENCH-C-{MARK}", 100)),
        )

    def _note_sizes(self, ledger: LedgerApplication) -> None:
        """How big the appends left their contracts: each write replays its contract."""
        for kind, contracts in (("delivery", self.deliveries), ("payment", self.payments)):
            sizes = sorted(seeding.contract_sizes(ledger, contracts))
            self.results.notes.append(
                f"After the appends, the {len(sizes)} {kind} contracts held "
                f"{sizes[0]} to {sizes[-1]} events each (median {sizes[len(sizes) // 2]}); "
                "every write loads its contract by replaying all its events (no snapshots)."
            )

    def feed_and_verify(self, state: Path) -> None:
        """Benchmarks 3 and 4 on the same ledger: the feed paged through, then verified."""
        with self.phase("3-4. feed reads and verification"):
            url = self.urls["ledger"]
            seconds = sign_checkpoint(url, self.auditor)
            self.say(f"checkpoint signed in {seconds:.1f} s")

            def ledger_cpu() -> float:
                return cpu_seconds(self.stack.pid("ledger"))

            token = self.auditor["Authorization"].split()[1]
            runs = []
            for _ in range(self.sizes.repetitions):
                entries = measure_feed(self.results, self.loadgen, url, self.auditor, ledger_cpu)
                self.results.feed_entries = entries
                self.say(f"feed: {entries:,} entries read")
                done = measure_verify(
                    self.results, url, token, state, self.stack.cores.load, ledger_cpu
                )
                runs.append(done)
                self.say(f"verify: {done.output}")
            # Every run must have verified; the first that did not is the one to read.
            told = next((done for done in runs if not done.ok), runs[-1])
            self.results.checks.append(
                Check("ledger-audit verify (the main ledger)", told.ok, told.output)
            )

    def webhooks(self, state: Path) -> None:
        """Benchmark 5: a small ledger of its own, the notifier, a receiver, subscriptions."""
        with self.phase("5. webhooks"):
            self.database["ledger-hooks"] = self.stack.database("ledger_hooks")
            self.start_ledger("ledger-hooks")
            hooks = self.api(
                lambda api: load_world(api, self.sizes.webhook_contracts, "HOOKS"),
                "ledger-hooks",
            )
            self.api(lambda api: prepay(api, hooks.contracts, "HOOKS"), "ledger-hooks")
            receiver = Receiver(self.stack.cores.load)
            try:
                self.database["notifier"] = self.stack.database("notifier")
                notifier = self.stack.start(
                    "notifier",
                    "notifier",
                    self.database["notifier"],
                    {
                        "NOTIFIER_LEDGER_URL": self.urls["ledger-hooks"],
                        "NOTIFIER_CATALOG_URL": self.urls["catalog"],
                        "NOTIFIER_ALLOWED_TARGETS": "127.0.0.1/32",
                        "NOTIFIER_POLL_INTERVAL_SECONDS": f"{self.notifier_poll:g}",
                    },
                )
                self.urls["notifier"] = notifier.url
                self.api(
                    lambda api: subscribe(api, receiver, self.sizes.subscriptions), "ledger-hooks"
                )
                waited = wait_for_notifier(notifier.url)
                self.say(
                    f"{self.sizes.subscriptions} subscriptions; the notifier caught up in "
                    f"{waited:.1f} s"
                )
                measure_webhooks(
                    self.results,
                    Api(self.urls["catalog"], self.urls["ledger-hooks"], notifier.url),
                    receiver,
                    hooks.contracts,
                    subscriptions=self.sizes.subscriptions,
                    payments=self.sizes.webhook_payments,
                    per_second=self.sizes.payments_per_second,
                    runs=self.sizes.repetitions,
                    notifier_cpu=lambda: cpu_seconds(self.stack.pid("notifier")),
                    progress=self.say,
                )
            finally:
                receiver.stop()
            sign_checkpoint(self.urls["ledger-hooks"], self.auditor)
            done = verify(
                self.urls["ledger-hooks"],
                self.auditor["Authorization"].split()[1],
                state,
                self.stack.cores.load,
            )
            self.results.checks.append(
                Check("ledger-audit verify (the webhooks' ledger)", done.ok, done.output)
            )

    def correctness(self) -> None:
        """Reconciliation of every ledger after the run."""
        with self.phase("correctness: reconciliation"):
            for label in ("ledger", "ledger-hooks"):
                if label not in self.urls:
                    continue
                started = time.monotonic()
                answer = httpx.get(
                    f"{self.urls[label]}/audit/reconcile",
                    headers=self.auditor,
                    timeout=1800.0,
                    trust_env=False,
                )
                seconds = time.monotonic() - started
                body = answer.json() if answer.status_code == 200 else {}
                violations = body.get("violations", ["no answer"])
                detail = (
                    f"{body.get('events_checked', 0):,} events replayed in {seconds:.1f} s, "
                    f"{len(violations)} violations"
                    if body
                    else f"answered {answer.status_code}: {answer.text[:200]}"
                )
                self.results.checks.append(
                    Check(f"reconciliation ({label})", not violations, detail)
                )
                if body:
                    self.results.catch_up.append(
                        (
                            f"reconciliation of {label} (GET /audit/reconcile)",
                            int(body.get("events_checked", 0)),
                            seconds,
                        )
                    )
                self.say(f"reconciliation of {label}: {detail}")
