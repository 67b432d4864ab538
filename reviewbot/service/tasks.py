"""The Huey queue: SqliteHuey in the state folder by default, RedisHuey for several machines.

The HTTP service and the workers build the same :class:`TaskQueue` from the settings, so a
task enqueued by one is found by name in the other. Tasks carry only ids (mail id, run id):
the store is the truth, and a task lost with a killed process is re-enqueued by the worker's
sweep (:meth:`reviewbot.service.worker.ServiceWorker.sweep`), so the queue needs no
durability promises of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from huey import Huey, RedisHuey, SqliteHuey, crontab

from reviewbot.config import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "reviewbot"


class Handlers(Protocol):
    """What a worker process executes; the HTTP service has none and only enqueues."""

    def intake(self, mail_id: int) -> object: ...

    def review(self, run_id: int) -> object: ...

    def sweep(self) -> object: ...

    def nightly_scan(self) -> object: ...


def make_huey(settings: Settings) -> Huey:
    """RedisHuey when ``service.redis_url`` is set, else SqliteHuey in the state folder."""
    svc = settings.service
    if svc.redis_url:
        return RedisHuey(QUEUE_NAME, url=svc.redis_url, results=False)
    state = settings.path(svc.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(QUEUE_NAME, filename=str(state / "queue.db"), results=False)


class TaskQueue:
    """The service's tasks registered on one Huey instance.

    Args:
        huey: from :func:`make_huey`.
        settings: ``service.nightly_scan_hour`` sets the periodic scan.
        handlers: builds the worker that executes tasks (None in the HTTP service).
    """

    def __init__(
        self,
        huey: Huey,
        settings: Settings,
        handlers: Callable[[], Handlers] | None = None,
    ) -> None:
        self.huey = huey
        self._factory = handlers
        self._handlers: Handlers | None = None
        self._intake = huey.task(name="reviewbot.intake")(self._run_intake)
        self._review = huey.task(name="reviewbot.review")(self._run_review)
        hour = settings.service.nightly_scan_hour
        self._scan = huey.periodic_task(
            crontab(minute="0", hour=str(hour)), name="reviewbot.nightly_scan"
        )(self._run_scan)
        # A backstop for consumers started with huey_consumer instead of `reviewbot worker`
        # (which sweeps more often from its own thread).
        self._sweep = huey.periodic_task(crontab(minute="*"), name="reviewbot.sweep")(
            self._run_sweep
        )

    @property
    def backend(self) -> str:
        return type(self.huey).__name__

    def handlers(self) -> Handlers:
        if self._handlers is None:
            if self._factory is None:
                raise RuntimeError("this process only enqueues; run `reviewbot worker`")
            self._handlers = self._factory()
        return self._handlers

    def enqueue_intake(self, mail_id: int) -> None:
        self._intake(mail_id)

    def enqueue_review(self, run_id: int, delay: float | None = None) -> None:
        if delay:
            self._review.schedule(args=(run_id,), delay=delay)
        else:
            self._review(run_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def _run_intake(self, mail_id: int) -> None:
        self.handlers().intake(mail_id)

    def _run_review(self, run_id: int) -> None:
        self.handlers().review(run_id)

    def _run_scan(self) -> None:
        self.handlers().nightly_scan()

    def _run_sweep(self) -> None:
        self.handlers().sweep()
