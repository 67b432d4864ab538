"""Incremental corpus scans over a real public-inbox inbox and over mail folders."""

from __future__ import annotations

import multiprocessing
import subprocess
from pathlib import Path

import pytest
from scanfixtures import Inbox, cover_mail, patch_mail, reply_mail, series_v1, token_reviewer

from reviewbot.config import Settings
from reviewbot.errors import BadInputError, InfraError
from reviewbot.scan.run import CHECK_EVERY, ScanOptions, configured_sources, run_scan
from reviewbot.scan.state import ScanState, state_file
from reviewbot.scan.threads import Threads

CSS = {"css_get(": "fake-css-get"}


def _scan(source: Path, state: Path, tokens: dict[str, str] = CSS, **kw: object) -> object:
    return run_scan(source, Settings(), state_dir=state, reviewer=token_reviewer(tokens), **kw)  # type: ignore[arg-type]


def test_first_scan_reviews_all_and_second_scan_finds_nothing_new(
        inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(*series_v1())
    first = run_scan(inbox.root, Settings(), state_dir=tmp_path, reviewer=token_reviewer(CSS))
    assert first.messages == 3
    assert first.series_reviewed == 1
    assert [f["rule"] for f in first.new] == ["fake-css-get"]
    assert first.new[0]["message_id"] == "v1-p2@example.org"
    assert first.exit_code == 1
    assert first.positions_after == {"epoch:0": inbox.head()}

    second = run_scan(inbox.root, Settings(), state_dir=tmp_path, reviewer=token_reviewer(CSS))
    assert second.messages == 0
    assert second.series_reviewed == 0
    assert second.new == [] and second.disappeared == []
    assert second.previous_scan_id == first.scan_id
    assert second.by_rule == {"fake-css-get": {"total": 1, "new": 0, "disappeared": 0}}
    assert second.exit_code == 0


def test_only_mail_that_arrived_since_is_read_and_reported(inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(*series_v1())
    run_scan(inbox.root, Settings(), state_dir=tmp_path, reviewer=token_reviewer(CSS))
    inbox.deliver(patch_mail("lone@example.org", "[PATCH] mm: memcg: pin again",
                             added=["\tcss_get(&parent->css);"], function="lone_fn",
                             minutes=60 * 24 * 3))
    seen: list[str] = []
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path,
                      reviewer=token_reviewer(CSS, seen))
    assert report.messages == 1
    assert seen == ["lone@example.org"]
    assert [f["message_id"] for f in report.new] == ["lone@example.org"]


def test_a_series_split_across_two_scans_is_completed_by_the_second(
        inbox: Inbox, tmp_path: Path) -> None:
    cover, p1, p2 = series_v1()
    inbox.deliver(cover, p1)
    seen: list[str] = []
    first = run_scan(inbox.root, Settings(), state_dir=tmp_path,
                     reviewer=token_reviewer(CSS, seen))
    assert first.series_open == 1
    assert first.series_reviewed == 1 and first.new == []  # reviewed as it stood: 1 of 2

    inbox.deliver(p2)
    second = run_scan(inbox.root, Settings(), state_dir=tmp_path,
                      reviewer=token_reviewer(CSS, seen))
    assert second.messages == 1  # only p2 is read from git; cover and p1 come from state
    assert seen == ["v1-cover@example.org", "v1-cover@example.org"]
    assert [f["patch_index"] for f in second.new] == [2]


def test_full_rescan_after_a_rule_change_reports_what_disappeared(
        inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(*series_v1())
    run_scan(inbox.root, Settings(), state_dir=tmp_path, reviewer=token_reviewer(CSS))
    new_rules = {"demo_counter": "fake-counter"}
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path, full=True,
                      reviewer=token_reviewer(new_rules))
    assert report.messages == 3
    assert [f["rule"] for f in report.new] == ["fake-counter"]
    assert [f["rule"] for f in report.disappeared] == ["fake-css-get"]
    assert report.by_rule["fake-css-get"] == {"total": 0, "new": 0, "disappeared": 1}
    assert report.by_rule["fake-counter"] == {"total": 1, "new": 1, "disappeared": 0}


def test_a_finding_fixed_in_a_later_posting_of_the_same_series_disappears(
        inbox: Inbox, tmp_path: Path) -> None:
    # Patch 1 arrives with the problem, the thread stays open; the author then sends the
    # missing patch 2 and the assembled series no longer has patch 1's line... simulated by
    # a reviewer whose tokens change between the two scans of the same (grown) series.
    cover, p1, p2 = series_v1()
    inbox.deliver(cover, p1)
    run_scan(inbox.root, Settings(), state_dir=tmp_path,
             reviewer=token_reviewer({"demo_counter": "fake-counter"}))
    inbox.deliver(p2)
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path, reviewer=token_reviewer(CSS))
    assert [f["rule"] for f in report.new] == ["fake-css-get"]
    assert [f["rule"] for f in report.disappeared] == ["fake-counter"]


