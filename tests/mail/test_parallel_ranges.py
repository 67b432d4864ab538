"""Plain mbox files are parsed in byte ranges by several processes; the result must be
exactly what one process reading the file in order produces: same messages, same
positions (errors name them), same quoting, whatever the cut points."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from reviewbot.config import MailSettings
from reviewbot.mail import ingest, parallel
from reviewbot.mail.read import iter_path, mbox_ranges
from reviewbot.mail.series import read_messages

SEQUENTIAL = MailSettings(parse_jobs=1)
PARALLEL = MailSettings(parse_jobs=2, parallel_min_bytes=0)


def _mail(n: int, eol: str = "\n") -> str:
    body = (
        f"From: Ann <ann@example.org>\nSubject: [PATCH {n}/9] part {n}\n"
        f"Message-ID: <m{n}@example.org>\nDate: Mon, 1 Jun 2020 10:00:0{n % 10} +0000\n\n"
        f"Change {n}.\n>From the quoted line of message {n}\n\n"
        f"Signed-off-by: Ann <ann@example.org>\n---\n"
        f"diff --git a/f{n}.c b/f{n}.c\n--- a/f{n}.c\n+++ b/f{n}.c\n@@ -1 +1 @@\n-a\n+b{n}\n"
    )
    return body.replace("\n", eol)


def _mbox(tmp_path: Path, name: str, first_line: str, mails: list[str], sep: str = "\n") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{first_line}{sep}{m}{sep}" for m in mails), encoding="utf-8")
    return path


@pytest.fixture
def tiny_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "RANGE_BYTES", 1)  # a cut after every message


@pytest.mark.parametrize(
    ("first_line", "sep"),
    [("From mboxrd@z Thu Jan  1 00:00:00 1970", "\n"), ("From abc Mon Sep 17 00:00:00 2001", "\n"),
     ("From abc Mon Sep 17 00:00:00 2001", "\r\n")],
)
def test_ranges_give_what_one_process_reads(
    tmp_path: Path, tiny_ranges: None, first_line: str, sep: str
) -> None:
    mails = [_mail(n, sep) for n in range(7)]
    mails.insert(3, "no headers at all" + sep)  # an error in a later range keeps its position
    mails.insert(5, sep)  # an empty message: skipped, not counted
    path = _mbox(tmp_path, "list.mbox", first_line, mails, sep)
    ranges = mbox_ranges(path, 100)
    assert ranges is not None and len(ranges) >= 7
    one = list(read_messages([path], SEQUENTIAL))
    many = list(read_messages([path], PARALLEL))
    assert many == one
    assert [m.position for m in many] == list(range(8))
    assert any(not hasattr(m, "subject") and m.position == 3 for m in many)


def test_the_same_file_twice_counts_positions_from_zero_each_time(
    tmp_path: Path, tiny_ranges: None
) -> None:
    path = _mbox(tmp_path, "l.mbox", "From x Mon Sep 17 00:00:00 2001", [_mail(n) for n in range(3)])
    many = list(read_messages([path, path], PARALLEL))
    assert many == list(read_messages([path, path], SEQUENTIAL))
    assert [m.position for m in many] == [0, 1, 2, 0, 1, 2]


def test_ranges_cover_the_file_and_start_at_separators(tmp_path: Path) -> None:
    path = _mbox(tmp_path, "l.mbox", "From x Mon Sep 17 00:00:00 2001", [_mail(n) for n in range(5)])
    ranges = mbox_ranges(path, 4)
    assert ranges is not None
    data = path.read_bytes()
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (_, end), (begin, _) in zip(ranges, ranges[1:], strict=False):
        assert data[end:begin] == b"\n\n" and data[begin:].startswith(b"From x ")
    assert sum(1 for _ in iter_path(path)) == 5


def test_gzip_and_single_mails_are_not_cut(tmp_path: Path) -> None:
    gz = tmp_path / "l.mbox.gz"
    gz.write_bytes(gzip.compress(("From x Mon Sep 17 00:00:00 2001\n" + _mail(1)).encode()))
    eml = tmp_path / "one.eml"
    eml.write_text(_mail(2))
    assert mbox_ranges(gz, 4) is None
    assert mbox_ranges(eml, 4) is None
    assert parallel.parse_mbox_files([gz, eml], PARALLEL, 2) is None


def test_whole_year_in_ranges_equals_sequential(shared_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "cgroups-2020.mbox"
    plain.write_bytes(gzip.decompress((shared_dir / "corpus" / "cgroups-2020.mbox.gz").read_bytes()))
    one = list(read_messages([plain], SEQUENTIAL))
    many = list(read_messages([plain], PARALLEL))
    assert len(one) == 3185
    assert many == one


def test_quoting_follows_the_files_first_line_in_every_range(tmp_path: Path, tiny_ranges: None) -> None:
    # An mboxo file in which a later separator happens to read "From mboxrd@z": a range
    # starting there must still unquote as mboxo (">>From " stays), as a sequential read does.
    mails = [_mail(n).replace(">From the", ">>From the") for n in range(4)]
    text = "".join(
        ("From mboxrd@z Thu Jan  1 00:00:00 1970\n" if n == 2 else "From x Mon Sep 17 00:00:00 2001\n") + m + "\n"
        for n, m in enumerate(mails)
    )
    path = tmp_path / "mixed.mbox"
    path.write_text(text)
    one = list(read_messages([path], SEQUENTIAL))
    many = list(read_messages([path], PARALLEL))
    assert many == one
    assert all(">>From the quoted" in m.commit_message for m in many)  # type: ignore[union-attr]


def test_prepare_copies_like_dataclasses_replace() -> None:
    import dataclasses

    from reviewbot.mail.parse import parse_message

    patch = parse_message(_mail(1).encode())
    reply = parse_message(_mail(2).replace("[PATCH 2/9]", "Re: [PATCH 2/9]").encode())
    settings = MailSettings()
    assert ingest.prepare(patch, settings) == dataclasses.replace(
        patch, body="", patch_id=ingest.patch_id(patch.diff or "")
    )
    assert ingest.prepare(reply, settings) == dataclasses.replace(
        reply, body="", commit_message="", diff=None, to_header="", cc_header=""
    )
    assert reply.body  # the original is untouched
