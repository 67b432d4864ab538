"""The worker's tasks in-process: review under a lease, lost leases, the nightly scan."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_mails import series_mails

from reviewbot.config import Settings, settings_from_mapping
from reviewbot.mail.parse import parse_message
from reviewbot.service.assemble import mail_meta
from reviewbot.service.store import SeriesRecord, Store
from reviewbot.service.tasks import TaskQueue
from reviewbot.service.worker import ServiceWorker


class FakeQueue(TaskQueue):
    """Records enqueued run ids instead of talking to Huey."""

    def __init__(self) -> None:
        self.reviews: list[int] = []
        self.delays: list[float | None] = []
        self.intakes: list[int] = []

    def enqueue_review(self, run_id: int, delay: float | None = None) -> None:
        self.reviews.append(run_id)
        self.delays.append(delay)

    def enqueue_intake(self, mail_id: int) -> None:
        self.intakes.append(mail_id)

    def pending(self) -> int:
        return 0


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Store, Settings, FakeQueue]]:
    settings = settings_from_mapping(
        {"service": {"use_tree": False, "lease_s": 30}, "mail": {"compute_patch_id": False}}
    )
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    yield store, settings, FakeQueue()
    store.close()


def _post(store: Store, mails: list[bytes]) -> list[int]:
    ids = []
    for raw in mails:
        meta = mail_meta(parse_message(raw))
        ids.append(store.add_mail(raw, meta, hashlib.sha256(raw).hexdigest()).mail_id)
    return ids


def test_review_finishes_the_run_and_a_second_call_does_nothing(env: Any) -> None:
    store, settings, queue = env
    worker = ServiceWorker(store, settings, queue, name="t")
    for mail_id in _post(store, series_mails("wk-a", 2, buggy=True)):
        worker.intake(mail_id)
    [run_id] = queue.reviews
    assert worker.review(run_id) == "finished"
    assert worker.review(run_id) == "skipped"  # a duplicate task is harmless
    run = store.get_run(run_id)
    assert run["state"] == "finished" and run["findings"] >= 2 and run["exit_code"] == 1
    assert run["attempts"] == 1 and run["worker"] == "t"


def test_a_worker_whose_lease_was_taken_over_discards_its_result(env: Any) -> None:
    store, settings, queue = env
    clock = [1000.0]
    slow = ServiceWorker(store, settings, queue, name="slow", clock=lambda: clock[0])
    for mail_id in _post(store, series_mails("wk-b", 1, cover=False)):
        slow.intake(mail_id)
    [run_id] = queue.reviews
    token = store.claim_run(run_id, "slow", lease_s=30, now=1000.0)
    assert token
    # The lease expires; the sweep of another worker re-enqueues and that worker finishes.
    clock[0] = 1100.0
    assert run_id in slow.sweep().requeued
    fast = ServiceWorker(store, settings, queue, name="fast", clock=lambda: 1100.0)
    assert fast.review(run_id) == "finished"
    assert not store.finish_run(run_id, token, state="finished", result={"late": True})
    run = store.get_run(run_id)
    assert run["worker"] == "fast" and run["attempts"] == 2 and run["result"] != {"late": True}


def test_sweep_assembles_mails_whose_intake_task_was_lost(env: Any) -> None:
    store, settings, queue = env
    worker = ServiceWorker(store, settings, queue, name="t", clock=lambda: 4_000_000_000.0)
    _post(store, series_mails("wk-c", 2))  # stored, but nobody ran intake
    report = worker.sweep()
    assert report.assembled == 1 and len(queue.reviews) == 1  # one thread, assembled once
    assert worker.sweep().assembled == 0


def test_nightly_scan_runs_each_enabled_source(env: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import reviewbot.scan.run as scan

    store, settings, queue = env
    folder = tmp_path / "inbox"
    folder.mkdir()
    for i, raw in enumerate(series_mails("wk-s", 2, buggy=True)):
        (folder / f"{i}.eml").write_bytes(raw)
    monkeypatch.setattr(scan, "configured_sources", lambda path=None: [
        {"name": "local", "path": str(folder), "enabled": True},
        {"name": "off", "path": str(folder), "enabled": False},
        {"name": "gone", "path": str(tmp_path / "missing"), "enabled": True},
    ])
    assert store.try_lock("nightly-scan", "other-worker", ttl_s=60)
    assert ServiceWorker(store, settings, queue).nightly_scan() is None  # one scan at a time
    store.unlock("nightly-scan", "other-worker")
    reports = ServiceWorker(store, settings, queue).nightly_scan()
    assert isinstance(reports, list) and len(reports) == 1
    assert reports[0].exit_code in (0, 1)
    assert store.try_lock("nightly-scan", "next", ttl_s=60)  # released after the scan


def test_sweep_requeues_a_lost_queued_run_only_when_the_queue_is_idle(env: Any) -> None:
    store, settings, queue = env
    clock = [1000.0]
    worker = ServiceWorker(store, settings, queue, name="t", clock=lambda: clock[0])
    for mail_id in _post(store, series_mails("wk-d", 1, cover=False)):
        worker.intake(mail_id)
    assert len(queue.reviews) == 1  # ... and suppose that task was lost
    clock[0] += 5
    assert worker.sweep().requeued == []  # too early to call it lost
    clock[0] += 20
    busy = FakeQueue()
    busy.pending = lambda: 3  # type: ignore[method-assign]
    assert ServiceWorker(store, settings, busy, clock=lambda: clock[0]).sweep().requeued == []
    assert worker.sweep().requeued == queue.reviews[:1]
    assert worker.review(queue.reviews[0]) == "finished"


def test_replies_survive_a_failed_delivery_and_are_resent_by_the_sweep(
    env: Any, tmp_path: Path
) -> None:
    from service_support import free_port

    store, _, queue = env
    # SMTP enabled but nothing listens: delivery fails after the review was committed.
    down = settings_from_mapping({
        "service": {"use_tree": False, "smtp_enabled": True, "smtp_host": "127.0.0.1",
                    "smtp_port": free_port()},
        "fetch": {"timeout_s": 2.0},
        "mail": {"compute_patch_id": False},
    })
    clock = [1000.0]
    worker = ServiceWorker(store, down, queue, name="t", clock=lambda: clock[0])
    for mail_id in _post(store, series_mails("wk-r", 2, buggy=True)):
        worker.intake(mail_id)
    [run_id] = queue.reviews
    assert worker.review(run_id) == "finished"
    run = store.get_run(run_id)
    assert run["replies"] == "error" and "SMTP" in run["replies_detail"]
    # The operator switches to the outbox (or SMTP comes back): the sweep resends, later.
    up = settings_from_mapping({"service": {"use_tree": False},
                                "mail": {"compute_patch_id": False}})
    later = ServiceWorker(store, up, queue, name="t", clock=lambda: clock[0])
    clock[0] += 60
    assert later.sweep().replies_sent == []  # errors wait REPLY_ERROR_RETRY_S
    clock[0] += 300
    assert later.sweep().replies_sent == [run_id]
    run = store.get_run(run_id)
    assert run["replies"] == "sent"
    files = sorted((up.path(up.service.state_dir) / "outbox").glob("*.eml"))
    assert len(files) >= 2
    assert "In-Reply-To: <wk-r-v1-1@example.org>" in "".join(f.read_text() for f in files)
    assert later.sweep().replies_sent == []  # delivered once


def test_infrastructure_failures_are_retried_then_fail_for_good(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reviewbot.service.worker as worker_mod
    from reviewbot.errors import InfraError

    store, settings, queue = env
    clock = [1000.0]
    worker = ServiceWorker(store, settings, queue, name="t", clock=lambda: clock[0])
    for mail_id in _post(store, series_mails("wk-x", 1, cover=False)):
        worker.intake(mail_id)
    [run_id] = queue.reviews

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise InfraError("worktree lock busy", output="lock held by pid 42")

    monkeypatch.setattr(worker_mod, "review_series", broken)
    assert worker.review(run_id) == "retry"
    run = store.get_run(run_id)
    assert run["state"] == "queued" and "worktree lock busy" in run["error"]
    assert queue.delays[-1] == worker_mod.RETRY_DELAY_S  # scheduled, not immediate
    clock[0] += 20
    assert run_id not in worker.sweep().requeued  # the delay is respected
    assert worker.review(run_id) == "retry"
    assert worker.review(run_id) == "failed"  # third attempt: give up, say why
    run = store.get_run(run_id)
    assert run["state"] == "failed" and run["attempts"] == 3
    assert "lock held by pid 42" in run["error"]


def test_lease_renewal_keeps_the_run_and_leaks_no_connection(env: Any) -> None:
    import threading

    from reviewbot.service.worker import _Heartbeat

    store, _, _ = env
    row = store.upsert_series(SeriesRecord(
        series_id="s", thread_key="s", version=1, subject="s", subject_key="s", author="a",
        change_id=None, expected=1, present=1, missing=(), message_ids=("s",),
        content_hash="", first_seen=1.0))
    run_id, _ = store.create_run(row, "s", "hash", ["s"])
    token = store.claim_run(run_id, "w", lease_s=0.3)
    before = store.open_connections()
    for _ in range(5):
        beat = _Heartbeat(store, run_id, token, lease_s=0.3)
        beat.start()
        threading.Event().wait(0.35)  # a beat every 0.1 s: the lease never lapses
        assert store.claim_run(run_id, "other", lease_s=1) is None
        beat.stop()
    assert store.open_connections() == before


def test_a_mail_whose_intake_always_fails_is_quarantined_and_the_sweep_goes_on(
        env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from reviewbot.report.html import render_index
    from reviewbot.service.metrics import Metrics
    from reviewbot.service.worker import QUARANTINE_AFTER

    store, settings, queue = env
    worker = ServiceWorker(store, settings, queue, name="t", clock=lambda: 4_000_000_000.0)
    bad = _post(store, series_mails("wk-bad", 1, cover=False))[0]
    good = _post(store, series_mails("wk-good", 1, cover=False))[0]
    real = worker.tracker.on_mail
    calls: list[int] = []

    def on_mail(mail_id: int) -> Any:
        # A bug that hostile input meets (the parsers themselves are fuzzed, bench/fuzz.py):
        # injected, since no real input is known to reach one.
        calls.append(mail_id)
        if mail_id == bad:
            raise RecursionError("maximum recursion depth exceeded")
        return real(mail_id)

    monkeypatch.setattr(worker.tracker, "on_mail", on_mail)
    report = worker.sweep()
    assert report.failed == [bad] and report.assembled == 1 and len(queue.reviews) == 1
    assert store.is_assembled(good) and store.quarantined_mails() == []
    assert worker.intake(bad) == 0  # the task path records the failure too, and returns
    for _ in range(QUARANTINE_AFTER):
        worker.sweep()
    (q,) = store.quarantined_mails()
    assert q["id"] == bad and q["failures"] == QUARANTINE_AFTER
    assert q["error"] == "RecursionError: maximum recursion depth exceeded"
    calls.clear()
    assert worker.sweep().failed == [] and bad not in calls  # set aside: not tried again
    assert store.counts()["mails"] == {"stored": 2, "quarantined": 1}
    page = render_index(store.series_rows(), [], quarantined=store.quarantined_mails())
    assert "Quarantined mails (1)" in page and "RecursionError" in page
    assert "reviewbot_mails_quarantined 1" in Metrics().render(store.counts(), 0)


def test_a_partial_run_overtaken_by_the_rest_of_its_thread_is_superseded(env: Any) -> None:
    import time

    store, settings, queue = env
    clock = [time.time()]  # the store stamps mails with the wall clock
    worker = ServiceWorker(store, settings, queue, name="t", clock=lambda: clock[0])
    cover, *patches = series_mails("wk-race", 3)
    # Patches 1 and 2 arrive; nobody sends the rest for longer than series_wait_s.
    for mail_id in _post(store, patches[:2]):
        worker.intake(mail_id)
    assert queue.reviews == []
    clock[0] += settings.service.series_wait_s + 1
    worker.sweep()
    (partial,) = queue.reviews
    # Before a worker takes that partial run, the cover letter and patch 3 arrive: the
    # series gets the cover's id and is queued whole.
    for mail_id in _post(store, [cover, patches[2]]):
        worker.intake(mail_id)
    assert len(queue.reviews) == 2
    # The partial run no longer assembles as such: it is superseded, not failed.
    assert worker.review(partial) == "superseded"
    run = store.get_run(partial)
    assert run is not None and run["state"] == "superseded"
    assert "superseded by" in run["error"] and "3/3 patches" in run["error"]
    assert worker.review(queue.reviews[1]) == "finished"