def test_since_starts_after_the_given_commit(inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(*series_v1())
    mark = inbox.head()
    inbox.deliver(patch_mail("after@example.org", "[PATCH] mm: memcg: after",
                             added=["\tcss_get(&x->css);"], minutes=60 * 24 * 2))
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path, since=mark,
                      reviewer=token_reviewer(CSS))
    assert report.messages == 1
    with pytest.raises(BadInputError, match="not a commit"):
        run_scan(inbox.root, Settings(), state_dir=tmp_path, since="f" * 40,
                 reviewer=token_reviewer(CSS))


def test_rewritten_history_is_rescanned_without_reviewing_twice(
        inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(*series_v1())
    run_scan(inbox.root, Settings(), state_dir=tmp_path, reviewer=token_reviewer(CSS))
    # Its own identity: a fresh machine has none configured (a cold CI run found this).
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org",
           f"--git-dir={inbox.epoch}"]
    # public-inbox-purge rewrites every commit: amend the last one to the same effect.
    tree = subprocess.run([*git, "rev-parse", "HEAD^{tree}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    parent = subprocess.run([*git, "rev-parse", "HEAD~1"], capture_output=True, text=True,
                            check=True).stdout.strip()
    rewritten = subprocess.run([*git, "commit-tree", tree, "-p", parent, "-m", "purged"],
                               capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([*git, "update-ref", "HEAD", rewritten], check=True)
    seen: list[str] = []
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path,
                      reviewer=token_reviewer(CSS, seen))
    assert any("history was rewritten" in w for w in report.warnings)
    assert report.messages == 3
    assert seen == [] and report.series_known == 1


def test_a_grown_mbox_is_read_from_its_last_message(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    mbox = folder / "list.mbox"
    mbox.write_bytes(b"".join(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + m + b"\n"
                              for m in series_v1()))
    (folder / "single.patch").write_bytes(
        patch_mail("file@example.org", "[PATCH] mm: memcg: file", added=["\tcss_get(&y);"],
                   minutes=600))
    state = tmp_path / "state"
    first = run_scan(folder, Settings(), state_dir=state, reviewer=token_reviewer(CSS))
    assert first.messages == 4 and len(first.new) == 2
    with mbox.open("ab") as fh:
        fh.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + reply_mail(
            "r1@example.org", "v1-p2@example.org", ["v1-cover@example.org", "v1-p2@example.org"],
            "Re: [PATCH 2/2] mm: memcg: pin the css", "Reviewed-by: Rick <rick@example.org>\n",
            minutes=30))
    second = run_scan(folder, Settings(), state_dir=state, reviewer=token_reviewer(CSS))
    assert second.messages == 1
    assert second.new == []


def test_since_needs_a_public_inbox(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(cover_mail("c@example.org", "[PATCH 0/1] x"))
    with pytest.raises(BadInputError, match="--since"):
        run_scan(tmp_path, Settings(), state_dir=tmp_path / "s", since="HEAD")


def test_missing_source_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        run_scan(tmp_path / "nope", Settings(), state_dir=tmp_path / "s")


def test_open_threads_are_bounded_by_the_window_and_the_cap(tmp_path: Path) -> None:
    from reviewbot.mail.parse import parse_message

    threads = Threads(window_s=3600, max_buffered=10)
    peak = 0
    for i in range(200):
        raw = patch_mail(f"t{i}@example.org", f"[PATCH] mm: memcg: t{i}", added=["\tx();"],
                         minutes=i * 30)
        threads.add(parse_message(raw), "test", raw)
        threads.close_due()
        peak = max(peak, threads.buffered)
    # One thread every 30 minutes with a one-hour window: at most a few are ever open.
    assert peak <= 3
    undated = Threads(window_s=3600, max_buffered=10)
    for i in range(200):
        raw = patch_mail(f"u{i}@example.org", f"[PATCH] u{i}", added=["\tx();"])
        raw = b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"Date:"))
        undated.add(parse_message(raw), "test", raw)
        undated.close_due()
        assert undated.buffered <= 10  # no dates, no clock: the cap alone bounds memory


def test_scan_buffer_does_not_grow_with_the_archive(tmp_path: Path) -> None:
    peaks = []
    for n in (200, 1000):
        folder = tmp_path / f"m{n}"
        folder.mkdir()
        with (folder / "list.mbox").open("wb") as fh:
            for i in range(n):
                fh.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n")
                fh.write(patch_mail(f"n{n}-{i}@example.org", f"[PATCH] mm: memcg: p{i}",
                                    added=["\tcss_get(&m->css);"], minutes=i * 60 * 12))
                fh.write(b"\n")
        report = run_scan(folder, Settings(), state_dir=tmp_path / f"s{n}",
                          reviewer=token_reviewer(CSS))
        assert report.series_reviewed == n
        peaks.append(report.buffer_peak)
    # Threads are closed every CHECK_EVERY messages: the peak is that plus the few threads
    # inside the window, whatever the size of the archive.
    assert peaks[1] <= peaks[0] + 2, peaks
    assert peaks[1] <= CHECK_EVERY + 4, peaks


