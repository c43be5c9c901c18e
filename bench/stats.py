"""Percentiles and medians, without numpy: pure functions the unit tests cover."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, interpolated linearly between closest ranks.

    NaN for no values: a figure that could not be measured must not look like zero.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile lies between 0 and 100, not {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median of `values`, ignoring NaNs (runs that measured nothing); NaN if none is left."""
    return percentile([v for v in values if not math.isnan(v)], 50)
