"""Real list mail from ../shared (skipped when absent): every patch parses, nothing is lost."""

from __future__ import annotations

import csv
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.mail import read_series
from reviewbot.mail.parse import parse_message


def test_every_real_patch_parses_with_its_diff(shared_dir: Path) -> None:
    real = shared_dir / "corpus" / "real"
    with (real / "INDEX.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) >= 15
    for row in rows:
        raw = (real / row["file"]).read_bytes()
        msg = parse_message(raw, 0, row["file"])
        assert msg.diff is not None, row["file"]
        assert msg.diff.count("\n@@ ") + msg.diff.startswith("@@ ") >= 1, row["file"]


def test_stable_backport_counter(shared_dir: Path) -> None:
    path = shared_dir / "corpus" / "real" / "013-roman-memcg-switch-to-css_tryget-get_mem_cgroup_from_mm-3.16-backport.patch"
    found = read_series([path], Settings())
    (series,) = found.series
    assert series.expected == 136 and [p.index for p in series.patches] == [130]
    assert series.missing[:2] == (1, 2)


def test_whole_year_every_message_accounted_for(shared_dir: Path) -> None:
    found = read_series([shared_dir / "corpus" / "cgroups-2020.mbox.gz"], Settings())
    assert found.messages == 3185
    assert not found.errors, found.errors[:3]
    assert len(found.series) >= 290
    # the year has versioned series that supersede each other
    assert sum(1 for s in found.series if s.superseded_by) >= 50
    ids = [p.message_id for s in found.series for p in s.patches]
    assert len(ids) == len(set(ids)), "a patch landed in two series"


def test_whole_year_parallel_equals_sequential(shared_dir: Path) -> None:
    from reviewbot.config import MailSettings

    path = shared_dir / "corpus" / "cgroups-2020.mbox.gz"
    one = read_series([path], Settings(mail=MailSettings(parse_jobs=1)))
    two = read_series([path], Settings(mail=MailSettings(parse_jobs=2, parallel_min_bytes=0)))
    assert one.series == two.series
