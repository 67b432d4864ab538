"""The series list of the page and of GET /v1/series: filters, paging, findings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_mails import series_mails
from test_worker import FakeQueue

from reviewbot.config import settings_from_mapping
from reviewbot.errors import BadInputError
from reviewbot.mail.parse import parse_message
from reviewbot.report.html import render_index
from reviewbot.service.assemble import mail_meta
from reviewbot.service.listing import (
    SeriesQuery,
    archive_patches,
    backport_note,
    list_series,
    missing_note,
)
from reviewbot.service.store import Store
from reviewbot.service.worker import ServiceWorker


@pytest.fixture
def reviewed(tmp_path: Path) -> Iterator[Store]:
    settings = settings_from_mapping(
        {"service": {"use_tree": False}, "mail": {"compute_patch_id": False}})
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    queue = FakeQueue()
    worker = ServiceWorker(store, settings, queue, name="t")
    for i, buggy in enumerate((False, True, False)):
        for raw in series_mails(f"ls-{i}", 2, buggy=buggy):
            meta = mail_meta(parse_message(raw))
            mail_id = store.add_mail(raw, meta, hashlib.sha256(raw).hexdigest()).mail_id
            worker.intake(mail_id)
    for run_id in queue.reviews:
        assert worker.review(run_id) == "finished"
    yield store
    store.close()


def test_rows_carry_their_runs_findings_by_severity(reviewed: Store) -> None:
    page = list_series(reviewed, SeriesQuery())
    assert len(page["series"]) == 3 and page["next_offset"] is None
    counts = {row["series_id"].split("-")[1]: row["findings"] for row in page["series"]}
    assert sum(counts["1"].values()) >= 1  # the buggy one
    assert all(row["run_url"] == f"/v1/runs/{row['run_id']}" for row in page["series"])
    assert all(row["missing_ranges"] == "" for row in page["series"])


def test_filters_and_paging(reviewed: Store) -> None:
    with_findings = list_series(reviewed, SeriesQuery(with_findings=True))["series"]
    assert [r["series_id"].split("-")[1] for r in with_findings] == ["1"]
    assert list_series(reviewed, SeriesQuery(state="waiting"))["series"] == []
    assert len(list_series(reviewed, SeriesQuery(state="reviewed"))["series"]) == 3
    first = list_series(reviewed, SeriesQuery(limit=2))
    assert len(first["series"]) == 2 and first["next_offset"] == 2
    rest = list_series(reviewed, SeriesQuery(limit=2, offset=2))
    assert len(rest["series"]) == 1 and rest["next_offset"] is None
    ids = {r["id"] for r in first["series"]} | {r["id"] for r in rest["series"]}
    assert len(ids) == 3  # newest first, no row twice
    with pytest.raises(BadInputError, match="unknown series state 'done'"):
        SeriesQuery(state="done")


def test_page_shows_findings_filters_and_paging_links(reviewed: Store) -> None:
    page = list_series(reviewed, SeriesQuery(limit=2))
    html = render_index(page["series"], [], page=page)
    assert '<a href="/?findings=1">with findings</a>' in html
    assert '<a href="/?state=failed">failed</a>' in html and "<b>all</b>" in html
    assert '<a href="/?offset=2">older →</a>' in html and "newer" not in html
    assert "<th>Findings</th>" in html
    later = list_series(reviewed, SeriesQuery(limit=2, offset=2))
    html = render_index(later["series"], [], page=later)
    assert '<a href="/">← newer</a>' in html and "older" not in html


def test_two_hundred_series_read_one_row_each(tmp_path: Path) -> None:
    from reviewbot.service.store import SeriesRecord

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    for i in range(200):
        store.upsert_series(SeriesRecord(
            series_id=f"s{i}@x", thread_key=f"t{i}", version=1, subject=f"mm: change {i}",
            subject_key=f"mm: change {i}", author="A <a@x>", change_id=None, expected=68,
            present=1, missing=tuple(n for n in range(1, 69) if n != 40), message_ids=(f"s{i}@x",),
            content_hash=str(i), first_seen=1.0), now=2.0)
    page = list_series(store, SeriesQuery(limit=200))
    html = render_index(page["series"], [], page=page)
    rows = [line for line in html.splitlines() if line.startswith("<tr><td>")]
    assert len(rows) == 200
    # "1/68 (1-39, 41-68 not on this list)" - a short cell, never the 67 numbers
    assert all("(1-39, 41-68 not on this list)" in row and len(row) < 700 for row in rows)
    store.close()




def test_missing_patches_read_as_ranges_with_what_the_archive_added() -> None:
    missing = [*range(2, 40), *range(41, 69)]
    assert missing_note(missing, []) == "2-39, 41-68 not on this list"
    assert missing_note(missing, missing[1:]) == \
        "2-39, 41-68 not on this list; 65 of them fetched from the archive"
    assert missing_note([3], [3]) == "3 not on this list; all of them fetched from the archive"
    assert missing_note([], [1]) == ""
    assert archive_patches({"series": [{"from_archive": [3, 1]}, "junk"]}) == [1, 3]
    assert archive_patches(None) == []


def test_a_stable_backport_says_so_on_its_row() -> None:
    result = {"series": [{"backport": {"target": "6.1", "autosel": True,
                                       "upstream": ["1234abcd5678ffff", "aaaabbbbcccc"]}}]}
    assert backport_note(result) == "stable 6.1 (AUTOSEL) of 1234abcd5678, aaaabbbbcccc"
    assert backport_note({"series": [{"backport": None}]}) == ""
    assert backport_note({"series": [{"backport": {"target": 61}}]}) == ""  # not a string
    row = {"id": 1, "version": 1, "subject": "cgroup: fix", "series_id": "s@x",
           "author": "A <a@x>", "present": 1, "expected": 1, "missing": [],
           "state": "reviewed", "run_id": None, "updated_at": 1.0,
           "backport": "stable 6.1 (AUTOSEL) of <b>1234</b>"}
    html = render_index([row], [])
    assert "backport: stable 6.1 (AUTOSEL) of &lt;b&gt;1234&lt;/b&gt;" in html
