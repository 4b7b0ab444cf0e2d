import threading
import time

import pytest

from bisep.errors import BisepError
from bisep.serve.jobs import Busy, Janitor, Job, JobQueue


def make_job(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    return Job(id=name, folder=folder, request={})


def wait_until_finished(queue, jobs, timeout=10.0):
    deadline = time.monotonic() + timeout
    while any(job.finished is None for job in jobs):
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.01)


def test_jobs_run_in_order_one_at_a_time_and_a_full_queue_says_busy(tmp_path):
    gate, order, running = threading.Event(), [], []

    def work(job):
        running.append(job.id)
        assert len(running) - len(order) == 1  # never two at once
        gate.wait(10)
        order.append(job.id)
        return {"files": []}

    queue = JobQueue(work, capacity=2)
    queue.start()
    try:
        first = make_job(tmp_path, "first")
        assert queue.submit(first) == 0
        while first.state != "running":
            time.sleep(0.01)
        second, third = make_job(tmp_path, "second"), make_job(tmp_path, "third")
        assert queue.submit(second) == 1 and queue.submit(third) == 2
        assert queue.ahead_of(third) == 2 and queue.waiting() == 2
        with pytest.raises(Busy, match="busy: 2 separations are already waiting"):
            queue.submit(make_job(tmp_path, "fourth"))
        gate.set()
        wait_until_finished(queue, [first, second, third])
        assert order == ["first", "second", "third"]
        assert [job.state for job in (first, second, third)] == ["done"] * 3
    finally:
        queue.stop()


def test_bad_input_and_bugs_fail_their_job_only(tmp_path):
    def work(job):
        if job.id == "bad":
            raise BisepError("bad.wav: unreadable")
        if job.id == "bug":
            raise ZeroDivisionError("division by zero")
        return {"files": ["out.flac"]}

    queue = JobQueue(work, capacity=5)
    queue.start()
    try:
        jobs = [make_job(tmp_path, name) for name in ("bad", "bug", "good")]
        for job in jobs:
            queue.submit(job)
        wait_until_finished(queue, jobs)
        assert [(job.state, job.error) for job in jobs] == [
            ("failed", "bad.wav: unreadable"), ("failed", "internal error: ZeroDivisionError: division by zero"),
            ("done", None)]
        assert jobs[2].files == {"out.flac": tmp_path / "good" / "out.flac"} and jobs[0].files == {}
    finally:
        queue.stop()


def test_the_janitor_removes_only_jobs_finished_longer_ago_than_the_keep_time(tmp_path):
    queue = JobQueue(lambda job: {"files": []}, capacity=5)
    old, recent, waiting = (make_job(tmp_path, name) for name in ("old", "recent", "waiting"))
    for job in (old, recent, waiting):
        queue.jobs[job.id] = job
    old.finished = time.monotonic() - 61
    recent.finished = time.monotonic() - 59
    janitor = Janitor(queue, keep_seconds=60)
    assert janitor.sweep() == 1
    assert not old.folder.exists() and queue.get("old") is None
    assert recent.folder.exists() and waiting.folder.exists() and set(queue.jobs) == {"recent", "waiting"}
