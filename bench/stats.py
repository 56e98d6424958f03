"""Percentiles and summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """n, p50, p90, p99, max in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 3),
        "p90_ms": round(pct(ms, 90), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else math.nan,
    }


CURVE_POINTS = [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 99, 99.5, 99.9, 100]


def curve_ms(seconds: Sequence[float]) -> list[list[float]]:
    """[percentile, milliseconds] pairs, for plotting a distribution."""
    ms = [s * 1000 for s in seconds]
    return [[p, round(pct(ms, p), 3)] for p in CURVE_POINTS] if ms else []


def max_overlap(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    best = current = 0
    for _, step in points:
        current += step
        best = max(best, current)
    return best


def open_at(intervals: Sequence[tuple[float, float]], moment: float) -> int:
    return sum(1 for a, b in intervals if a <= moment <= b)


def ratio(value: float, floor: float) -> float:
    if not floor or math.isnan(floor) or math.isnan(value):
        return math.nan
    return round(value / floor, 3)
