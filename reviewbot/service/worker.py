"""What a worker process does: assemble intake, run reviews under a lease, sweep, scan.

Reliability comes from the store, not the queue: every task is idempotent (``claim_run``
lets one worker at a time hold a run, ``finish_run`` accepts only the current lease holder),
and :meth:`ServiceWorker.sweep`, run every ``service.sweep_interval_s`` by each worker,
re-enqueues whatever a killed process left behind: mails stored but not assembled, series
whose wait for missing patches ran out, runs whose lease expired.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.errors import InfraError, ReviewbotError
from reviewbot.mail.complete import Archive, complete_one, needs_completion
from reviewbot.mail.complete import offline as completion_off
from reviewbot.mail.series import assemble
from reviewbot.model import Message, Series
from reviewbot.pipeline import ReviewOptions, SeriesReview, review_series
from reviewbot.report.json import review_json
from reviewbot.report.mail import render_replies
from reviewbot.scan import run as scan
from reviewbot.service.assemble import SeriesTracker, load_messages, series_message_ids
from reviewbot.service.mailer import Mailer
from reviewbot.service.store import Store
from reviewbot.service.tasks import TaskQueue

log = logging.getLogger(__name__)

# A mail still unassembled this long after it was stored lost its intake task.
INTAKE_GRACE_S = 2.0
# A run still queued this long while the queue is empty lost its review task.
QUEUED_GRACE_S = 15.0
# Replies committed but not delivered this long after (the worker died): deliver them now.
# After a delivery error (SMTP down), wait longer between attempts.
REPLY_RETRY_S = 30.0
REPLY_ERROR_RETRY_S = 300.0
# An infrastructure failure (InfraError) is retried this many attempts in all, waiting
# RETRY_DELAY_S times the attempt number in between; bad input fails at once.
MAX_ATTEMPTS = 3
# Failed intakes of one mail before it is quarantined (set aside with its error).
QUARANTINE_AFTER = 3
RETRY_DELAY_S = 60.0
# The nightly scan lock expires after this, should its worker die mid-scan.
SCAN_LOCK_TTL_S = 6 * 3600.0


def review_options(settings: Settings) -> ReviewOptions:
    """Options for webhook reviews: the tree when one is configured and exists, boot if set."""
    svc = settings.service
    tree = settings.path(settings.tree.path)
    use_tree = svc.use_tree and tree.is_dir()
    if svc.use_tree and not use_tree:
        log.warning("service.use_tree is on but %s is not a directory: rules only", tree)
    rules = Path(settings.path(settings.rules.path)) if settings.rules.path else None
    return ReviewOptions(
        tree=tree if use_tree else None, use_tree=use_tree, boot=svc.boot, rules_dir=rules
    )


class SupersededError(ReviewbotError):
    """The run's series assembles only as part of a newer, larger series now."""


@dataclass
class SweepReport:
    assembled: int = 0
    expired: int = 0
    requeued: list[int] = field(default_factory=list)
    replies_sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # mails whose intake failed in this sweep


