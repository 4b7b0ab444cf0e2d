"""Separation jobs: a bounded queue served by one worker thread, and a janitor that removes old results.

One worker is enough: a separation already uses every core through PyTorch, so two at once would only take
turns. The queue holds at most ``capacity`` waiting jobs; past that ``submit`` raises :class:`Busy` at once, so a
crowd of requests gets a clear answer instead of piling up memory and disk.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bisep.errors import BisepError

log = logging.getLogger("bisep.serve")


class Busy(Exception):
    """The queue is full; the message says how many jobs are waiting."""


@dataclass
class Job:
    """One separation request: its folder, what to do, and how far it got."""

    id: str
    folder: Path
    request: dict[str, Any]
    state: str = "queued"  # queued, running, done, failed
    progress: float = 0.0  # 0-1 while running
    stage: str = "waiting for its turn"
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def files(self) -> dict[str, Path]:
        """The downloadable files of a finished job by their public name (nothing else in its folder is served)."""
        return {name: self.folder / name for name in (self.result or {}).get("files", [])}


class JobQueue:
    """Runs ``work(job)`` for each submitted job, one at a time, in submission order."""

    def __init__(self, work: Callable[[Job], dict[str, Any]], capacity: int):
        self.work, self.capacity = work, capacity
        self.jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="bisep-separation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; a running one ends at its next segment (``work`` checks :meth:`stopping`)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def stopping(self) -> bool:
        return self._stopping

    def submit(self, job: Job) -> int:
        """Queue ``job``; returns how many jobs are ahead of it, or raises :class:`Busy`."""
        with self._condition:
            if len(self._waiting) >= self.capacity:
                raise Busy(f"busy: {len(self._waiting)} separations are already waiting; try again in a minute")
            self._waiting.append(job)
            self.jobs[job.id] = job
            self._condition.notify()
            return self._ahead(job)

    def get(self, job_id: str) -> Job | None:
        with self._condition:
            return self.jobs.get(job_id)

    def ahead_of(self, job: Job) -> int:
        with self._condition:
            return self._ahead(job)

    def _ahead(self, job: Job) -> int:
        running = any(other.state == "running" for other in self.jobs.values())
        return (self._waiting.index(job) if job in self._waiting else 0) + running

    def waiting(self) -> int:
        with self._condition:
            return len(self._waiting)

    def forget_finished(self, older_than: float, remove: Callable[[Job], None]) -> list[Job]:
        """Drop finished jobs that ended more than ``older_than`` seconds ago, calling ``remove(job)`` first (so
        a job is never gone from the API while its files are still there); returns them."""
        now = time.monotonic()
        with self._condition:
            old = [job for job in self.jobs.values()
                   if job.finished is not None and now - job.finished > older_than]
        for job in old:
            remove(job)
        with self._condition:
            for job in old:
                del self.jobs[job.id]
        return old

    def _serve(self) -> None:
        while True:
            with self._condition:
                while not self._waiting and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                job = self._waiting.popleft()
                job.state, job.stage = "running", "starting"
            try:
                job.result = self.work(job)
                job.state, job.progress, job.stage = "done", 1.0, "done"
            except BisepError as error:
                job.state, job.error, job.stage = "failed", str(error), "failed"
            except Exception as error:  # a bug must fail one job, never the worker
                log.exception("separation job %s failed", job.id)
                job.state, job.stage = "failed", "failed"
                job.error = f"internal error: {type(error).__name__}: {error}"
            job.finished = time.monotonic()


class Janitor:
    """Every ``period`` seconds, removes the folders of jobs finished more than ``keep_seconds`` ago."""

    def __init__(self, queue: JobQueue, keep_seconds: float, period: float | None = None):
        self.queue, self.keep_seconds = queue, keep_seconds
        self.period = period if period is not None else min(60.0, max(0.2, keep_seconds / 4))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bisep-janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def sweep(self) -> int:
        return len(self.queue.forget_finished(self.keep_seconds,
                                              lambda job: shutil.rmtree(job.folder, ignore_errors=True)))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sweep()
