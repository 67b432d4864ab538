"""Fetching a thread by Message-ID from a real public-inbox-httpd on loopback."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scanfixtures import (
    Httpd,
    Inbox,
    free_port,
    patch_mail,
    reply_mail,
    series_v1,
    token_reviewer,
)

from reviewbot.config import FetchSettings, Settings
from reviewbot.errors import BadInputError, InfraError
from reviewbot.mail.fetch import fetch_thread, normalise_message_id, thread_url
from reviewbot.mail.ingest import read_bytes
from reviewbot.mail.series import assemble
from reviewbot.scan.run import run_scan


def _settings(url: str, retries: int = 2, timeout: float = 5.0) -> Settings:
    return Settings(fetch=FetchSettings(public_inbox_url=url, timeout_s=timeout,
                                        retries=retries))


@pytest.fixture
def served(inbox: Inbox) -> Iterator[tuple[Inbox, Httpd]]:
    cover, p1, p2 = series_v1()
    reply = reply_mail("rev@example.org", "v1-p1@example.org",
                       ["v1-cover@example.org", "v1-p1@example.org"],
                       "Re: [PATCH 1/2] mm: memcg: add a counter",
                       "Reviewed-by: Rick Reviewer <rick@example.org>\n", minutes=10)
    inbox.deliver(cover, p1, p2, reply)
    httpd = Httpd(inbox)
    try:
        yield inbox, httpd
    finally:
        httpd.stop()


def test_fetching_a_patch_returns_its_whole_thread(served: tuple[Inbox, Httpd]) -> None:
    _, httpd = served
    settings = _settings(httpd.url)
    mbox = fetch_thread("<v1-p2@example.org>", settings)
    msgs, errors = read_bytes(mbox, "t.mbox", settings.mail)
    assert not errors
    assert {m.message_id for m in msgs} == {"v1-cover@example.org", "v1-p1@example.org",
                                            "v1-p2@example.org", "rev@example.org"}
    (series,) = assemble(msgs, settings.mail).series
    assert series.complete and len(series.patches) == 2
    assert any(t.name == "Reviewed-by" for t in series.patches[0].trailers)


def test_unknown_message_id_is_bad_input(served: tuple[Inbox, Httpd]) -> None:
    _, httpd = served
    with pytest.raises(BadInputError, match="not found"):
        fetch_thread("nobody@example.org", _settings(httpd.url))


def test_no_server_is_an_infrastructure_error_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/test"
    with pytest.raises(InfraError, match="after 2 attempt"):
        fetch_thread("x@example.org", _settings(url, retries=1, timeout=1.0))


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first request and the thread to the next, like an overloaded lore."""

    calls = 0
    body = gzip.compress(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + series_v1()[1] + b"\n")

    def do_GET(self) -> None:
        type(self).calls += 1
        if type(self).calls == 1:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_server_errors_are_retried() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/all"
        mbox = fetch_thread("v1-p1@example.org", _settings(url, retries=2))
        assert b"v1-p1@example.org" in mbox
        assert _Flaky.calls == 2
    finally:
        server.shutdown()


@pytest.mark.parametrize("given", [
    "<a.b@example.org>", "a.b@example.org", "id:a.b@example.org",
    "https://lore.kernel.org/all/a.b@example.org/", "https://lore.kernel.org/r/a.b@example.org",
])
def test_message_id_spellings(given: str) -> None:
    assert normalise_message_id(given) == "a.b@example.org"


def test_slash_in_message_id_is_escaped() -> None:
    url = thread_url("a/b@example.org", _settings("https://lore.kernel.org/all/"))
    assert url == "https://lore.kernel.org/all/a%2Fb@example.org/t.mbox.gz"


def test_not_a_message_id() -> None:
    with pytest.raises(BadInputError):
        normalise_message_id("mm/memcontrol.c")


def test_scan_of_the_served_inbox_folder(served: tuple[Inbox, Httpd], tmp_path: Path) -> None:
    # The same inbox that httpd serves is a scan source: both read the same git epochs.


    inbox, _ = served
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path,
                      reviewer=token_reviewer({"css_get(": "fake"}))
    assert report.messages == 4 and report.series_reviewed == 1 and len(report.new) == 1


