"""The store on SQLite and on a real PostgreSQL: migrations, idempotence, leases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from reviewbot.service.store import MIGRATIONS, MailMeta, ReplayError, SeriesRecord, Store


def _meta(msgid: str, thread: str | None = None) -> MailMeta:
    return MailMeta(msgid, "[PATCH] x", "a@example.org", thread or msgid, True, True, 1, 1)


def _series(store: Store, thread: str = "t1", version: int = 1) -> int:
    return store.upsert_series(
        SeriesRecord(
            series_id=thread, thread_key=thread, version=version, subject="s",
            subject_key="a|s", author="A <a@example.org>", change_id=None, expected=1,
            present=1, missing=(), message_ids=(thread,), content_hash="", first_seen=1.0,
        )
    )


def test_migrations_are_versioned_and_idempotent(store: Store) -> None:
    latest = max(v for v, _ in MIGRATIONS)
    assert store.schema_version() == latest
    assert store.migrate() == latest  # a second start applies nothing and does not fail
    rows = store.query("SELECT version FROM schema_migrations")
    assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]


def test_mail_is_stored_once_per_message_id(store: Store) -> None:
    first = store.add_mail(b"raw one", _meta("m1@x"), "h1")
    again = store.add_mail(b"raw two", _meta("m1@x"), "h2")
    assert first.created and not again.created
    assert again.mail_id == first.mail_id
    stored = store.get_mail(first.mail_id)
    assert stored is not None and stored.raw == b"raw one"  # the first copy wins
    assert store.mail_count() == 1


def test_replayed_signature_is_refused_and_nothing_stored(store: Store) -> None:
    store.add_mail(b"a", _meta("a@x"), "h", signature="sha256=aa")
    with pytest.raises(ReplayError):
        store.add_mail(b"b", _meta("b@x"), "h", signature="sha256=aa")
    assert store.mail_count() == 1  # the refused request rolled back entirely
    store.prune_nonces(time.time() + 1)
    assert store.add_mail(b"b", _meta("b@x"), "h", signature="sha256=aa").created


def test_thread_lookup_finds_root_and_replies(store: Store) -> None:
    store.add_mail(b"c", _meta("cover@x"), "h")
    store.add_mail(b"p", _meta("p1@x", thread="cover@x"), "h")
    store.add_mail(b"o", _meta("other@x"), "h")
    got = {m.message_id for m in store.mails_in_threads(["cover@x"])}
    assert got == {"cover@x", "p1@x"}


def test_same_content_is_queued_once(store: Store) -> None:
    row = _series(store)
    run1, created1 = store.create_run(row, "t1", "hash-a", ["t1"])
    run2, created2 = store.create_run(row, "t1", "hash-a", ["t1"])
    assert created1 and not created2 and run1 == run2
    run3, created3 = store.create_run(row, "t1", "hash-b", ["t1"])
    assert created3 and run3 != run1


def test_lease_lets_one_worker_at_a_time_and_only_the_holder_finishes(store: Store) -> None:
    row = _series(store)
    run, _ = store.create_run(row, "t1", "h", ["t1"])
    now = time.time()
    token_a = store.claim_run(run, "a", lease_s=10, now=now)
    assert token_a
    assert store.claim_run(run, "b", lease_s=10, now=now + 1) is None  # lease still held
    token_b = store.claim_run(run, "b", lease_s=10, now=now + 11)  # a died: lease expired
    assert token_b and token_b != token_a
    assert not store.finish_run(run, token_a, state="finished", result={"x": 1})
    assert store.finish_run(run, token_b, state="finished", result={"x": 2}, findings=3)
    got = store.get_run(run)
    assert got is not None
    assert got["state"] == "finished" and got["result"] == {"x": 2} and got["attempts"] == 2
    assert store.claim_run(run, "c", lease_s=10, now=now + 100) is None  # done is done
    assert store.series_rows("id = ?", (row,))[0]["state"] == "reviewed"


def test_requeue_lists_expired_leases_and_stale_queued_runs(store: Store) -> None:
    row = _series(store)
    stale, _ = store.create_run(row, "t1", "h1", ["t1"], now=100.0)
    fresh, _ = store.create_run(row, "t1", "h2", ["t1"], now=1000.0)
    running, _ = store.create_run(row, "t1", "h3", ["t1"], now=1000.0)
    assert store.claim_run(running, "w", lease_s=5, now=1000.0)
    assert store.runs_to_requeue(now=1001.0, queued_older_than=500.0) == [stale]
    assert store.runs_to_requeue(now=1006.0, queued_older_than=500.0) == [stale, running]
    assert fresh not in store.runs_to_requeue(now=1006.0, queued_older_than=999.0)


def test_concurrent_intake_threads_lose_nothing(store: Store) -> None:
    errors: list[BaseException] = []

    def post(start: int) -> None:
        try:
            for i in range(start, start + 25):
                store.add_mail(f"m{i}".encode(), _meta(f"m{i}@x"), "h")
                store.add_mail(f"m{i}".encode(), _meta(f"m{i}@x"), "h")  # retried
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(k * 25,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.mail_count() == 100


def test_bad_database_url_is_a_config_error() -> None:
    from reviewbot.errors import ConfigError

    with pytest.raises(ConfigError, match="database_url"):
        Store("mysql://nope")


def test_a_staler_view_of_a_thread_does_not_overwrite_a_fuller_one(store: Store) -> None:
    def record(ids: tuple[str, ...], present: int, series_id: str) -> SeriesRecord:
        return SeriesRecord(
            series_id=series_id, thread_key="c@x", version=1, subject="s", subject_key="k",
            author="A", change_id=None, expected=2, present=present, missing=(),
            message_ids=ids, content_hash=f"h{present}", first_seen=1.0,
        )

    row = store.upsert_series(record(("c@x", "p1@x", "p2@x"), 2, "c@x"))
    # Another worker assembled before the cover arrived, and writes after: ignored.
    assert store.upsert_series(record(("p1@x", "p2@x"), 2, "p1@x")) == row
    assert store.upsert_series(record(("c@x", "p1@x"), 1, "c@x")) == row
    got = store.series_rows("id = ?", (row,))[0]
    assert (got["series_id"], got["present"], got["content_hash"]) == ("c@x", 2, "h2")


def test_short_lived_threads_do_not_leak_connections(store: Store) -> None:
    def one_query() -> None:
        assert store.schema_version() >= 1

    for _ in range(50):  # like a web server's thread pool growing and shrinking
        t = threading.Thread(target=one_query)
        t.start()
        t.join()
    assert store.open_connections() <= 2


def test_an_older_database_is_upgraded_in_place_keeping_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url)
    assert old.migrate(MIGRATIONS[:1]) == 1  # as a reviewbot of schema 1 left it
    row = _series(old)
    with old.tx() as tx:  # a run as schema 1 wrote it (no reply columns yet)
        tx.execute(
            "INSERT INTO runs (series_row, series_id, content_hash, message_ids, state,"
            " created_at, enqueued_at) VALUES (?, 't1', 'h', '[]', 'finished', 1, 1)",
            (row,),
        )
    old.close()
    new = Store(url)
    assert new.migrate() == max(v for v, _ in MIGRATIONS)
    assert new.replies_to_resend(10**12, 10**12) == []  # new columns, defaults filled in
    assert new.run_rows()[0]["content_hash"] == "h"
    new.close()


def test_named_lock_is_exclusive_until_released_or_expired(store: Store) -> None:
    assert store.try_lock("scan", "w1", ttl_s=60, now=1000.0)
    assert not store.try_lock("scan", "w2", ttl_s=60, now=1010.0)
    assert store.try_lock("scan", "w1", ttl_s=60, now=1020.0)  # the holder may renew
    assert store.try_lock("scan", "w2", ttl_s=60, now=1081.0)  # w1 died: expired
    store.unlock("scan", "w1")  # not w1's any more: no effect
    assert not store.try_lock("scan", "w3", ttl_s=60, now=1082.0)
    store.unlock("scan", "w2")
    assert store.try_lock("scan", "w3", ttl_s=60, now=1083.0)


def test_only_a_failed_run_is_queued_again(store: Store) -> None:
    row = _series(store)
    run, _ = store.create_run(row, "t1", "h", ["t1"])
    assert store.retry_run(run)[0] == "conflict"  # queued already
    token = store.claim_run(run, "w", lease_s=10)
    assert token and store.retry_run(run)[0] == "conflict"  # running
    assert store.finish_run(run, token, state="failed", result=None, error="tree missing")
    assert store.series_rows("id = ?", (row,))[0]["state"] == "failed"
    assert store.retry_run(run) == ("queued", "")
    got = store.get_run(run)
    assert got is not None and got["state"] == "queued" and got["attempts"] == 0
    assert got["error"] == "" and store.series_rows("id = ?", (row,))[0]["state"] == "queued"
    assert store.claim_run(run, "w2", lease_s=10)  # a worker can take it again
    assert store.retry_run(run + 1000) == ("missing", f"no run {run + 1000}")
