from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewbot.mail.parse import parse_message
from reviewbot.mail.patchid import patch_id


def git_patch_id(diff: str) -> str | None:
    out = subprocess.run(
        ["git", "patch-id", "--stable"], input=diff.encode(), capture_output=True, check=True
    ).stdout.decode()
    return out.split()[0] if out.strip() else None


def test_matches_git_on_fixture(mail_data: Path) -> None:
    diff = parse_message((mail_data / "plain.eml").read_bytes()).diff or ""
    assert patch_id(diff) == git_patch_id(diff)


def test_file_order_does_not_matter() -> None:
    a = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n"
    b = "diff --git a/b b/b\n--- a/b\n+++ b/b\n@@ -1,2 +1,2 @@\n k\n-x\n+z\n"
    assert patch_id(a + b) == patch_id(b + a) == git_patch_id(a + b)


def test_whitespace_and_line_numbers_ignored() -> None:
    a = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -10 +10 @@\n-x = 1;\n+y = 2;\n"
    b = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -99 +99 @@\n-x=1;\n+y  = 2;\n"
    assert patch_id(a) == patch_id(b)


def test_only_gits_whitespace_is_ignored() -> None:
    # git's isspace() knows space, tab, LF and CR: a form feed or a no-break space is
    # hashed (str.split() would have dropped them and given another id).
    for odd in ("\f", "\v", "\u00a0", "\u2028"):
        diff = f"diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-a{odd}b\n+ab\n"
        assert patch_id(diff) == git_patch_id(diff), repr(odd)


line = st.text(alphabet="abc {}();=\t\f\u00a0", min_size=0, max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("+- "), line), min_size=1, max_size=8))
def test_random_hunks_match_git(lines: list[tuple[str, str]]) -> None:
    before = sum(1 for k, _ in lines if k in "- ")
    after = sum(1 for k, _ in lines if k in "+ ")
    if not before and not after:
        pytest.skip("empty hunk")
    body = "".join(f"{k}{t}\n" for k, t in lines)
    diff = f"diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,{before} +1,{after} @@\n{body}"
    assert patch_id(diff) == git_patch_id(diff)


def test_matches_git_on_real_patches(shared_dir: Path) -> None:
    checked = 0
    for path in sorted((shared_dir / "corpus" / "real").glob("*.patch")):
        diff = parse_message(path.read_bytes(), 0, path.name).diff
        if diff:
            assert patch_id(diff) == git_patch_id(diff), path.name
            checked += 1
    assert checked >= 15


def test_rename_and_mode_change_match_git() -> None:
    rename = "diff --git a/a.c b/b.c\nsimilarity index 100%\nrename from a.c\nrename to b.c\n"
    mode = "diff --git a/x.sh b/x.sh\nold mode 100644\nnew mode 100755\n"
    for diff in (rename, mode, rename + mode):
        assert patch_id(diff) == git_patch_id(diff), diff


def test_fast_path_equals_git_walk_on_a_real_year(shared_dir: Path) -> None:
    from reviewbot.mail.patchid import _patch_id_fast, _patch_id_walk
    from reviewbot.mail.read import RawMessage, iter_path

    checked = 0
    for raw in iter_path(shared_dir / "corpus" / "cgroups-2020.mbox.gz"):
        assert isinstance(raw, RawMessage)
        diff = parse_message(raw.data).diff
        fast = _patch_id_fast(diff) if diff else None
        if fast is not None:
            assert fast == _patch_id_walk(diff or "")
            checked += 1
    assert checked > 900
