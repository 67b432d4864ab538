"""Reviews of a scan in worker processes: both cores busy, memory recycled.

A year of a list is a few hundred series; reviewing them is most of a scan's time and the
series are independent, so they go to a small pool (``jobs`` processes). Each worker is
replaced after ``per_worker`` reviews (Celery's max-tasks-per-child): whatever a rule
engine or tree-sitter keeps in native memory is given back, so the scan's memory stays
flat as the archive grows. Workers are started with "spawn", not "fork": the scan holds
an SQLite connection and may run inside a threaded service, neither of which survives a
fork safely.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from reviewbot.config import Settings
from reviewbot.model import Finding, Series
from reviewbot.pipeline import ReviewOptions, review_series


@dataclass(frozen=True)
class ReviewResult:
    """What the scan keeps of one review (SeriesReview itself holds cleanup callables)."""

    findings: tuple[Finding, ...]
    stage_errors: tuple[tuple[str, str], ...]  # (stage, reason) of stages that crashed


def review_for_scan(series: Series, settings: Settings, options: ReviewOptions) -> ReviewResult:
    """Run the pipeline on one series; module level so that a worker process can call it."""
    review = review_series(series, settings, options)
    return ReviewResult(
        tuple(review.findings),
        tuple((o.name, o.reason) for o in review.outcomes if o.status == "error"),
    )


Done = Callable[[Series, str, ReviewResult], None]


class ReviewPool:
    """Submit series in order; results are handed to ``done`` in the same order.

    At most ``2 * jobs`` reviews are in flight, so memory does not grow with the backlog.
    The pool is created on first use: a scan with nothing new starts no process.
    """

    def __init__(self, settings: Settings, options: ReviewOptions, jobs: int,
                 per_worker: int, done: Done) -> None:
        self.settings = settings
        self.options = options
        self.jobs = max(1, jobs)
        self.per_worker = per_worker
        self.done = done
        self._pool: multiprocessing.pool.Pool | None = None
        self._inflight: deque[tuple[Series, str, multiprocessing.pool.AsyncResult[ReviewResult]]]
        self._inflight = deque()

    def submit(self, series: Series, key: str) -> None:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(self.jobs, maxtasksperchild=self.per_worker)
        result = self._pool.apply_async(review_for_scan, (series, self.settings, self.options))
        self._inflight.append((series, key, result))
        while len(self._inflight) > 2 * self.jobs:
            self._complete_oldest()

    def drain(self) -> None:
        while self._inflight:
            self._complete_oldest()

    def _complete_oldest(self) -> None:
        series, key, result = self._inflight.popleft()
        # .get() re-raises a worker's exception here (a broken rule file: BadInputError).
        self.done(series, key, result.get())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
