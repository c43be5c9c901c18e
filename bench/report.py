"""Targets judged against what was measured, and BENCHMARKS.md written from the results.

Targets are reported, never asserted: a missed one says by how much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.results import FLOW_CAUGHT_UP, FLOW_REST, LEAVES_HASHED, SEEDED, Results, Row
from bench.stats import median

APPEND_P99_BOUND_MS = 50.0
MILLION = 1_000_000
BUDGET_SECONDS = 15 * 60  # what the issue gives `make bench`
PROFILE_PLACEHOLDER = "_To be filled in: what a profile of each missed target shows._"


@dataclass(frozen=True)
class Target:
    """One target: what is measured, its value, and the bound it should meet."""

    what: str
    measured: float
    unit: str
    bound: float
    higher_is_better: bool
    bound_text: str

    @property
    def met(self) -> bool | None:
        """Whether the bound is met; None when nothing could be measured."""
        if math.isnan(self.measured) or math.isnan(self.bound):
            return None
        if self.higher_is_better:
            return self.measured >= self.bound
        return self.measured < self.bound

    def shortfall(self) -> str:
        """By how much a missed target was missed ('' when met)."""
        if self.met is not False:
            return ""
        if self.higher_is_better:
            short = self.bound - self.measured
            share = self.measured / self.bound if self.bound else 0.0
            return (
                f"{fmt(short)} {self.unit} short: {share:.0%} of the target, "
                f"{self.bound / self.measured:.1f}× needed"
                if self.measured > 0
                else "nothing measured"
            )
        over = self.measured - self.bound
        return f"{fmt(over)} {self.unit} over: {self.measured / self.bound:.1f}× the bound"


def fmt(value: float) -> str:
    """A figure as the report prints it: thousands separated, few decimals, n/a for NaN."""
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _rate_bound(what: str, row: Row | None, unit: str, bound: float, text: str) -> list[Target]:
    return [] if row is None else [Target(what, row.rate, unit, bound, True, text)]


def targets(
    results: Results,
    *,
    appends: list[tuple[str, Row]],
    echo: Row | None,
    library: Row | None,
) -> list[Target]:
    """Every target of the issue, against this run's figures (ratios within the run)."""
    found: list[Target] = []
    for label, row in appends:
        if echo is not None:
            bound = 0.5 * echo.rate
            found.append(
                Target(
                    f"{label}: vs trivial endpoint",
                    row.rate,
                    "req/s",
                    bound,
                    True,
                    f"≥ 0.5× echo ({fmt(echo.rate)}) = {fmt(bound)}",
                )
            )
        if library is not None:
            bound = 2 * library.rate
            found.append(
                Target(
                    f"{label}: vs library alone",
                    row.rate,
                    "req/s",
                    bound,
                    True,
                    f"≥ 2× library ({fmt(library.rate)}) = {fmt(bound)}",
                )
            )
        found.append(
            Target(
                f"{label}: p99",
                row.p99,
                "ms",
                APPEND_P99_BOUND_MS,
                False,
                f"< {APPEND_P99_BOUND_MS:g} ms",
            )
        )
    for row in results.rows:
        if row.group == "as-of":
            found.append(Target(f"{row.name}: p99", row.p99, "ms", 100.0, False, "< 100 ms"))
        elif row.group == "feed":
            found += _rate_bound(row.name, row, "entries/s", 20_000, "≥ 20,000 entries/s")
        elif row.group == "verify":
            found += _rate_bound(row.name, row, "entries/s", 200_000, "≥ 200,000 entries/s")
        elif row.group == "webhooks" and row.name.startswith("burst"):
            found += _rate_bound(
                "webhooks, burst: deliveries/s", row, "deliveries/s", 500, "≥ 500 deliveries/s"
            )
        elif row.group == "webhooks" and row.name.startswith("steady"):
            found.append(
                Target(
                    "webhooks, steady: event-to-delivery p99",
                    row.p99,
                    "ms",
                    1000.0,
                    False,
                    "< 1 s",
                )
            )
    return found


def ceilings(echo: Row | None, library: Row | None, clients: int) -> list[str]:
    """What the HTTP stack's own figures allow the append targets, in this run."""
    if echo is None or not echo.rate:
        return []
    found: list[str] = []
    if library is not None and 2 * library.rate > echo.rate:
        found.append(
            f"2× the library alone ({fmt(2 * library.rate)}/s) is more than the trivial echo "
            f"endpoint answered ({fmt(echo.rate)} req/s, {clients} clients): in this "
            "run no endpoint on this HTTP stack, with no database and no domain, could meet "
            "that target"
        )
    # A closed loop keeps every client's request in flight: the mean wait is clients / rate.
    needed = clients / (APPEND_P99_BOUND_MS / 1000)
    found.append(
        f"p99 under {APPEND_P99_BOUND_MS:g} ms with {clients} clients in a closed loop needs at "
        f"least {fmt(needed)} req/s (the mean wait is clients / rate, and p99 is above the "
        f"mean): {needed / echo.rate:.2f}× the echo endpoint's rate; its own p99 was "
        f"{fmt(echo.p99)} ms"
    )
    return found


