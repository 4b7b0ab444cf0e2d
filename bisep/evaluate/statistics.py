"""Summary statistics of per-source scores: mean, median and a 95% confidence interval of the mean.

The interval is Student's t over independent units. The sources of one composition share a mixture, so they are
not independent: overall figures take the composition as the unit (the mean over its sources; with equal k per
list the mean of these equals the mean over sources, the paper's figure). Per-class figures take the source as
the unit (a composition never holds two clips of one class).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np


def describe(values: Sequence[float], units: Sequence[object] | None = None) -> dict:
    """``{"mean", "median", "ci95": [low, high] or None, "count"}`` of ``values``; ``units`` groups values into
    independent units (e.g. composition ids) for the interval."""
    array = np.asarray(values, np.float64)
    if array.size == 0:
        return {"mean": None, "median": None, "ci95": None, "count": 0}
    if units is None:
        unit_means = array
    else:
        groups: dict = {}
        for unit, value in zip(units, array):
            groups.setdefault(unit, []).append(value)
        unit_means = np.array([np.mean(group) for group in groups.values()])
    mean = float(array.mean())
    return {"mean": mean, "median": float(np.median(array)), "ci95": _interval(mean, unit_means),
            "count": int(array.size)}


@lru_cache(maxsize=None)
def _t_quantile(degrees_of_freedom: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, degrees_of_freedom))


def _interval(mean: float, unit_means: np.ndarray) -> list[float] | None:
    count = unit_means.size
    if count < 2:
        return None
    half_width = _t_quantile(count - 1) * float(unit_means.std(ddof=1)) / math.sqrt(count)
    return [mean - half_width, mean + half_width]
