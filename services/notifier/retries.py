"""When to try a delivery again: the schedule with jitter, `Retry-After`, and what a status means.

Pure arithmetic on purpose, so every rule here is checked without a network or a database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

# A receiver asking to wait longer than a day is misconfigured or hostile; holding a delivery
# back further would only hide it, so the schedule (and dead-lettering) takes over from there.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


class Outcome(Enum):
    """What an attempt's answer means for the delivery."""

    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"


def classify(status: int | None) -> Outcome:
    """2xx is delivered; 410 Gone means the target is gone for good; anything else is retried.

    `None` (nothing answered) and redirects are failures: a redirect is never followed, since
    its Location could point inside the network the allow-list protects.
    """
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.GONE
    return Outcome.RETRY


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to: the answer's status (`None` if nothing answered), or why not."""

    attempted_at: datetime
    latency_ms: int
    status: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: str | None = None

    @property
    def outcome(self) -> Outcome:
        """Delivered, retry or gone; an error fails the attempt whatever its status said."""
        # A redirect, or an answer cut off by the timeout, may carry a status: only a whole
        # 2xx answer in time counts.
        return Outcome.RETRY if self.error is not None else classify(self.status)

    def asked_wait(self, now: datetime) -> float | None:
        """Seconds the receiver asked to wait, when its status (429, 503) makes that binding."""
        if not honours_retry_after(self.status):
            return None
        return parse_retry_after(self.retry_after, now)


def honours_retry_after(status: int | None) -> bool:
    """Whether `Retry-After` is heeded for this status (429 Too Many Requests, 503 Unavailable)."""
    return status in (429, 503)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay-seconds or HTTP-date), capped at a day.

    Garbage gives `None`, so a broken header never stops retries; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # "-0000" dates come back naive; HTTP-dates are always GMT.
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def next_delay(
    schedule: tuple[int, ...], attempts: int, jitter: float, rng: random.Random
) -> float | None:
    """Seconds until the next attempt after `attempts` attempts; `None` once the schedule is spent.

    `schedule[0]` is the wait before the first attempt, so after n attempts the wait is
    `schedule[n]`, spread by ±`jitter` so that receivers coming back up are not hit by every
    retry in the same second.
    """
    if attempts >= len(schedule):
        return None
    base = float(schedule[attempts])
    return base * (1 + rng.uniform(-jitter, jitter))


def retry_delay(
    schedule: tuple[int, ...],
    attempts: int,
    jitter: float,
    rng: random.Random,
    retry_after: float | None,
) -> float | None:
    """The scheduled delay, lengthened to at least what the receiver asked; `None` when spent."""
    delay = next_delay(schedule, attempts, jitter, rng)
    if delay is None:
        return None
    return delay if retry_after is None else max(delay, retry_after)
