"""One way in for mail: the webhook, the CLI and the scanner apply the same limits to the
same mail, because all three read it through reviewbot.mail.ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from service_mails import series_mails

from reviewbot.config import MailSettings, Settings
from reviewbot.errors import BadInputError
from reviewbot.mail import read_series
from reviewbot.mail.ingest import parse_one

LIMIT = {"max_patch_lines": 3}  # every test patch has a longer diff


def test_a_patch_over_the_limit_is_refused_by_the_cli_the_scan_and_the_webhook(
        service_factory: Any, tmp_path: Path) -> None:
    mails = series_mails("limits", 2)
    patch = mails[1]
    mbox = tmp_path / "series.mbox"
    mbox.write_bytes(b"".join(b"From x@y Thu Jan  1 00:00:00 1970\n" + m + b"\n" for m in mails))
    settings = Settings(mail=MailSettings(compute_patch_id=False, **LIMIT))

    # The CLI (`reviewbot series`/`review`): one error entry per patch, no series reviewed.
    found = read_series([mbox], settings)
    assert len(found.errors) == 2
    assert all("over mail.max_patch_lines (3)" in e.error for e in found.errors)
    assert not [s for s in found.series if s.patches]

    # The scanner reads each archived mail with parse_one: the same words.
    with pytest.raises(BadInputError, match=r"over mail.max_patch_lines \(3\)"):
        parse_one(patch, settings.mail, source="archive")

    # The webhook: stored (an MTA must not bounce list traffic) but never as a patch.
    svc = service_factory(mail=LIMIT)
    svc.start_server()
    ok = svc.post(mails[0])
    over = svc.post(patch)
    assert ok.status_code == 202 and over.status_code == 202, over.text
    store = svc.store()
    assert store.mail_meta(ok.json()["id"]) is not None
    meta = store.mail_meta(over.json()["id"])
    assert meta is not None and not meta[4]  # is_patch


def test_under_the_limit_all_three_read_the_same_patch(service_factory: Any,
                                                       tmp_path: Path) -> None:
    mails = series_mails("same", 1, cover=False)
    mbox = tmp_path / "one.mbox"
    mbox.write_bytes(b"From x@y Thu Jan  1 00:00:00 1970\n" + mails[0] + b"\n")
    settings = Settings(mail=MailSettings(compute_patch_id=False))
    (series,) = read_series([mbox], settings).series
    scanned = parse_one(mails[0], settings.mail, source="archive")
    assert series.patches[0].message.message_id == scanned.message_id
    assert series.patches[0].message.diff == scanned.diff
    svc = service_factory()
    svc.start_server()
    resp = svc.post(mails[0])
    assert resp.status_code == 202
    meta = svc.store().mail_meta(resp.json()["id"])
    assert meta is not None and bool(meta[4]) is True


def test_one_mbox_gives_the_same_series_to_the_cli_the_scan_and_the_webhook(
        service_factory: Any, tmp_path: Path) -> None:
    from service_mails import reply_mail

    from reviewbot.pipeline import ReviewOptions, review_series
    from reviewbot.results import SeriesReview
    from reviewbot.scan.run import run_scan
    from reviewbot.service.assemble import load_series

    mails = series_mails("same3", 3)
    mails.append(reply_mail("same3", "same3-v1-2@example.org", "same3-v1-0@example.org"))
    mbox = tmp_path / "series.mbox"
    mbox.write_bytes(b"".join(b"From x@y Thu Jan  1 00:00:00 1970\n" + m + b"\n" for m in mails))
    settings = Settings(mail=MailSettings(compute_patch_id=True))

    (cli,) = read_series([mbox], settings).series

    scanned: list[Any] = []

    def reviewer(series: Any) -> SeriesReview:
        scanned.append(series)
        return review_series(series, settings, ReviewOptions(use_tree=False))

    run_scan(mbox, settings, state_dir=tmp_path / "scan", reviewer=reviewer)
    (scan,) = scanned

    svc = service_factory()
    svc.start_server()
    for raw in mails:
        assert svc.post(raw).status_code == 202
    store = svc.store()
    thread = store.mails_in_threads(["same3-v1-0@example.org"])
    (service,) = load_series(thread, settings)

    for other in (scan, service):
        assert other.content_key == cli.content_key
        assert other.series_id == cli.series_id and other.missing == cli.missing == ()
        assert [p.message_id for p in other.patches] == [p.message_id for p in cli.patches]
        assert [[t.line for t in p.trailers] for p in other.patches] == \
            [[t.line for t in p.trailers] for p in cli.patches]
