"""A real partial series of the 2020 year completed from a loopback archive, by the CLI, the
service's worker and the scan; offline, each reviews the part that arrived.

The series (Johannes Weiner, "mm: memcontrol: recursive memory.low protection", 0/3-3/3,
2020-02-27) is taken from ../shared; the archive is a real public-inbox-httpd holding the
whole thread, and the "list" got patch 2/3 alone, as a list Cc'd on one patch does.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scanfixtures import Httpd, Inbox

from reviewbot.config import Settings, settings_from_mapping
from reviewbot.mail.complete import Archive
from reviewbot.mail.parse import parse_message
from reviewbot.mail.read import RawMessage, iter_path
from reviewbot.scan.run import ScanOptions, run_scan
from reviewbot.service.assemble import mail_meta
from reviewbot.service.listing import SeriesQuery, list_series
from reviewbot.service.store import Store
from reviewbot.service.worker import ServiceWorker, StoredThreads

REPO = Path(__file__).resolve().parents[2]
ROOT = b"20200227195606.46212-1-hannes@cmpxchg.org"
TITLE = "mm: memcontrol: recursive memory.low protection"


@pytest.fixture(scope="module")
def thread() -> list[bytes]:
    """The four mails of the series in the 2020 year (cover, 1/3, 2/3, 3/3)."""
    corpus = REPO.parent / "shared" / "corpus" / "cgroups-2020.mbox.gz"
    if not corpus.is_file():
        pytest.skip(f"{corpus} is absent: the real-mail corpus is only on development machines")
    mails = [r.data for r in iter_path(corpus)
             if isinstance(r, RawMessage) and ROOT in r.data.split(b"\n\n", 1)[0]]
    assert len(mails) == 4, "the 2020 year no longer holds the whole series"
    return mails


@pytest.fixture
def archive(inbox: Inbox, thread: list[bytes]) -> Iterator[Httpd]:
    inbox.deliver(*thread)
    httpd = Httpd(inbox)
    try:
        yield httpd
    finally:
        httpd.stop()


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVIEWBOT_OFFLINE", raising=False)


def _patch_two(thread: list[bytes]) -> bytes:
    (raw,) = [m for m in thread if b"[PATCH 2/3]" in m.split(b"\n\n", 1)[0]]
    return raw


def _settings(url: str, **fetch: Any) -> Settings:
    return settings_from_mapping({
        "fetch": {"public_inbox_url": url, "timeout_s": 5.0, "retries": 0, **fetch},
        "service": {"use_tree": False, "series_wait_s": 600, "cover_wait_s": 2},
        "mail": {"compute_patch_id": False},
    })


def _whole(series: dict[str, Any]) -> None:
    assert [p["index"] for p in series["patches"]] == [1, 2, 3], series["patches"]
    assert series["from_archive"] == [1, 3]
    assert series["missing"] == []
    assert TITLE in series["subject"]


def test_the_cli_reviews_the_real_series_whole(
        archive: Httpd, thread: list[bytes], tmp_path: Path) -> None:
    listed = tmp_path / "list.mbox"
    listed.write_bytes(b"From list Thu Jan  1 00:00:00 1970\n" + _patch_two(thread))
    config = tmp_path / "config.yaml"
    config.write_text(f"fetch:\n  public_inbox_url: {archive.url}\n  retries: 0\n")
    env = {k: v for k, v in os.environ.items() if k != "REVIEWBOT_OFFLINE"}
    for extra, whole in (((), True), (("--offline",), False)):
        run = subprocess.run(
            [sys.executable, "-m", "reviewbot", "--config", str(config), "review",
             str(listed), "--no-tree", "--format", "json", *extra],
            cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode in (0, 1), run.stderr
        (series,) = json.loads(run.stdout)["series"]
        if whole:
            _whole(series)
        else:  # offline: the part that arrived, still reviewed
            assert [p["index"] for p in series["patches"]] == [2]
            assert series["missing"] == [1, 3] and series["from_archive"] == []


class _Queue:
    def __init__(self) -> None:
        self.reviews: list[int] = []

    def enqueue_review(self, run_id: int, delay: float | None = None) -> None:
        self.reviews.append(run_id)

    def enqueue_intake(self, mail_id: int) -> None:
        pass

    def pending(self) -> int:
        return 0


def _service_review(settings: Settings, tmp_path: Path, raw: bytes
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Patch 2/3 arrives at the service; nothing else comes within series_wait_s."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    try:
        clock = [time.time()]
        queue = _Queue()
        worker = ServiceWorker(store, settings, queue, name="t",  # type: ignore[arg-type]
                               clock=lambda: clock[0])
        meta = mail_meta(parse_message(raw))
        worker.intake(store.add_mail(raw, meta, hashlib.sha256(raw).hexdigest()).mail_id)
        assert queue.reviews == []  # waiting for 1/3 and 3/3
        clock[0] += settings.service.series_wait_s + 1
        worker.sweep()
        (run_id,) = queue.reviews
        assert worker.review(run_id) == "finished"
        run = store.get_run(run_id)
        assert run is not None
        (series,) = run["result"]["series"]
        (row,) = list_series(store, SeriesQuery())["series"]  # what the page and API show
        return dict(series), row
    finally:
        store.close()


def test_the_service_completes_a_partial_run_before_reviewing_it(
        archive: Httpd, thread: list[bytes], tmp_path: Path, online: None) -> None:
    series, row = _service_review(_settings(archive.url), tmp_path, _patch_two(thread))
    _whole(series)
    assert any("fetched from the archive" in w for w in series["warnings"])
    assert row["missing_note"] == "1, 3 not on this list; all of them fetched from the archive"


def test_the_service_offline_reviews_the_part(
        archive: Httpd, thread: list[bytes], tmp_path: Path, online: None) -> None:
    series, row = _service_review(_settings(archive.url, complete=False), tmp_path,
                                  _patch_two(thread))
    assert [p["index"] for p in series["patches"]] == [2] and series["from_archive"] == []
    assert row["missing_note"] == "1, 3 not on this list"


def test_the_scan_completes_and_counts_partial_series(
        archive: Httpd, thread: list[bytes], tmp_path: Path, online: None) -> None:
    source = tmp_path / "list"
    source.mkdir()
    (source / "two.eml").write_bytes(_patch_two(thread))
    settings = _settings(archive.url)
    report = run_scan(source, settings, options=ScanOptions(jobs=1),
                      state_dir=tmp_path / "state")
    doc = report.to_json()["series"]
    assert doc["partial_on_arrival"] == 1 and doc["completed_from_archive"] == 1
    assert report.series_reviewed == 1


def test_stored_threads_are_fetched_once_per_series_wait(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    calls: list[str] = []

    def fetch(root: str, settings: Settings) -> bytes:
        calls.append(root)
        return b"From x\n\n"

    clock = [1000.0]
    settings = _settings("http://127.0.0.1:9/none")
    try:
        for _ in range(2):  # two workers, each with its own Archive, share the store
            cache = StoredThreads(store, 600, lambda: clock[0])
            assert Archive(settings, fetch, cache).thread("r@x") == b"From x\n\n"
        assert calls == ["r@x"]
        clock[0] += 601  # series_wait_s later the thread may have grown: fetched again
        Archive(settings, fetch, StoredThreads(store, 600, lambda: clock[0])).thread("r@x")
        assert calls == ["r@x", "r@x"]
        # A failure is remembered too: an unreachable archive is not asked by every worker.
        failing = StoredThreads(store, 600, lambda: clock[0])

        def down(root: str, settings: Settings) -> bytes:
            calls.append(root)
            from reviewbot.errors import InfraError
            raise InfraError("cannot fetch", output="Connection refused")

        Archive(settings, down, failing).thread("s@x")
        again = Archive(settings, down, failing).thread("s@x")
        assert calls.count("s@x") == 1 and isinstance(again, str) and "refused" in again
    finally:
        store.close()