class ServiceWorker:
    """Executes the queue's tasks against the store.

    Args:
        store: shared with every other worker and the HTTP service.
        settings: the service, mail, tree and rules sections are read.
        queue: to enqueue reviews that intake queues.
        name: recorded on runs this worker takes (host:pid by default).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        queue: TaskQueue,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.queue = queue
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.clock = clock
        self.tracker = SeriesTracker(store, settings, queue.enqueue_review, clock)
        self._options: ReviewOptions | None = None

    # -- tasks ----------------------------------------------------------------------------

    def intake(self, mail_id: int) -> int:
        """Assemble the thread of one new mail; returns how many runs were queued.

        A failure is counted on the mail (the sweep tries again) and, at the
        ``QUARANTINE_AFTER``-th, the mail is quarantined: one bad mail never stops the rest.
        """
        try:
            return sum(1 for d in self.tracker.on_mail(mail_id) if d.action == "queued")
        except Exception as exc:  # an edge: record on the mail, never crash the worker
            self._intake_failed(mail_id, exc)
            return 0

    def _intake_failed(self, mail_id: int, exc: Exception) -> None:
        log.exception("intake of mail %d failed", mail_id)
        try:
            if self.store.record_intake_failure(mail_id, f"{type(exc).__name__}: {exc}",
                                                QUARANTINE_AFTER):
                log.error("mail %d quarantined after %d failed intakes", mail_id,
                          QUARANTINE_AFTER)
        except Exception:  # the store itself is down: the next sweep tries again
            log.exception("mail %d: recording the failure failed", mail_id)

    def review(self, run_id: int) -> str:
        """Review one run if it can be claimed; returns the run's state afterwards."""
        lease_s = float(self.settings.service.lease_s)
        token = self.store.claim_run(run_id, self.name, lease_s, now=self.clock())
        if token is None:
            log.debug("run %d: not claimable (taken, done or dropped)", run_id)
            return "skipped"
        beat = _Heartbeat(self.store, run_id, token, lease_s)
        beat.start()
        try:
            review, result = self._review_claimed(run_id)
        except SupersededError as exc:
            beat.stop()
            log.info("run %d: %s", run_id, exc)
            self.store.finish_run(run_id, token, state="superseded", result=None, error=str(exc))
            return "superseded"
        except ReviewbotError as exc:
            beat.stop()
            error = f"{exc}\n{exc.detail}".strip()
            attempts = self._attempts(run_id)
            if isinstance(exc, InfraError) and attempts < MAX_ATTEMPTS:
                # The tree lock timed out, the disk filled, QEMU could not start: worth
                # another try later, on this or another worker.
                delay = RETRY_DELAY_S * attempts
                log.warning("run %d: %s; retrying in %.0f s", run_id, exc, delay)
                if self.store.release_run(run_id, token, error=error,
                                          retry_at=self.clock() + delay):
                    self.queue.enqueue_review(run_id, delay=delay)
                return "retry"
            log.error("run %d failed: %s", run_id, exc)
            self.store.finish_run(run_id, token, state="failed", result=None, error=error)
            return "failed"
        except Exception as exc:  # the worker loop is an edge: record, never crash the worker
            log.exception("run %d crashed", run_id)
            beat.stop()
            self.store.finish_run(
                run_id, token, state="failed", result=None, error=f"internal error: {exc!r}"
            )
            return "failed"
        beat.stop()
        replies, reply_state, detail = self._render_replies(run_id, review)
        if not self.store.finish_run(
            run_id,
            token,
            state="finished",
            result=result,
            findings=len(review.findings),
            exit_code=review.exit_code,
            replies=reply_state,
            reply_mails=replies,
        ):
            # Our lease expired and another worker took the run: its result counts, not ours.
            log.warning("run %d: lease lost before finishing; result discarded", run_id)
            return "lost"
        if replies:
            self._deliver(run_id, replies)
        elif detail:
            self.store.set_replies(run_id, reply_state, detail)
        return "finished"

    def sweep(self) -> SweepReport:
        """Pick up what killed processes left behind (see module docstring)."""
        now = self.clock()
        report = SweepReport()
        for mail_id in self.store.unassembled_mails(now - INTAKE_GRACE_S):
            if self.store.is_assembled(mail_id):
                continue  # assembled with an earlier mail of its thread in this loop
            try:
                self.tracker.on_mail(mail_id)
            except Exception as exc:  # one mail must not stop the sweep (issue 12)
                self._intake_failed(mail_id, exc)
                report.failed.append(mail_id)
                continue
            report.assembled += 1
        report.expired = sum(1 for d in self.tracker.expire_waiting() if d.action == "queued")
        # Expired leases: the worker died. Queued runs long untouched: their task was lost
        # (worker killed between dequeue and claim, Redis restarted) - but only when the
        # queue is empty, else a backlog would be enqueued again at every sweep.
        report.requeued = self.store.runs_to_requeue(now, None)
        try:
            idle = self.queue.pending() == 0
        except Exception:  # the queue is down: enqueueing below would fail as well
            idle = False
        if idle:
            lost = self.store.runs_to_requeue(now, now - QUEUED_GRACE_S)
            report.requeued = sorted(set(report.requeued) | set(lost))
        if report.requeued:
            self.store.touch_enqueued(report.requeued, now)
            for run_id in report.requeued:
                self.queue.enqueue_review(run_id)
            log.info("sweep: re-enqueued runs %s", report.requeued)
        for run_id, replies in self.store.replies_to_resend(
            now - REPLY_RETRY_S, now - REPLY_ERROR_RETRY_S
        ):
            if replies and self._deliver(run_id, replies):
                report.replies_sent.append(run_id)
        self.store.prune_nonces(now - 2 * self.settings.service.replay_window_s)
        self.store.prune_archive_threads(now - max(self.settings.service.series_wait_s, 3600.0))
        return report

    def nightly_scan(self) -> object:
        """The periodic scan of the configured sources (reviewbot.scan owns the logic)."""
        # Every worker schedules the periodic scan; one runs it. The lock expires if that
        # worker is killed mid-scan, so the next night is not lost.
        if not self.store.try_lock("nightly-scan", self.name, SCAN_LOCK_TTL_S, now=self.clock()):
            log.info("nightly scan: another worker is already scanning")
            return None
        try:
            return self._scan_sources()
        finally:
            self.store.unlock("nightly-scan", self.name)

    def _scan_sources(self) -> list[scan.ScanReport]:
        reports = []
        conf = self.settings.scan
        for entry in scan.configured_sources(
            self.settings.path(conf.sources_file) if conf.sources_file else None
        ):
            path = Path(entry["path"])
            if not entry.get("enabled", True):
                continue
            if not path.exists():
                log.warning("nightly scan: source %s: %s does not exist", entry["name"], path)
                continue
            try:
                # Incremental: run_scan remembers where the previous scan stopped.
                reports.append(scan.run_scan(path, self.settings))
            except ReviewbotError as exc:  # one broken source must not stop the others
                log.error("nightly scan: source %s failed: %s", entry["name"], exc)
        log.info("nightly scan: %d source(s) scanned", len(reports))
        return reports

    # -- internals ------------------------------------------------------------------------

    def _attempts(self, run_id: int) -> int:
        run = self.store.run_rows("id = ?", (run_id,), limit=1)
        return int(run[0]["attempts"]) if run else MAX_ATTEMPTS

    def _review_claimed(self, run_id: int) -> tuple[SeriesReview, dict[str, Any]]:
        run = self.store.get_run(run_id)
        if run is None:
            raise ReviewbotError(f"run {run_id} vanished from the store")
        series, messages = self._series_of(run)
        if needs_completion(series) and not completion_off(self.settings):
            # The wait for the rest ran out: complete the part that reached the list from
            # the archive before reviewing it (the fetched patches do not trigger runs).
            cache = StoredThreads(self.store, self.settings.service.series_wait_s, self.clock)
            series = complete_one(series, messages, self.settings,
                                  Archive(self.settings, cache=cache))
        if self._options is None:
            self._options = review_options(self.settings)
        review = review_series(series, self.settings, self._options)
        return review, review_json([review], [])

    def _series_of(self, run: dict[str, Any]) -> tuple[Series, list[Message]]:
        rows = self.store.series_rows("id = ?", (run["series_row"],), limit=1)
        keys = [rows[0]["thread_key"]] if rows else []
        mails = self.store.mails_in_threads(keys)
        have = {m.message_id for m in mails}
        extra = [i for i in run["message_ids"] if i not in have]
        if extra:  # unthreaded series: each patch is its own thread
            mails += self.store.mails_in_threads(extra)
        messages = load_messages(mails, self.settings, self.store)
        candidates = assemble(messages, self.settings.mail).series
        for series in candidates:
            if series.content_key == run["content_hash"]:
                return series, messages
        for series in candidates:
            if series.series_id == run["series_id"]:
                log.warning("run %d: series content changed since queued", run["id"])
                return series, messages
        mine = set(run["message_ids"])
        for series in candidates:
            if mine and mine <= set(series_message_ids(series)):
                # More of the thread arrived after this (partial) run was queued: a cover
                # letter gave the series a new id, or missing patches came. The intake of
                # those mails queued the series as it is now; this run is superseded.
                raise SupersededError(f"superseded by {series.series_id} ({len(series.patches)}"
                                    f"/{series.expected} patches as it assembles now)")
        raise ReviewbotError(
            f"run {run['id']}: series {run['series_id']} no longer assembles from the store"
        )

    def _render_replies(self, run_id: int, review: SeriesReview) -> tuple[list[str], str, str]:
        """(rendered replies, replies state, detail); rendering problems never fail a run."""
        try:
            msgs = render_replies(review, self.settings)
        except NotImplementedError as exc:
            return [], "unavailable", str(exc)
        except Exception as exc:  # a renderer bug must not turn a finished review into a crash
            log.exception("run %d: rendering replies failed", run_id)
            return [], "error", f"rendering failed: {exc!r}"
        rendered = [m.as_string(policy=m.policy.clone(linesep="\n")) for m in msgs]
        return rendered, "pending" if rendered else "none", ""

    def _deliver(self, run_id: int, replies: list[str]) -> bool:
        """Hand the replies to the mailer (outbox or SMTP) and record the outcome."""
        msgs = [
            email.message_from_string(text, policy=email.policy.default) for text in replies
        ]
        try:
            done = Mailer(self.settings).deliver(msgs)
        except Exception as exc:  # SMTP down, outbox full: the sweep tries again later
            log.warning("run %d: delivering replies failed: %s", run_id, exc)
            self.store.set_replies(run_id, "error", repr(exc), now=self.clock())
            return False
        self.store.set_replies(run_id, "sent", "\n".join(map(str, done)), now=self.clock())
        return True


class StoredThreads:
    """Archive threads kept in the store for ``ttl_s`` (mail/complete.py ThreadCache):
    every worker sees every fetch, so a thread is fetched at most once per ``ttl_s``."""

    def __init__(self, store: Store, ttl_s: float, clock: Callable[[], float]) -> None:
        self.store, self.ttl_s, self.clock = store, ttl_s, clock

    def get(self, root: str) -> bytes | str | None:
        return self.store.archive_thread(root, self.clock() - self.ttl_s)

    def put(self, root: str, answer: bytes | str) -> None:
        self.store.put_archive_thread(root, answer, self.clock())


class _Heartbeat:
    """Renews a run's lease every third of it while the review runs (boots take minutes)."""

    def __init__(self, store: Store, run_id: int, token: str, lease_s: float) -> None:
        self._store = store
        self._run_id = run_id
        self._token = token
        self._lease_s = lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                if not self._store.renew_lease(self._run_id, self._token, self._lease_s):
                    log.warning("run %d: lease no longer ours", self._run_id)
                    return
            except Exception:  # the store is down for a moment: the next beat retries
                log.exception("run %d: renewing the lease failed", self._run_id)
