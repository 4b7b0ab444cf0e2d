"""Setting up the evaluation's worker processes: one thread each, quiet on Ctrl-C, gone with their parent, and
an allocator that keeps the memory it frees.

Each composition allocates and frees the same few hundred MB (network activations, FFT buffers). glibc hands
blocks over 128 kB back to the kernel on free, so every composition faulted some 20 000 pages in again: about a
quarter of a worker's time went to the kernel. Raising the mmap and trim thresholds keeps those pages.
"""

from __future__ import annotations

import ctypes
import signal
import sys

import numpy as np

from bisep.evaluate.metrics import score_composition

MALLOC_TRIM_THRESHOLD, MALLOC_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
MMAP_THRESHOLD_BYTES = 32 << 20  # the largest glibc accepts on 64-bit systems
TRIM_THRESHOLD_BYTES = 1 << 30
SET_PARENT_DEATH_SIGNAL = 1  # prctl PR_SET_PDEATHSIG


def worker_initializer() -> None:
    """One BLAS thread (``jobs`` workers use ``jobs`` cores, with the arithmetic of a single-threaded run); Ctrl-C
    is left to the main process, which shuts the workers down; on Linux the worker ends with the main process
    even if that one is killed, and glibc keeps freed memory."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(SET_PARENT_DEATH_SIGNAL, signal.SIGTERM)
        if hasattr(libc, "mallopt"):  # glibc (not musl)
            libc.mallopt(MALLOC_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
            libc.mallopt(MALLOC_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def score_single_threaded(references: np.ndarray, estimates: dict[str, np.ndarray], mixture: np.ndarray) -> dict:
    """:func:`bisep.evaluate.metrics.score_composition` with one BLAS thread: the same arithmetic in a worker
    and in the main process."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        return score_composition(references, estimates, mixture)
