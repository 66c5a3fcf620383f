"""Percentiles and small summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def cumulative(values: Sequence[float], total: int, points: int = 200) -> list[list[float]]:
    """[value, % of `total` at or below it] at `points` evenly spaced shares of `total`:
    the curve of the sorted values, small enough to keep in the results file."""
    ordered = sorted(values)
    curve = []
    for k in range(1, points + 1):
        rank = math.ceil(k * total / points)
        if rank > len(ordered):
            break
        curve.append([round(ordered[rank - 1], 3), 100 * k / points])
    return curve


def ratio(value: float, floor: float) -> float:
    return value / floor if floor and not math.isnan(floor) else math.nan
