"""How many CPU threads a separation should use: the cores other processes leave idle.

Shared by ``bisep separate`` (once per run) and ``bisep serve`` (before every job, since the machine's load
changes while a server runs).
"""

from __future__ import annotations

import math
import os
import time


def busy_cores(window: float = 0.25) -> float | None:
    """How many cores other processes keep busy now: the machine's non-idle share of CPU time over ``window``
    seconds (``/proc/stat``) times its cores. None where ``/proc/stat`` is missing.

    The 1-minute load average lags: right after another job ends it still reads 1-1.5 on an idle 2-core machine,
    and separation then ran on one thread 1.5x slower than on two (BENCHMARK.md)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(value) for value in handle.readline().split()[1:9]]  # user .. steal, no guest time
        return sum(values), values[3] + values[4]  # all, idle + iowait

    try:
        total, idle = sample()
        time.sleep(window)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total_after - total
    if elapsed <= 0:
        return None
    return (1 - (idle_after - idle) / elapsed) * (os.cpu_count() or 1)


def idle_cores() -> int:
    """The cores other processes leave idle (usable cores minus the busy ones, rounded), at least 1.

    PyTorch's OpenMP threads meet at a barrier after every parallel operation; when another process holds a
    core, the thread waiting for it stalls all the others (on a 2-core machine running a training job, 2
    threads were 7x slower than 1). Threads for idle cores only, and waiting threads that sleep instead of
    spinning (``OMP_WAIT_POLICY=PASSIVE``), keep a busy machine from making separation slower than 1 thread.
    Busy cores are measured over a quarter second (:func:`busy_cores`); where that cannot be read, the 1-minute
    load average stands in."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            return cores
    return max(1, min(cores, math.floor(cores - busy + 0.5)))
