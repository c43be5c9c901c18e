"""When a delivery is tried again: the schedule with jitter, Retry-After, and what statuses mean."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.notifier.retries import (
    MAX_RETRY_AFTER_SECONDS,
    AttemptResult,
    Outcome,
    classify,
    honours_retry_after,
    next_delay,
    parse_retry_after,
    retry_delay,
)
from services.notifier.settings import DEFAULT_SCHEDULE

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def seeded(seed: int) -> random.Random:
    # Jitter needs no unpredictability; a seed makes each run draw the same delays.
    return random.Random(seed)  # noqa: S311


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert classify(status) is Outcome.DELIVERED


@pytest.mark.parametrize("status", [None, 100, 301, 302, 307, 308, 400, 404, 429, 500, 503])
def test_everything_else_but_410_is_retried(status: int | None) -> None:
    assert classify(status) is Outcome.RETRY


def test_410_gone_stops_retrying() -> None:
    assert classify(410) is Outcome.GONE


@pytest.mark.parametrize(("status", "honoured"), [(429, True), (503, True), (500, False)])
def test_retry_after_binds_only_on_429_and_503(status: int, honoured: bool) -> None:
    assert honours_retry_after(status) is honoured
    result = AttemptResult(NOW, 12, status=status, retry_after="120")
    assert result.asked_wait(NOW) == (120.0 if honoured else None)


def test_an_error_fails_the_attempt_whatever_the_status() -> None:
    # A 2xx whose body did not finish within the timeout is not a delivery.
    assert AttemptResult(NOW, 10_000, status=200, error="timed out").outcome is Outcome.RETRY
    assert AttemptResult(NOW, 5, status=204).outcome is Outcome.DELIVERED
    assert AttemptResult(NOW, 5, status=410).outcome is Outcome.GONE


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("7", 7.0), (" 120 ", 120.0)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(NOW + timedelta(minutes=2), usegmt=True)
    assert later.endswith("GMT")
    assert parse_retry_after(later, NOW) == 120.0


def test_retry_after_in_the_past_means_now() -> None:
    earlier = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1.5", "١٢", "Mon, 99 Foo 2026 25:61:00 GMT", "0x10"]
)
def test_garbage_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_retry_after_is_capped_at_a_day() -> None:
    assert parse_retry_after("999999999", NOW) == MAX_RETRY_AFTER_SECONDS
    far = format_datetime(NOW + timedelta(days=30), usegmt=True)
    assert parse_retry_after(far, NOW) == MAX_RETRY_AFTER_SECONDS
    assert MAX_RETRY_AFTER_SECONDS == 24 * 3600


def test_without_jitter_the_schedule_is_exact() -> None:
    rng = seeded(1)
    delays = [next_delay(DEFAULT_SCHEDULE, n, 0.0, rng) for n in range(len(DEFAULT_SCHEDULE))]
    assert delays == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def test_the_schedule_runs_out() -> None:
    rng = seeded(1)
    assert next_delay((0, 5), 2, 0.2, rng) is None
    assert retry_delay((0, 5), 2, 0.2, rng, retry_after=60.0) is None


def test_jitter_stays_within_its_bounds_and_spreads() -> None:
    rng = seeded(7)
    delays = [next_delay(DEFAULT_SCHEDULE, 2, 0.2, rng) for _ in range(2000)]
    assert all(d is not None and 240.0 <= d <= 360.0 for d in delays)
    # Spread over the band, not stuck at one value: both halves are used.
    assert min(d for d in delays if d is not None) < 260.0
    assert max(d for d in delays if d is not None) > 340.0


def test_a_zero_delay_stays_zero_whatever_the_jitter() -> None:
    assert next_delay((0, 5), 0, 1.0, seeded(3)) == 0.0


def test_retry_after_lengthens_but_never_shortens_the_schedule() -> None:
    rng = seeded(5)
    assert retry_delay((0, 5, 300), 1, 0.0, rng, retry_after=60.0) == 60.0
    assert retry_delay((0, 5, 300), 2, 0.0, rng, retry_after=60.0) == 300.0
    assert retry_delay((0, 5, 300), 1, 0.0, rng, retry_after=None) == 5.0
