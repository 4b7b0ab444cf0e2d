"""The timing rule every benchmark script uses: warm-up runs, then the median of repeated runs."""

from __future__ import annotations

import statistics
import time


def median_seconds(function, repeats: int = 10, warmups: int = 1) -> float:
    for _ in range(warmups):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
