"""BENCHMARKS.md, and the same figures as a rich table at the terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.report import PROFILE_PLACEHOLDER, Target, fmt, rows_table, targets_table
from bench.results import Results

# Written by hand from profiles (py-spy) of the services under this benchmark: what stands in
# the way of each missed target. Kept apart so a new run keeps it; revise it with the code.
PROFILE = Path(__file__).with_name("profile.md")

_SECTIONS = (
    ("appends", "1. Durable appends over HTTP"),
    ("yardstick", "Yardsticks, measured in the same run"),
    ("as-of", "2. As-of reads: a budget's funding flow"),
    ("feed", "3. Feed reads over HTTP"),
    ("verify", "4. Verification: `ledger-audit verify`"),
    ("webhooks", "5. Webhooks: notifier to a local receiver"),
)


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def _memory(results: Results) -> list[str]:
    lines = [
        "| service | peak RSS | RSS at the start → end of each phase it ran in (phase peak) |",
        "|---|---:|---|",
    ]
    for label, (peak, phases) in results.memory.items():
        steps = "; ".join(
            f"{phase.split(':')[0].split(' (')[0]}: {_mib(start)} → {_mib(end)} ({_mib(top)})"
            for phase, start, end, top in phases
            if top
        )
        lines.append(f"| {label} | {_mib(peak)} | {steps} |")
    return lines


def render(results: Results, found: list[Target], ratios: list[str]) -> str:
    """The whole of BENCHMARKS.md."""
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); every figure below comes from one run, "
        "and ratios are taken within it. Targets are reported here, never asserted in tests.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in results.machine.items()),
        "",
        "## Targets",
        "",
        *targets_table(found),
        "",
    ]
    if ratios:
        out += ["Ratios within this run:", "", *(f"- {r}" for r in ratios), ""]
    out += ["## Figures", ""]
    for group, title in _SECTIONS:
        rows = [r for r in results.rows if r.group == group]
        if rows:
            out += [f"### {title}", "", *rows_table(rows), ""]
    if results.catch_up:
        out += [
            "### Seeding, catching up and reconciling (no targets; timed for the record)",
            "",
            "| what | entries | seconds | entries/s |",
            "|---|---:|---:|---:|",
            *(
                f"| {what} | {entries:,} | {seconds:.1f} | {fmt(entries / seconds)} |"
                for what, entries, seconds in results.catch_up
                if seconds > 0
            ),
            "",
        ]
    out += ["### 6. Peak memory of each service", "", *_memory(results), ""]
    out += ["## Correctness after the run", ""]
    out += [
        f"- {'pass' if check.ok else '**FAIL**'}: {check.name}: {check.detail}"
        for check in results.checks
    ]
    out += ["", "## How it was measured", ""]
    out += [f"- **{key}**: {value}" for key, value in results.method.items()]
    out += [f"- {note}" for note in results.notes]
    out += [
        "",
        "Time each phase took, and the machine's load averages (1, 5, 15 min) as it began; "
        "on two cores, a load above 2 means other work was waiting for a core too:",
        "",
        "| phase | seconds | load averages |",
        "|---|---:|---|",
    ]
    out += [f"| {name} | {seconds:.1f} | {load} |" for name, seconds, load in results.phases]
    total = sum(seconds for _, seconds, _ in results.phases)
    out += [f"| total | {total:.1f} | |", ""]
    profile = PROFILE.read_text(encoding="utf-8").strip() if PROFILE.exists() else ""
    out += ["## What the profile shows", "", profile or PROFILE_PLACEHOLDER, ""]
    return "\n".join(out)


def show(console: Console, results: Results, found: list[Target]) -> None:
    """Print the figures and the targets at the terminal."""
    figures = Table(title="Figures (medians of the runs)")
    for column in ("group", "setup", "median", "p50 ms", "p99 ms", "errors"):
        figures.add_column(column, justify="right" if column != "setup" else "left")
    for row in results.rows:
        figures.add_row(
            row.group,
            row.name,
            f"{fmt(row.rate)} {row.unit}",
            fmt(row.p50),
            fmt(row.p99),
            str(row.errors),
        )
    console.print(figures)
    table = Table(title="Targets")
    for column in ("what", "measured", "target", "met?", "by how much"):
        table.add_column(column)
    for target in found:
        mark = {True: "[green]yes", False: "[red]no", None: "n/a"}[target.met]
        table.add_row(
            target.what,
            f"{fmt(target.measured)} {target.unit}",
            target.bound_text,
            mark,
            target.shortfall(),
        )
    console.print(table)