def test_two_scans_of_one_source_cannot_run_at_once(tmp_path: Path) -> None:
    path = state_file(tmp_path, tmp_path / "src")
    with ScanState(path), pytest.raises(InfraError, match="another scan"):
        ScanState(path)


def test_default_review_is_rules_only(inbox: Inbox, tmp_path: Path) -> None:
    inbox.deliver(*series_v1())
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path, options=ScanOptions())
    assert report.series_reviewed == 1
    assert report.stage_errors == 0, report.warnings


def test_configured_sources_resolve_relative_paths(tmp_path: Path) -> None:
    conf = tmp_path / "sources.yaml"
    conf.write_text("sources:\n  - name: local\n    path: inboxes/cgroups\n"
                    "  - name: spare\n    path: /srv/x\n    enabled: false\n")
    entries = configured_sources(conf)
    assert entries[0]["path"] == str(tmp_path / "inboxes/cgroups")
    assert [e["enabled"] for e in entries] == [True, False]
    conf.write_text("sources:\n  - name: broken\n")
    with pytest.raises(BadInputError, match="needs 'name' and 'path'"):
        configured_sources(conf)


def test_shipped_sources_file_is_valid() -> None:
    entries = configured_sources()
    assert entries and all(e["name"] and e["path"] for e in entries)


def test_epochs_are_read_in_order_and_each_position_is_kept(
        inbox: Inbox, tmp_path: Path) -> None:
    from scanfixtures import add_epoch, append_to_epoch

    inbox.deliver(*series_v1())
    add_epoch(inbox.root, 1, [patch_mail("e1@example.org", "[PATCH] mm: memcg: epoch one",
                                         added=["\tcss_get(&e->css);"], minutes=60 * 48)])
    seen: list[str] = []
    first = run_scan(inbox.root, Settings(), state_dir=tmp_path,
                     reviewer=token_reviewer(CSS, seen))
    assert first.messages == 4
    assert seen == ["v1-cover@example.org", "e1@example.org"]
    assert set(first.positions_after) == {"epoch:0", "epoch:1"}
    # New mail lands in the newest epoch only; the old one is not read again.
    append_to_epoch(inbox.root / "git" / "1.git", [patch_mail(
        "e2@example.org", "[PATCH] mm: memcg: two", added=["\ty();"], minutes=60 * 96)])
    second = run_scan(inbox.root, Settings(), state_dir=tmp_path,
                      reviewer=token_reviewer(CSS, seen))
    assert second.messages == 1
    assert seen[-1] == "e2@example.org"
    assert second.positions_after["epoch:0"] == first.positions_after["epoch:0"]


def test_a_broken_rule_stops_the_scan_and_keeps_the_position(
        inbox: Inbox, tmp_path: Path) -> None:
    from reviewbot.pipeline import ReviewOptions

    inbox.deliver(*series_v1())
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yaml").write_text("id: [not, a, rule\n")
    broken = ScanOptions(review=ReviewOptions(use_tree=False, rules_dir=rules), jobs=1)
    # The error comes back from the review worker process with its message.
    with pytest.raises(BadInputError, match="broken.yaml"):
        run_scan(inbox.root, Settings(), state_dir=tmp_path / "s", options=broken)
    (rules / "broken.yaml").unlink()
    fixed = ScanOptions(review=ReviewOptions(use_tree=False, rules_dir=rules), jobs=1)
    report = run_scan(inbox.root, Settings(), state_dir=tmp_path / "s", options=fixed)
    assert report.messages == 3 and report.series_reviewed == 1


def _scan_in_daemon(source: str, state: str, out: multiprocessing.Queue[int]) -> None:
    report = run_scan(source, Settings(), state_dir=Path(state))
    out.put(report.series_reviewed)


def test_a_daemonic_worker_reviews_in_process(inbox: Inbox, tmp_path: Path) -> None:
    # Huey's process workers are daemonic and may not start a pool of their own.
    inbox.deliver(*series_v1())
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = ctx.Queue()
    proc = ctx.Process(target=_scan_in_daemon, args=(str(inbox.root), str(tmp_path), out),
                       daemon=True)
    proc.start()
    proc.join(300)
    assert proc.exitcode == 0
    assert out.get(timeout=5) == 1


def test_a_date_in_the_future_does_not_move_the_clock() -> None:
    from reviewbot.mail.parse import parse_message

    threads = Threads(window_s=3600, max_buffered=100)
    spam = patch_mail("spam@example.org", "[PATCH] spam", added=["\tx();"])
    spam = spam.replace(b"Date: Mon, 01 Jun 2020", b"Date: Thu, 01 Jan 2037")
    threads.add(parse_message(spam), "test", spam)
    cover, p1, p2 = series_v1()
    for raw in (cover, p1):
        threads.add(parse_message(raw), "test", raw)
    # The 2037 mail must not make the 2020 series look a decade old (and close it early).
    assert [len(t.messages) for t in threads.close_due()] == []
    threads.add(parse_message(p2), "test", p2)
    assert sorted(len(t.messages) for t in threads.close_all()) == [1, 3]
