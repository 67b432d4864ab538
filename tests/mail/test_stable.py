"""Stable backports: the subjects and changelog lines of Documentation/process/
stable-kernel-rules.rst and of the AUTOSEL bot, and the look-alikes that are not backports."""

from __future__ import annotations

import pytest

from reviewbot.config import Settings
from reviewbot.mail.parse import parse_message
from reviewbot.mail.series import assemble
from reviewbot.mail.stable import backport_of, describe, target_of, upstream_ids
from reviewbot.mail.subject import parse_subject
from reviewbot.model import Series

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"

DIFF = """---
 mm/memcontrol.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/mm/memcontrol.c b/mm/memcontrol.c
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1,2 +1,3 @@
 a
+b
 c
"""


def mail(subject: str, body: str, n: int = 1, reply_to: str | None = None) -> bytes:
    thread = f"In-Reply-To: <{reply_to}>\nReferences: <{reply_to}>\n" if reply_to else ""
    return (f"From: Sasha Levin <sashal@example.org>\nSubject: {subject}\n"
            f"Date: Mon, 1 Jun 2020 10:0{n}:00 +0000\nMessage-ID: <p{n}@example.org>\n"
            f"{thread}\n{body}\n\nSigned-off-by: Sasha Levin <sashal@example.org>\n"
            f"{DIFF}").encode()


def series_of(*mails: bytes) -> Series:
    (found,) = assemble([parse_message(m) for m in mails], Settings().mail).series
    return found


@pytest.mark.parametrize(("subject", "expected"), [
    ("[PATCH AUTOSEL 6.1 12/34] mm: memcg: x", ("6.1", True)),
    ("[PATCH AUTOSEL 5.10 3/9] cgroup: x", ("5.10", True)),
    ("[PATCH 6.1 12/34] mm: memcg: x", ("6.1", False)),
    ("[PATCH 6.12.y] mm: memcg: x", ("6.12", False)),
    ("[PATCH 5.15.y v2 1/3] mm: memcg: x", ("5.15", False)),
    ("[PATCH stable 6.1] mm: memcg: x", ("6.1", False)),
    ("[PATCH 6.1.55] mm: memcg: x", ("6.1", False)),  # one release of the series
    ("[PATCH 3.16 130/136] mm: memcg: x", ("3.16", False)),  # Ben Hutchings' 3.16 series
])
def test_subjects_that_name_a_stable_series(subject: str, expected: tuple[str, bool]) -> None:
    found = target_of(parse_subject(subject).prefixes)
    assert found is not None and found[:2] == expected


@pytest.mark.parametrize("subject", [
    "[PATCH v2 3/5] mm: memcg: x",
    "[PATCH 1/2] mm: memcg: x",
    "[PATCH] mm: memcg: x",
    "[PATCH mm-unstable] mm: memcg: x",
    "[PATCH for-5.2-fixes] cgroup: x",  # a mainline fixes branch, not a stable series
    "[PATCH cgroup/for-6.1] cgroup: x",
    "[PATCH net-next v3 00/12] net: x",
    "[PATCH v6.1] mm: x",  # "v6.1" is not a release word here
    "[PATCH AUTOSEL] mm: x",  # no release named
    "[PATCH stable] mm: x",
    "[PATCH 123.4] mm: x",  # no kernel has a three-digit major
])
def test_look_alikes_are_not_backports(subject: str) -> None:
    assert target_of(parse_subject(subject).prefixes) is None


def test_changelog_lines_of_the_stable_rules_and_cherry_pick() -> None:
    text = (f"commit {SHA} upstream.\n\n"
            "[ Upstream commit ABCDEF012345 ]\n"
            "This is a backport of upstream commit 111111111111 (\"memcg: x\").\n"
            f"Upstream commit {OTHER}\n"
            "(cherry picked from commit 2222222222222222)\n")
    assert upstream_ids(text) == [SHA, "abcdef012345", "111111111111", OTHER,
                                  "2222222222222222"]