def _mark(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def targets_table(found: list[Target]) -> list[str]:
    """The markdown table of targets."""
    lines = ["| what | measured | target | met? | by how much |", "|---|---:|---|---|---|"]
    lines += [
        f"| {t.what} | {fmt(t.measured)} {t.unit} | {t.bound_text} | {_mark(t.met)} | "
        f"{t.shortfall()} |"
        for t in found
    ]
    return lines


_PER = {"req/s": "a request", "entries/s": "an entry", "deliveries/s": "a delivery"}


def cpu_per(share: float, rate: float, unit: str) -> str:
    """The server's CPU time per unit of work, e.g. `, 8.2 ms a request` ('' if unknown)."""
    if rate <= 0 or math.isnan(rate) or unit not in _PER:
        return ""
    ms = share * 1000 / rate
    amount = f"{fmt(ms)} ms" if ms >= 0.1 else f"{fmt(ms * 1000)} µs"
    return f", {amount} {_PER[unit]}"


def rows_table(rows: list[Row], *, latency: str = "ms") -> list[str]:
    """A markdown table of rows: medians, each run, latencies, errors, generator CPU."""
    lines = [
        f"| setup | median | runs | p50 {latency} | p99 {latency} | errors | server CPU "
        "| load CPU | note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        runs = ", ".join(fmt(r) for r in row.rates)
        cpu = f"{max(row.loadgen_cpu):.0%}" if row.loadgen_cpu else ""
        if row.saturated:
            cpu += " (saturated: a floor)"
        server = ""
        if row.server_cpu:
            share = median(row.server_cpu)
            server = f"{share:.0%}{cpu_per(share, row.rate, row.unit)}"
        note = row.note.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {row.name} | {fmt(row.rate)} {row.unit} | {runs} | {fmt(row.p50)} | "
            f"{fmt(row.p99)} | {row.errors} | {server} | {cpu} | {note} |"
        )
    return lines


def million_estimate(results: Results, repetitions: int) -> str | None:
    """What 1,000,000 feed entries would cost at this run's rates, when fewer were used.

    A floor: the read model's catch-up slows per entry as a budget grows.
    """
    feed = next((r for r in results.rows if r.group == "feed"), None)
    check = next((r for r in results.rows if r.group == "verify"), None)
    entries = results.feed_entries
    if feed is None or check is None or not feed.rate or not check.rate or entries >= MILLION:
        return None
    per_million = {
        what: MILLION * seconds / n
        for what, n, seconds in results.catch_up
        if n and seconds > 0 and "hooks" not in what
    }
    # The read model follows the seeding, and the leaves are hashed once it has ended: the
    # longer of the two ways through adds time, and the read model's rest is within its own.
    seeded, flow = per_million.pop(SEEDED, 0.0), per_million.pop(FLOW_CAUGHT_UP, 0.0)
    leaves = per_million.pop(LEAVES_HASHED, 0.0)
    per_million.pop(FLOW_REST, None)
    around = max(flow, seeded + leaves)
    steps = [("seeding, the read model following it, the leaves hashed after", around)]
    steps += per_million.items()
    steps += [
        (f"paging through the feed {repetitions}×", repetitions * MILLION / feed.rate),
        (f"ledger-audit verify {repetitions}×", repetitions * MILLION / check.rate),
    ]
    parts = ", ".join(f"{what} {seconds / 60:.1f} min" for what, seconds in steps)
    ran = sum(seconds for _, seconds, _ in results.phases)
    whole = ran + sum(seconds for _, seconds in steps) * (MILLION - entries) / MILLION
    fits = "so it may fit within" if whole < BUDGET_SECONDS else "more than"
    return (
        f"**Feed size: {entries:,} entries, not 1,000,000.** At this run's rates a million "
        f"would take the run from {ran / 60:.0f} to at least {whole / 60:.0f} minutes, {fits} "
        f"the 15 minutes `make bench` has (a million entries: {parts}; the read model catches "
        "up more slowly per entry as a budget grows). `make bench` seeds up to a million (the "
        "extra on a second budget); this run was told to read fewer (`--quick` or "
        "`--feed-entries`)."
    )
