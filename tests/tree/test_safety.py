"""Untrusted diffs: refused paths, symbolic links, .git, binaries, oversized series."""

from __future__ import annotations

from pathlib import Path

import pytest
from treehelp import hand_series, settings_for, sh

from reviewbot.config import Settings
from reviewbot.pipeline import ReviewOptions, ReviewState
from reviewbot.tree.safety import check_patch, path_problem, unquote
from reviewbot.tree.stage import apply_stage


def modify(path: str, old: str = "a", new: str = "b") -> str:
    return (f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n"
            f"+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n")


def new_file(path: str, text: str = "hello", mode: str = "100644") -> str:
    return (f"diff --git a/{path} b/{path}\nnew file mode {mode}\nindex 0000000..2222222\n"
            f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{text}\n")


def issues(diff: str, links: frozenset[str] = frozenset(), created: set[str] | None = None
           ) -> list[tuple[str, str]]:
    found = check_patch(1, diff, lambda p: p in links, created if created is not None else set())
    return [(i.kind, i.path) for i in found]


@pytest.mark.parametrize(("path", "kind"), [
    ("/etc/passwd", "outside-tree"),
    ("../outside", "outside-tree"),
    ("mm/../../outside", "outside-tree"),
    (".git/hooks/post-applypatch", "git-dir"),
    ("mm/.GIT/config", "git-dir"),
    (".git./config", "git-dir"),
])
def test_unsafe_paths(path: str, kind: str) -> None:
    problem = path_problem(path)
    assert problem is not None and problem[0] == kind


@pytest.mark.parametrize("path", ["mm/memcontrol.c", ".gitignore", "tools/.gitattributes",
                                  "a..b/c", "Documentation/..hidden"])
def test_ordinary_paths_pass(path: str) -> None:
    assert path_problem(path) is None


def test_headers_of_every_kind_are_checked() -> None:
    assert issues(modify("mm/memcontrol.c")) == []
    assert ("git-dir", ".git/config") in issues(
        "diff --git a/x b/.git/config\nsimilarity index 100%\nrename from x\n"
        "rename to .git/config\n")
    assert ("outside-tree", "../y") in issues(
        "diff --git a/x b/../y\ncopy from x\ncopy to ../y\n")
    quoted = '"b/.git/\\150ooks/x"'
    assert unquote(quoted) == "b/.git/hooks/x"
    assert ("git-dir", ".git/hooks/x") in issues(
        f'diff --git "a/.git/\\150ooks/x" {quoted}\nnew file mode 100644\n'
        f'--- /dev/null\n+++ {quoted}\n@@ -0,0 +1 @@\n+x\n')


def test_a_removed_line_that_looks_like_a_header_is_not_one() -> None:
    diff = ("diff --git a/doc.txt b/doc.txt\n--- a/doc.txt\n+++ b/doc.txt\n@@ -1,2 +1,2 @@\n"
            "--- /etc/passwd\n+++ /etc/passwd\n-x\n+y\n")
    # "--- /etc/passwd" is a removed line "-- /etc/passwd", inside the hunk.
    assert issues(diff) == []
    diff = ("diff --git a/doc.txt b/doc.txt\n--- a/doc.txt\n+++ b/doc.txt\n@@ -1,2 +1,2 @@\n"
            "--- /etc/passwd\n x\n+++ /etc/shadow\n")
    assert issues(diff) == []


def test_symlinks() -> None:
    links = frozenset({"tools/outside"})
    assert ("symlink", "tools/outside/passwd") in issues(modify("tools/outside/passwd"), links)
    created: set[str] = set()
    assert issues(new_file("arch/link", "../../etc", "120000"), created=created) == [
        ("symlink", "arch/link")]
    assert issues(new_file("arch/link/x"), created=created) == [("symlink", "arch/link/x")]
    assert issues(new_file("include/dt", "../scripts/dtc", "120000")) == []
    assert issues(new_file("abs", "/etc", "120000")) == [("symlink", "abs")]


def test_binary_and_submodule() -> None:
    binary = ("diff --git a/fw.bin b/fw.bin\nnew file mode 100644\nindex 0000000..1111111\n"
              "GIT binary patch\nliteral 3\nKcmZ>Y&;S4c0RR91\n\nliteral 0\nHcmV?d00001\n")
    found = check_patch(2, binary, lambda p: False, set())
    assert [(i.kind, i.refused) for i in found] == [("binary", False)]
    sub = "diff --git a/lib/sub b/lib/sub\nnew file mode 160000\nindex 0000000..1234567\n"
    assert issues(sub) == [("submodule", "lib/sub")]


def _stage(settings: Settings, diffs: list[str]) -> tuple[dict[str, object], str, str]:
    state = ReviewState()
    out = apply_stage(hand_series(diffs), state, settings, ReviewOptions())
    for fn in state.release:
        fn()
    return out.json(), out.status, out.reason


def test_stage_refuses_write_through_base_symlink(tmp_path: Path, kernel_tree: Path,
                                                  settings: Settings) -> None:
    data, status, reason = _stage(settings, [
        modify("mm/memcontrol.c", "// SPDX-License-Identifier: GPL-2.0-or-later",
               "// SPDX-License-Identifier: GPL-2.0"),
        new_file("tools/outside/cron.d/evil", "* * * * * root sh"),
    ])
    assert status == "fail" and reason.startswith("refused: patch 2:")
    assert "symbolic link 'tools/outside'" in reason
    assert [p["status"] for p in data["patches"]] == ["skipped", "refused"]  # type: ignore[index]
    assert data["tried"][0]["outcome"] == "refused"  # type: ignore[index]
    assert not Path("/etc/cron.d/evil").exists()
    assert not (tmp_path / "worktrees").exists()  # nothing was even checked out


def test_stage_refuses_git_dir_and_nothing_runs(tmp_path: Path, kernel_tree: Path,
                                                settings: Settings) -> None:
    hook = new_file(".git/hooks/post-applypatch", "touch /tmp/reviewbot-pwned", "100755")
    data, status, reason = _stage(settings, [hook])
    assert status == "fail" and "writes into the git directory" in reason
    assert not (kernel_tree / ".git/hooks/post-applypatch").exists()


def test_stage_refuses_outside_paths(settings: Settings) -> None:
    _, status, reason = _stage(settings, [new_file("../../escape", "x")])
    assert status == "fail" and "climbs out of the tree" in reason


def test_binary_patch_is_applied_and_reported(tmp_path: Path, kernel_tree: Path,
                                              settings: Settings) -> None:
    clone = tmp_path / "dev"
    sh(["git", "clone", "-q", str(kernel_tree), str(clone)], tmp_path)
    (clone / "firmware.bin").write_bytes(bytes(range(256)))
    sh(["git", "add", "-f", "firmware.bin"], clone)
    diff = sh(["git", "diff", "--cached", "--binary", "--full-index"], clone)
    data, status, reason = _stage(settings, [diff])
    assert status == "warning" and "binary" in reason
    assert data["issues"][0]["kind"] == "binary"  # type: ignore[index]
    assert data["patches"][0]["status"] == "applied"  # type: ignore[index]


def test_oversized_series_is_reported_not_applied(tmp_path: Path, kernel_tree: Path) -> None:
    small = settings_for(tmp_path, kernel_tree, max_series_bytes=100)
    data, status, reason = _stage(small, [modify("mm/memcontrol.c")])
    assert status == "fail" and "series too large" in reason and "max_series_bytes" in reason
    assert data["tried"] == [] and not (tmp_path / "worktrees").exists()