def test_changelog_look_alikes_are_not_claims() -> None:
    text = ("commit 4444444 upstream.\n"  # 7 hex: too short to name a commit
            f"commit {SHA}5 upstream.\n"  # 41 hex
            "upstream commit 666666666666g is a typo\n"
            f"> commit {SHA} upstream.\n"  # quoted from another mail
            f"> [ Upstream commit {SHA} ]\n"
            f"Fixes: {SHA[:12]} (\"memcg: x\")\n"  # mainline's Fixes: is no backport claim
            f"commit {OTHER} (\"memcg: y\") introduced it\n")
    assert upstream_ids(text) == []


def test_autosel_series_claims_its_upstream_commit() -> None:
    series = series_of(mail("[PATCH AUTOSEL 5.4 307/330] mm: memcontrol: fix a race",
                            f"[ Upstream commit {SHA} ]\n\nA race."))
    bp = backport_of(series)
    assert bp is not None
    assert (bp.target, bp.autosel, bp.upstream, bp.unclaimed) == ("5.4", True, (SHA,), ())
    assert bp.evidence == ("subject prefix [AUTOSEL 5.4]; upstream commit named in 1 of 1 "
                           "patch(es)")
    assert describe(bp) == (
        "stable backport to 5.4 (AUTOSEL) of upstream commit 0123456789ab (claimed by the "
        "patch; whether the diff matches a normal backport of that commit is not checked "
        "offline)")


def test_stable_review_series_names_every_patch_and_the_unclaimed_ones() -> None:
    cover = (b"From: Greg <greg@example.org>\nSubject: [PATCH 6.1 0/3] 6.1.99-rc1 review\n"
             b"Date: Mon, 1 Jun 2020 10:00:00 +0000\nMessage-ID: <cover@example.org>\n\n"
             b"This is the start of the stable review cycle.\n")
    series = series_of(
        cover,
        mail("[PATCH 6.1 1/3] mm: a", f"commit {SHA} upstream.\n\nA.", 1, "cover@example.org"),
        mail("[PATCH 6.1 2/3] mm: b", "B, no upstream line.", 2, "cover@example.org"),
        mail("[PATCH 6.1 3/3] mm: c", f"commit {OTHER} upstream.\n\nC.", 3, "cover@example.org"))
    bp = backport_of(series)
    assert bp is not None and (bp.target, bp.autosel) == ("6.1", False)
    assert bp.upstream == (SHA, OTHER) and bp.unclaimed == (2,)
    assert describe(bp).startswith("stable backport to 6.1 of 2 upstream commits: "
                                   "0123456789ab, fedcba987654 (claimed by the patches")
    assert describe(bp).endswith("; patch 2 names no upstream commit")
    assert bp.to_json() == {"target": "6.1", "autosel": False, "upstream": [SHA, OTHER],
                            "evidence": "subject prefix [6.1]; upstream commit named in 2 "
                                        "of 3 patch(es)", "unclaimed": [2]}


def test_a_mainline_patch_with_upstream_words_is_not_a_backport() -> None:
    series = series_of(mail("[PATCH v2] mm: memcg: x", f"commit {SHA} upstream.\n\nA."))
    assert backport_of(series) is None


def test_a_backport_without_an_upstream_line_says_so() -> None:
    bp = backport_of(series_of(mail("[PATCH 6.12.y] mm: memcg: x", "Backported by hand.")))
    assert bp is not None and bp.upstream == () and bp.unclaimed == (1,)
    assert describe(bp) == ("stable backport to 6.12; no patch names its upstream commit "
                            "(the stable rules ask for \"commit <sha> upstream.\" above the "
                            "changelog)")


def test_upstream_lines_are_linear_on_hostile_changelogs() -> None:
    import time

    text = ("upstream commit " * 20_000 + "\n") * 5 + "> " * 100_000
    start = time.perf_counter()
    assert upstream_ids(text) == []
    assert time.perf_counter() - start < 2.0
