"""A partial series completed from the archive (a real public-inbox-httpd on loopback),
as `reviewbot review` does before reviewing; offline and failures review the part."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scanfixtures import Httpd, Inbox, free_port, series_v1

from reviewbot.config import FetchSettings, Settings
from reviewbot.errors import InfraError
from reviewbot.mail.complete import Archive, complete
from reviewbot.mail.series import read_messages, read_series

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def archive(inbox: Inbox) -> Iterator[Httpd]:
    inbox.deliver(*series_v1())  # the archive has the whole series: cover, 1/2, 2/2
    httpd = Httpd(inbox)
    try:
        yield httpd
    finally:
        httpd.stop()


@pytest.fixture
def only_patch_two(tmp_path: Path) -> Path:
    # What this list got: patch 2/2 alone (the others went to other lists).
    path = tmp_path / "list.mbox"
    path.write_bytes(b"From list Thu Jan  1 00:00:00 1970\n" + series_v1()[2])
    return path


def _review(path: Path, config: Path, *extra: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if k != "REVIEWBOT_OFFLINE"}
    run = subprocess.run(
        [sys.executable, "-m", "reviewbot", "--config", str(config), "review", str(path),
         "--no-tree", "--format", "json", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(run.stdout), run.stderr


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"fetch:\n  public_inbox_url: {url}\n  timeout_s: 5.0\n  retries: 0\n")
    return config


def test_a_partial_series_is_completed_from_the_archive(
        archive: Httpd, only_patch_two: Path, tmp_path: Path) -> None:
    _, doc, _ = _review(only_patch_two, _config(tmp_path, archive.url))
    (series,) = doc["series"]
    assert series["complete"] and series["from_archive"] == [1]
    assert [p["index"] for p in series["patches"]] == [1, 2]
    assert series["cover"] is not None
    assert any(w.startswith("patch(es) 1 and the cover letter fetched from the archive")
               for w in series["warnings"]), series["warnings"]


def test_offline_reviews_the_part_that_arrived(
        archive: Httpd, only_patch_two: Path, tmp_path: Path) -> None:
    _, doc, _ = _review(only_patch_two, _config(tmp_path, archive.url), "--offline")
    (series,) = doc["series"]
    assert not series["complete"] and series["from_archive"] == []
    assert [p["index"] for p in series["patches"]] == [2]


def test_an_unreachable_archive_is_a_warning_and_tried_once(
        only_patch_two: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/all"  # nothing listens there
    _, doc, _ = _review(only_patch_two, _config(tmp_path, url))
    (series,) = doc["series"]
    assert not series["complete"]
    assert any(w.startswith("partial: the archive could not complete it (cannot fetch")
               for w in series["warnings"]), series["warnings"]
    # In process: after the first network failure no further thread is fetched.
    calls: list[str] = []

    def down(message_id: str, settings: Settings) -> bytes:
        calls.append(message_id)
        raise InfraError("cannot fetch", output="connection refused")

    store = Archive(Settings(), down)
    assert store.thread("a@x") .startswith("cannot fetch")
    assert store.thread("b@x").startswith("not tried: the archive was unreachable")
    assert calls == ["a@x"]


def test_a_thread_the_archive_does_not_know_leaves_the_series_partial(
        archive: Httpd, tmp_path: Path) -> None:
    settings = Settings(fetch=FetchSettings(public_inbox_url=archive.url, retries=0))
    lone = tmp_path / "lone.mbox"
    # 2/3 of a series the archive never saw
    raw = series_v1()[2].replace(b"v1-p2@example.org", b"other-p2@example.org").replace(
        b"v1-cover@example.org", b"other-cover@example.org").replace(b"2/2", b"2/3")
    lone.write_bytes(b"From list Thu Jan  1 00:00:00 1970\n" + raw)
    found = read_series([lone], settings)
    done = complete(found, lambda: read_messages([lone], settings.mail), settings, Archive(settings))
    (series,) = done.series
    assert series.from_archive == () and series.missing
    assert any("partial: the archive could not complete it" in w and "not found" in w
               for w in series.warnings), series.warnings
