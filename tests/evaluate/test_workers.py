"""Worker processes run one BLAS thread, ignore Ctrl-C (the main process shuts them down) and score exactly as
the main process does."""

import multiprocessing
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from bisep.evaluate.workers import score_single_threaded, worker_initializer


def worker_state():
    from threadpoolctl import threadpool_info

    blas = {entry["num_threads"] for entry in threadpool_info() if entry["user_api"] == "blas"}
    return blas, signal.getsignal(signal.SIGINT) == signal.SIG_IGN


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers are the Linux layout")
def test_workers_are_single_threaded_quiet_and_score_like_the_main_process():
    rng = np.random.default_rng(0)
    references = rng.standard_normal((2, 4000))
    estimates = {"model": references + 0.2 * rng.standard_normal((2, 4000))}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context, initializer=worker_initializer) as executor:
        blas_threads, ignores_interrupt = executor.submit(worker_state).result()
        in_worker = executor.submit(score_single_threaded, references, estimates, references.sum(0)).result()
    assert blas_threads == {1} and ignores_interrupt
    assert in_worker == score_single_threaded(references, estimates, references.sum(0))
