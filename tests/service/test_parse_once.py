"""The service parses each mail once (issue 11): intake keeps the parsed message in the store
and every later assembly of the thread, and the review, read it back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_mails import reply_mail, series_mails

import reviewbot.mail.ingest as ingest
from reviewbot.config import settings_from_mapping
from reviewbot.mail import read_series, stored
from reviewbot.mail.ingest import parse_one
from reviewbot.service.assemble import SeriesTracker, load_series, mail_meta
from reviewbot.service.store import Store

SETTINGS = settings_from_mapping({"service": {"series_wait_s": 600}})


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    yield store
    store.close()


@pytest.mark.parametrize("posted", [True, False])
def test_each_mail_of_a_thread_is_parsed_once_across_intakes_and_the_review(
        db: Store, monkeypatch: pytest.MonkeyPatch, posted: bool) -> None:
    """posted: stored as the webhook stores it (parsed at POST, never again); else stored
    raw only (a row of an older version, or a mail the webhook could not read): the first
    intake parses it and keeps the result."""
    mails = series_mails("once", 3)
    mails.append(reply_mail("once", "once-v1-1@example.org", "once-v1-0@example.org"))
    parsed: list[bytes] = []
    real = ingest.parse_message

    def counting(raw: bytes, position: int = 0, source: str = ""):  # type: ignore[no-untyped-def]
        parsed.append(raw)
        return real(raw, position, source)

    queued: list[int] = []
    tracker = SeriesTracker(db, SETTINGS, queued.append, lambda: 1_000_000.0)
    ids = []
    for raw in mails:  # what POST /v1/mail does
        msg = parse_one(raw, SETTINGS.mail, source="POST /v1/mail")
        ids.append(db.add_mail(raw, mail_meta(msg), hashlib.sha256(raw).hexdigest(),
                               parsed=stored.encode(msg) if posted else None).mail_id)
    monkeypatch.setattr(ingest, "parse_message", counting)
    for mail_id in ids:
        tracker.on_mail(mail_id)
    assert len(queued) == 1
    thread = db.mails_in_threads([db.get_mail(ids[0]).thread_key])  # type: ignore[union-attr]
    (series,) = load_series(thread, SETTINGS, db)  # what the review assembles
    assert len(series.patches) == 3 and series.complete
    if posted:
        assert parsed == []  # parsed at POST only
    else:
        assert sorted(parsed) == sorted(set(parsed))  # each parsed once, at its first intake
    assert all(m.parsed for m in db.mails_in_threads([thread[0].thread_key]))


def test_a_stored_message_reads_back_equal_and_a_foreign_one_is_parsed_again(
        tmp_path: Path) -> None:
    mbox = tmp_path / "t.mbox"
    mbox.write_bytes(b"".join(b"From x@y Thu Jan  1 00:00:00 1970\n" + m + b"\n"
                              for m in series_mails("codec", 2)))
    for msg in ingest.read_bytes(mbox.read_bytes(), "t.mbox", SETTINGS.mail)[0]:
        assert stored.decode(stored.encode(msg)) == msg
    assert stored.decode(b"not zlib") is None
    assert stored.decode(None) is None
    (series,) = read_series([mbox], SETTINGS).series
    assert series.complete