def test_review_by_message_id_fetches_from_the_configured_inbox(
        served: tuple[Inbox, Httpd], tmp_path: Path) -> None:
    _, httpd = served
    config = tmp_path / "config.yaml"
    config.write_text(f"fetch:\n  public_inbox_url: {httpd.url}\n  timeout_s: 10.0\n"
                      "  retries: 1\n")
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "reviewbot", "--config", str(config), "review",
         "<v1-p2@example.org>", "--no-tree", "--format", "json"],
        cwd=repo, capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr
    doc = json.loads(run.stdout)
    text = json.dumps(doc)
    # The whole thread came back: both patches of the series are in the review.
    assert "v1-p1@example.org" in text and "v1-p2@example.org" in text
    missing = subprocess.run(
        [sys.executable, "-m", "reviewbot", "--config", str(config), "review",
         "<nobody@example.org>", "--no-tree"], cwd=repo, capture_output=True, text=True,
        timeout=300)
    assert missing.returncode == 2, missing.stderr
    assert "not found" in missing.stderr


def test_scan_of_a_git_mirror_fetched_from_httpd(served: tuple[Inbox, Httpd],
                                                  tmp_path: Path) -> None:
    # The lore workflow: `git clone --mirror https://lore.kernel.org/cgroups/0 0.git` once,
    # `git fetch` every night, then scan the bare epoch incrementally.
    inbox, httpd = served
    mirror = tmp_path / "mirror" / "0.git"
    subprocess.run(["git", "clone", "--mirror", "-q", f"{httpd.url}/0", str(mirror)],
                   check=True, capture_output=True, timeout=120)
    first = run_scan(mirror, Settings(), state_dir=tmp_path / "s",
                     reviewer=token_reviewer({"css_get(": "fake"}))
    assert first.kind == "public-inbox" and first.messages == 4 and len(first.new) == 1

    inbox.deliver(patch_mail("night2@example.org", "[PATCH] mm: memcg: second night",
                             added=["\tcss_get(&n->css);"], function="night_fn",
                             minutes=60 * 24 * 2))
    subprocess.run(["git", f"--git-dir={mirror}", "fetch", "-q"], check=True,
                   capture_output=True, timeout=120)
    second = run_scan(mirror, Settings(), state_dir=tmp_path / "s",
                      reviewer=token_reviewer({"css_get(": "fake"}))
    assert second.messages == 1
    assert [f["message_id"] for f in second.new] == ["night2@example.org"]


def test_b4_series_check_fetches_the_thread_of_the_cover(
        served: tuple[Inbox, Httpd], tmp_path: Path) -> None:
    _, httpd = served
    config = tmp_path / "config.yaml"
    config.write_text(f"fetch:\n  public_inbox_url: {httpd.url}\n  retries: 0\n")
    cover = series_v1()[0]
    repo = Path(__file__).resolve().parents[2]
    base = [sys.executable, "-m", "reviewbot", "--config", str(config), "check-b4", "--series"]
    run = subprocess.run(base, input=cover, cwd=repo, capture_output=True, timeout=300)
    (result,) = json.loads(run.stdout)
    assert result["tool"] == "reviewbot"
    assert result["summary"].startswith("2/2 patches: "), result
    offline = subprocess.run([*base, "--no-fetch"], input=cover, cwd=repo,
                             capture_output=True, timeout=300)
    assert json.loads(offline.stdout)[0]["summary"] == "no patch in this message"


class _RateLimited(BaseHTTPRequestHandler):
    """Answers 429 with Retry-After, like lore under load, then the thread."""

    calls = 0
    retry_after = "1"
    body = _Flaky.body

    def do_GET(self) -> None:
        type(self).calls += 1
        if type(self).calls == 1:
            self.send_response(429)
            self.send_header("Retry-After", self.retry_after)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("asked, fetched", [("1", True), ("3600", False)])
def test_rate_limits_are_waited_out_or_reported(asked: str, fetched: bool) -> None:
    _RateLimited.calls, _RateLimited.retry_after = 0, asked
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RateLimited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/all"
        start = time.monotonic()
        if fetched:  # a short wait is honoured (not the exponential backoff's 0.5 s)
            assert b"v1-p1@example.org" in fetch_thread("v1-p1@example.org",
                                                         _settings(url, retries=2))
            assert time.monotonic() - start >= 1.0 and _RateLimited.calls == 2
        else:  # an hour is not waited for: the error says what the server asked
            with pytest.raises(InfraError, match="rate limited.*retry after 3600 s"):
                fetch_thread("v1-p1@example.org", _settings(url, retries=2))
            assert _RateLimited.calls == 1
    finally:
        server.shutdown()


def test_retry_after_dates_and_junk() -> None:
    from email.utils import format_datetime

    from reviewbot.mail.fetch import retry_after

    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 <= (retry_after(soon) or 0) <= 21
    assert retry_after("7") == 7.0 and retry_after(None) is None
    assert retry_after("soon") is None and retry_after("-5") is None
