"""Percentiles and the summary of a metric's samples over runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between closest ranks (as numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {}
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "p25": percentile(samples, 25),
        "p75": percentile(samples, 75),
    }
