"""Summaries of timing samples: percentiles by linear interpolation, mean, spread."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) of `samples`, interpolating between the two nearest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def summarize(samples_s: Sequence[float]) -> dict[str, Any]:
    """p50 / p90 / mean / min / max / stdev in milliseconds, plus the sample count."""
    ms = [s * 1000.0 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 0.5),
        "p90_ms": percentile(ms, 0.9),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "stdev_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0,
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
