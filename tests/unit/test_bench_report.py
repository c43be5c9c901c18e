"""The benchmark report's pure parts: percentiles, medians, targets met or missed and by how
much, and the rendered BENCHMARKS.md. Nothing here times anything."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import document
from bench.document import render
from bench.report import (
    PROFILE_PLACEHOLDER,
    Target,
    ceilings,
    cpu_per,
    fmt,
    million_estimate,
    targets,
)
from bench.results import FLOW_CAUGHT_UP, FLOW_REST, LEAVES_HASHED, SEEDED, Results, Row
from bench.stats import median, percentile


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0
    assert percentile(list(reversed(values)), 50) == 25.0  # order does not matter
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_a_percentile_of_nothing_is_not_zero() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_the_median_of_runs_ignores_runs_that_measured_nothing() -> None:
    assert median([3.0, math.nan, 1.0, 2.0]) == 2.0
    assert math.isnan(median([math.nan]))


def test_a_rate_target_met_says_nothing_more() -> None:
    target = Target("feed", 25_000, "entries/s", 20_000, True, "≥ 20,000 entries/s")
    assert target.met is True
    assert target.shortfall() == ""


def test_a_rate_target_missed_says_by_how_much() -> None:
    target = Target("feed", 5_000, "entries/s", 20_000, True, "≥ 20,000 entries/s")
    assert target.met is False
    assert target.shortfall() == "15,000 entries/s short: 25% of the target, 4.0× needed"


def test_a_latency_target_missed_says_how_far_over() -> None:
    target = Target("flow p99", 250.0, "ms", 100.0, False, "< 100 ms")
    assert target.met is False
    assert target.shortfall() == "150 ms over: 2.5× the bound"
    assert Target("flow p99", 99.0, "ms", 100.0, False, "< 100 ms").met is True
    # A bound is strict: exactly on it is a miss.
    assert Target("flow p99", 100.0, "ms", 100.0, False, "< 100 ms").met is False


def test_a_figure_that_could_not_be_measured_is_neither_met_nor_missed() -> None:
    target = Target("feed", math.nan, "entries/s", 20_000, True, "≥ 20,000 entries/s")
    assert target.met is None
    assert target.shortfall() == ""


def test_figures_are_printed_with_few_decimals() -> None:
    assert fmt(123_456.7) == "123,457"
    assert fmt(42.25) == "42.2"
    assert fmt(1.234) == "1.23"
    assert fmt(math.nan) == "n/a"


def test_server_cpu_is_also_given_per_unit_of_work() -> None:
    assert cpu_per(0.9, 100.0, "req/s") == ", 9.00 ms a request"
    assert cpu_per(0.5, 10_000.0, "entries/s") == ", 50.0 µs an entry"
    assert cpu_per(0.5, 0.0, "req/s") == ""


def _row(group: str, name: str, rates: list[float], p99s: list[float] | None = None) -> Row:
    row = Row(group, name, "req/s")
    for rate, p99 in zip(rates, p99s or [math.nan] * len(rates), strict=True):
        row.add(rate, p99=p99)
    return row


def test_append_targets_are_ratios_to_the_yardsticks_of_the_same_run() -> None:
    appends = _row("appends", "deliveries, 64 clients", [300.0, 320.0, 310.0], [40.0, 60.0, 45.0])
    echo = _row("yardstick", "echo, 64 clients", [1000.0, 1200.0, 1100.0])
    library = _row("yardstick", "library", [100.0, 150.0, 200.0])
    found = {
        t.what: t
        for t in targets(
            Results(rows=[appends, echo, library]),
            appends=[("deliveries", appends)],
            echo=echo,
            library=library,
        )
    }
    versus_echo = found["deliveries: vs trivial endpoint"]
    assert (versus_echo.measured, versus_echo.bound, versus_echo.met) == (310.0, 550.0, False)
    versus_library = found["deliveries: vs library alone"]
    assert (versus_library.bound, versus_library.met) == (300.0, True)
    assert found["deliveries: p99"].measured == 45.0  # the median of the runs' p99s
    assert found["deliveries: p99"].met is True


def test_the_report_says_when_an_append_target_is_beyond_the_http_stack_itself() -> None:
    echo = _row("yardstick", "echo, 64 clients", [1000.0, 900.0, 1100.0], [60.0, 70.0, 80.0])
    library = _row("yardstick", "library", [600.0, 550.0, 650.0])
    beyond, queueing = ceilings(echo, library, 64)
    assert "2× the library alone (1,200/s) is more than the trivial echo" in beyond
    assert "(1,000 req/s, 64 clients)" in beyond
    # 64 requests always in flight within 50 ms need 1,280 answered a second.
    assert "needs at least 1,280 req/s" in queueing
    assert "1.28× the echo endpoint's rate; its own p99 was 70.0 ms" in queueing
    # A library slow enough leaves the first target within the stack's reach: nothing said.
    slow = _row("yardstick", "library", [400.0])
    assert [line for line in ceilings(echo, slow, 64) if "library" in line] == []
    assert ceilings(None, library, 64) == []


def test_every_other_section_has_its_target() -> None:
    rows = [
        _row("as-of", "flow now", [2.0], [7000.0]),
        _row("feed", "feed", [5000.0]),
        _row("verify", "verify", [250_000.0]),
        _row("webhooks", "steady: 12 payments", [480.0], [900.0]),
        _row("webhooks", "burst: 12 payments", [450.0], [3000.0]),
    ]
    found = {t.what: t for t in targets(Results(rows=rows), appends=[], echo=None, library=None)}
    assert found["flow now: p99"].met is False
    assert found["feed"].met is False
    assert found["verify"].met is True
    assert found["webhooks, steady: event-to-delivery p99"].met is True
    assert found["webhooks, burst: deliveries/s"].met is False


def test_the_report_has_the_machine_the_targets_and_a_place_for_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(document, "PROFILE", tmp_path / "profile.md")
    results = Results(
        machine={"CPU": "AMD EPYC", "cores": "2"},
        rows=[_row("feed", "paging through 10 entries", [5000.0])],
        phases=[("set-up", 12.5, "0.50 0.40 0.30")],
    )
    results.memory = {"ledger": (200 * 1024, [("set-up", 100 * 1024, 150 * 1024, 160 * 1024)])}
    found = targets(results, appends=[], echo=None, library=None)
    text = render(results, found, ["deliveries: group commit on / off = 1.50×"])
    assert "| CPU | AMD EPYC |" in text
    assert "| paging through 10 entries | 5,000 entries/s | ≥ 20,000 entries/s | **no** |" in text
    assert "group commit on / off = 1.50×" in text
    assert "| ledger | 200 MiB | set-up: 100 MiB → 150 MiB (160 MiB) |" in text
    assert text.rstrip().endswith(f"## What the profile shows\n\n{PROFILE_PLACEHOLDER}")
    # Once the profiles are read, what they show is kept in a file each run copies in.
    (tmp_path / "profile.md").write_text("Appends wait on the database.\n", encoding="utf-8")
    text = render(results, found, [])
    assert text.rstrip().endswith("## What the profile shows\n\nAppends wait on the database.")


def _smaller_run(
    seeding_seconds: float, entries: int = 100_000, flow_seconds: float = 12.0
) -> Results:
    """A run over `entries` feed entries that took six minutes, with its catch-ups' times."""
    results = Results(feed_entries=entries)
    results.phases = [("all of it", 360.0, "")]
    results.catch_up = [
        (SEEDED, entries, seeding_seconds),
        (FLOW_CAUGHT_UP, entries, flow_seconds),  # from the seeding's start
        (FLOW_REST, entries // 10, 1.0),
        (LEAVES_HASHED, entries, 3.0),  # after the seeding: 30 s a million
        ("reconciliation of ledger (GET /audit/reconcile)", entries, 20.0),  # 200 s
        ("reconciliation of ledger-hooks (GET /audit/reconcile)", 134, 1.0),  # another ledger
    ]
    results.row("feed", "paging", "entries/s").add(50_000)  # 20 s a million, each time
    results.row("verify", "ledger-audit verify", "entries/s").add(100_000)  # 10 s
    return results


def test_a_million_is_estimated_with_each_repetition_and_the_catch_ups_beside_the_seeding() -> None:
    # A million: seeding 300 s and the leaves 30 after it, the read model following it 320
    # (so 330 s for the three), reconciling 200, three feeds 60 and three verifications 30,
    # 620 s in all; nine tenths of it is still to do: 360 + 558 s.
    said = million_estimate(_smaller_run(30.0, flow_seconds=32.0), repetitions=3)

    assert said is not None
    assert "from 6 to at least 15 minutes, more than the 15 minutes" in said
    assert "seeding, the read model following it, the leaves hashed after 5.5 min" in said
    assert "the seeding had ended" not in said  # within the read model's own time
    assert "paging through the feed 3× 1.0 min, ledger-audit verify 3× 0.5 min" in said
    assert "hooks" not in said


def test_a_million_that_may_fit_is_said_to_and_a_million_run_needs_no_estimate() -> None:
    # The read model following the seeding is the longer way through: 120 s, then 290 s more.
    said = million_estimate(_smaller_run(seeding_seconds=5.0), repetitions=3)
    assert said is not None
    assert "to at least 12 minutes, so it may fit within the 15 minutes" in said
    assert "the leaves hashed after 2.0 min" in said
    assert million_estimate(_smaller_run(5.0, entries=1_000_000), repetitions=3) is None
