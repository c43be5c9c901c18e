"""What a run measured, in plain data the report renders: rows of figures, one per setup."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.stats import median

# A load generator using this share of its core or more was itself the limit: the figure is
# then a floor of what the server does.
SATURATED_SHARE = 0.9
# The read model follows the seeding in a process of its own, from its start to the head; the
# leaves are hashed in another once the seeding has ended, beside the read model's rest.
SEEDED = "seeding (in-process, one writer)"
FLOW_CAUGHT_UP = "flow read model following the seeding, to the head (separate process)"
FLOW_REST = "of which: the flow read model's rest once the seeding had ended"
LEAVES_HASHED = "Merkle leaves hashed and checkpoint signed, after the seeding (separate process)"


@dataclass
class Row:
    """One configuration measured once per repetition: throughput and latency of each run."""

    group: str
    name: str
    unit: str
    rates: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    errors: int = 0
    loadgen_cpu: list[float] = field(default_factory=list)
    # The server's CPU time over each run, as a share of one core (wall time of the run).
    server_cpu: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, rate: float, p50: float = math.nan, p99: float = math.nan) -> None:
        """Record one run's figures."""
        self.rates.append(rate)
        self.p50s.append(p50)
        self.p99s.append(p99)

    @property
    def rate(self) -> float:
        """The median rate over the runs."""
        return median(self.rates)

    @property
    def p50(self) -> float:
        """The median over the runs of each run's median latency (ms)."""
        return median(self.p50s)

    @property
    def p99(self) -> float:
        """The median over the runs of each run's 99th percentile latency (ms)."""
        return median(self.p99s)

    @property
    def saturated(self) -> bool:
        """Whether the load generator hit its core's limit in any run."""
        return any(share >= SATURATED_SHARE for share in self.loadgen_cpu)


@dataclass
class Check:
    """A correctness check after the run: reconciliation or verification, and what it said."""

    name: str
    ok: bool
    detail: str


@dataclass
class Results:
    """Everything one run measured, with what it was measured on and how."""

    machine: dict[str, str] = field(default_factory=dict)
    method: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    # (phase, seconds, load averages when it began) in the order they ran
    phases: list[tuple[str, float, str]] = field(default_factory=list)
    # (what caught up, entries, seconds)
    catch_up: list[tuple[str, int, float]] = field(default_factory=list)
    # label -> (peak KiB, [(phase, start KiB, end KiB, phase peak KiB)])
    memory: dict[str, tuple[int, list[tuple[str, int, int, int]]]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    feed_entries: int = 0

    def row(self, group: str, name: str, unit: str) -> Row:
        """The row of this group and name, made on first use."""
        for row in self.rows:
            if (row.group, row.name) == (group, name):
                return row
        made = Row(group, name, unit)
        self.rows.append(made)
        return made

    def find(self, group: str, name: str) -> Row | None:
        """The row of this group and name, if one was measured."""
        return next((r for r in self.rows if (r.group, r.name) == (group, name)), None)
