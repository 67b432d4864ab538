"""The apply stage on a real git tree: bases and their order, per-patch results, commits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from treehelp import (
    AUTHORS,
    MEMCONTROL_C,
    TAG,
    make_mbox,
    replace,
    series_from,
    settings_for,
    sh,
    write,
)

from reviewbot.config import Settings
from reviewbot.lock import try_lock
from reviewbot.pipeline import ReviewOptions, ReviewState, StageOutcome, review_series
from reviewbot.tree.stage import apply_stage

COMMENT_FIX = replace("mm/memcontrol.c", "move a owner of the mm", "move the owner of the mm")
RETRY_NOTE = replace("mm/memcontrol.c", "\trcu_read_lock();\n\tdo {",
                     "\t/* css_tryget() fails only while the memcg is released */\n"
                     "\trcu_read_lock();\n\tdo {")
DOC = replace("Documentation/admin-guide/cgroup-v1/memory.rst", "a leader of a thread group.",
              "a leader of a thread group, or the task that took over the mm.")
READ_ONCE_OWNER = replace("kernel/exit.c", "\tif (mm->owner != p)\n",
                          "\tif (READ_ONCE(mm->owner) != p)\n")
OWNER_NOTE = replace("kernel/exit.c", "\tif (READ_ONCE(mm->owner) != p)\n\t\treturn;\n",
                     "\tif (READ_ONCE(mm->owner) != p)\n\t\treturn; /* not ours */\n")
EXIT_SKIP = replace("kernel/exit.c", "\t\tif (c->mm == mm)\n", "\t\tif (c->mm == mm && !(c->flags & PF_EXITING))\n")


def run_apply(series_path: Path, settings: Settings, **opts: object) -> tuple[StageOutcome, ReviewState]:
    state = ReviewState()
    outcome = apply_stage(series_from(series_path), state, settings, ReviewOptions(**opts))  # type: ignore[arg-type]
    return outcome, state


def release(state: ReviewState) -> None:
    for fn in reversed(state.release):
        fn()


def _patch_id(cwd: Path, diff: str) -> str:
    import subprocess

    res = subprocess.run(["git", "patch-id", "--stable"], cwd=cwd, input=diff, text=True,
                         capture_output=True, check=True)
    return res.stdout.split()[0]


def test_clean_series_applies_with_one_commit_per_patch(tmp_path: Path, kernel_tree: Path,
                                                        settings: Settings) -> None:
    mbox = make_mbox(kernel_tree, tmp_path, [("mm: memcontrol: fix a comment", [COMMENT_FIX]),
                                            ("mm: memcontrol: explain the loop", [RETRY_NOTE]),
                                            ("Documentation: say who moves", [DOC])])
    main_head = sh(["git", "rev-parse", "HEAD"], kernel_tree)
    out, state = run_apply(mbox, settings)
    try:
        assert out.status == "success", out.reason
        d = out.json()
        # make_mbox writes real index lines: the pre-image blobs name the base.
        assert d["base"] == TAG and d["base_reason"].startswith("the diffs' index lines: 2 of 2")
        assert [t["outcome"] for t in d["tried"]] == ["applied"]
        assert [p["status"] for p in d["patches"]] == ["applied"] * 3
        commits = [p["commit"] for p in d["patches"]]
        wt = Path(d["worktree"])
        assert state.worktree == wt and state.applied
        assert state.base_commit == sh(["git", "rev-parse", TAG], kernel_tree).strip()
        assert state.patch_commits == {1: commits[0], 2: commits[1], 3: commits[2]}
        assert sh(["git", "rev-list", "--reverse", f"{TAG}..HEAD"], wt).split() == commits
        # Each commit carries exactly the diff of its mail, with the mail's author.
        series = series_from(mbox)
        for i, (patch, commit) in enumerate(zip(series.patches, commits, strict=True)):
            assert _patch_id(wt, patch.message.diff or "") == _patch_id(
                wt, sh(["git", "show", "--format=", commit], wt))
            # Ada sends all three; patch 2 is Jörg's, named by an in-body From: line.
            name, email = AUTHORS[i % 2]
            author = sh(["git", "log", "-1", "--format=%an <%ae>|%cn", commit], wt).strip()
            assert author == f"{name} <{email}>|reviewbot"
        assert "move the owner of the mm" in (wt / "mm/memcontrol.c").read_text()
        # The main repository never moves and never gets dirty.
        assert sh(["git", "rev-parse", "HEAD"], kernel_tree) == main_head
        assert sh(["git", "status", "--porcelain", "--ignored"], kernel_tree) == ""
    finally:
        release(state)


def test_same_series_same_base_gives_same_commit_ids(tmp_path: Path, kernel_tree: Path) -> None:
    mbox = make_mbox(kernel_tree, tmp_path, [("a", [COMMENT_FIX]), ("b", [DOC])])
    ids = []
    for run in range(2):
        out, state = run_apply(mbox, settings_for(tmp_path / f"run{run}", kernel_tree))
        ids.append([p["commit"] for p in out.json()["patches"]])
        release(state)
    assert ids[0] == ids[1] and all(ids[0])


def test_conflict_3way_reports_files_hunks_and_falls_back_to_next_base(
        tmp_path: Path, kernel_tree: Path, settings: Settings) -> None:
    # mm-next changed the comment; the series was written on mm-next and edits that line
    # again, so on mm-next's parent... it is the tag that conflicts, with a 3-way merge.
    clone = tmp_path / "dev"
    sh(["git", "clone", "-q", str(kernel_tree), str(clone)], tmp_path)
    replace("mm/memcontrol.c", "move a owner of the mm", "move an owner of the mm")(clone)
    sh(["git", "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "mm-next"], clone)
    sh(["git", "push", "-q", str(kernel_tree), "HEAD:refs/heads/mm-next"], clone)
    mbox = make_mbox(kernel_tree, tmp_path, [
        ("mm: memcontrol: doc", [DOC]),
        ("mm: memcontrol: reword", [replace("mm/memcontrol.c", "move an owner of the mm",
                                            "move the mm owner")]),
    ], base="mm-next")
    # With its index lines the series names mm-next by its pre-image blobs, before any
    # configured order (b4's guess-base).
    out, state = run_apply(mbox, settings_for(tmp_path, kernel_tree, bases=(TAG, "mm-next")))
    try:
        tried = out.json()["tried"]
        assert [(t["ref"], t["outcome"]) for t in tried] == [("mm-next", "applied")]
        assert tried[0]["reason"] == \
            "the diffs' index lines: 2 of 2 pre-image blob(s) are this base's files"
    finally:
        release(state)
    # Without them (diff -u, quilt), the configured order decides.
    plain = tmp_path / "plain.mbox"
    plain.write_text("".join(line for line in mbox.read_text().splitlines(keepends=True)
                             if not line.startswith("index ")))
    out, state = run_apply(plain, settings_for(tmp_path, kernel_tree, bases=(TAG, "mm-next")))
    try:
        tried = out.json()["tried"]
        assert [(t["ref"], t["outcome"]) for t in tried] == [(TAG, "conflict"),
                                                             ("mm-next", "applied")]
        # no blob ids, no 3-way merge: git apply's own verdict
        assert "patch failed: mm/memcontrol.c" in tried[0]["message"]
        assert out.status == "success" and out.json()["base"] == "mm-next"
        assert out.json()["base_reason"] == "tree.bases[1] in config.yaml"
    finally:
        release(state)
    # Only the tag: the series applies nowhere, and the report says exactly why.
    out, state = run_apply(mbox, settings_for(tmp_path / "b", kernel_tree))
    assert out.status == "fail" and out.reason == "does not apply"
    assert state.worktree is None and not state.applied and state.release == []
    p1, p2 = out.json()["patches"]
    assert p1["status"] == "applied" and p2["status"] == "conflict"
    (conflict,) = p2["conflicts"]
    assert conflict["file"] == "mm/memcontrol.c"
    assert conflict["reason"].startswith("content conflict")
    assert conflict["hunks"] and conflict["hunks"][0].startswith("@@ -")
    assert "mem_cgroup_can_attach" in conflict["hunks"][0]
    assert "Merge conflict in mm/memcontrol.c" in p2["message"]
    assert "git am --continue" not in p2["message"]  # instructions for humans are dropped


def test_missing_prerequisite_is_a_conflict_without_3way(tmp_path: Path, kernel_tree: Path,
                                                         settings: Settings) -> None:
    mbox = make_mbox(kernel_tree, tmp_path, [
        ("exit: say why", [OWNER_NOTE]),
        ("exit: skip exiting tasks", [EXIT_SKIP]),
        ("mm: memcontrol: fix a comment", [COMMENT_FIX]),
    ], prerequisites=[("exit: unsent prerequisite", [READ_ONCE_OWNER])])
    out, state = run_apply(mbox, settings)
    assert out.status == "fail"
    p1, p2, p3 = out.json()["patches"]
    assert p1["status"] == "conflict"
    assert p1["conflicts"][0]["file"] == "kernel/exit.c"
    assert "sha1 information is lacking or useless (kernel/exit.c)" in p1["message"]
    assert "error: patch failed: kernel/exit.c:" in p1["message"]
    assert p1["conflicts"][0]["hunks"] == [p1["conflicts"][0]["hunks"][0]]
    assert p2["status"] == p3["status"] == "skipped"
    assert p2["message"] == "not tried: patch 1 did not apply"
    assert "if (READ_ONCE(mm->owner) != p)" not in p1["conflicts"][0]["hunks"][0]
    # The worktree is back at the base and free for the next run.
    lock_dir = tmp_path / "worktrees"
    locks = list(lock_dir.rglob("*.lock"))
    assert locks and all(try_lock(p) is not None for p in locks if p.name != ".admin.lock")


def test_base_commit_is_tried_first_and_unknown_one_is_recorded(
        tmp_path: Path, kernel_tree: Path, settings: Settings) -> None:
    base_sha = sh(["git", "rev-parse", TAG], kernel_tree).strip()
    mbox = make_mbox(kernel_tree, tmp_path, [("a", [COMMENT_FIX]), ("b", [DOC])],
                     base_commit=base_sha, name="known")
    out, state = run_apply(mbox, settings, base="no-such-branch")
    try:
        assert [(t["ref"], t["outcome"]) for t in out.json()["tried"]] == [(base_sha, "applied")]
        assert out.json()["base_reason"] == "base-commit: in the series"
        # A sha given as base-commit reuses the worktree of the tag that points at it.
        assert Path(out.json()["worktree"]).name == TAG
    finally:
        release(state)
    unknown = "0123456789abcdef0123456789abcdef01234567"
    mbox = make_mbox(kernel_tree, tmp_path, [("a", [COMMENT_FIX]), ("b", [DOC])],
                     base_commit=unknown, name="unknown")
    out, state = run_apply(mbox, settings, base="no-such-branch")
    try:
        tried = [(t["ref"], t["outcome"], t["message"]) for t in out.json()["tried"]]
        assert tried[0][:2] == (unknown, "not-found") and "fatal:" in tried[0][2]
        assert tried[1][:2] == ("no-such-branch", "not-found") and "fatal:" in tried[1][2]
        assert tried[2][:2] == (TAG, "applied")
        assert out.json()["base"] == TAG and out.status == "success"
    finally:
        release(state)


def test_duplicate_base_is_not_applied_twice(tmp_path: Path, kernel_tree: Path) -> None:
    mbox = make_mbox(kernel_tree, tmp_path, [("exit", [OWNER_NOTE])],
                     prerequisites=[("pre", [READ_ONCE_OWNER])])
    out, _ = run_apply(mbox, settings_for(tmp_path, kernel_tree, bases=(TAG, "HEAD")),
                       base="master")
    outcomes = [(t["ref"], t["outcome"]) for t in out.json()["tried"]]
    assert outcomes == [("master", "conflict"), (TAG, "duplicate"), ("HEAD", "duplicate")]
    assert out.json()["tried"][1]["message"] == "same commit as master, already tried"


def test_already_present_patch(tmp_path: Path, kernel_tree: Path, settings: Settings) -> None:
    clone = tmp_path / "dev"
    sh(["git", "clone", "-q", str(kernel_tree), str(clone)], tmp_path)
    COMMENT_FIX(clone)
    sh(["git", "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "merged"], clone)
    sh(["git", "push", "-q", str(kernel_tree), "HEAD:refs/heads/stable"], clone)
    mbox = make_mbox(kernel_tree, tmp_path, [("fix", [COMMENT_FIX]), ("doc", [DOC])])
    out, state = run_apply(mbox, settings, base="stable")
    try:
        assert out.status == "warning" and "already-present" in out.reason
        p1, p2 = out.json()["patches"]
        assert (p1["status"], p1["commit"]) == ("already-present", None)
        assert "Patch already applied" in p1["message"]
        assert p2["status"] == "applied" and state.patch_commits == {2: p2["commit"]}
    finally:
        release(state)


def test_missing_slot_is_skipped_and_rest_applied(tmp_path: Path, kernel_tree: Path,
                                                  settings: Settings) -> None:
    mbox = make_mbox(kernel_tree, tmp_path, [("a", [COMMENT_FIX]), ("b", [RETRY_NOTE]),
                                            ("c", [DOC])])
    mails = mbox.read_text().split("\nFrom ")
    assert len(mails) == 4  # cover + 3
    mbox.write_text("\nFrom ".join(mails[:2] + mails[3:]))  # drop patch 2/3
    out, state = run_apply(mbox, settings)
    try:
        statuses = [(p["index"], p["status"]) for p in out.json()["patches"]]
        assert statuses == [(1, "applied"), (2, "skipped"), (3, "applied")]
        assert "missing" in out.json()["patches"][1]["message"]
        assert out.status == "warning"
    finally:
        release(state)


def test_reset_keeps_mtimes_of_unchanged_files(tmp_path: Path, kernel_tree: Path,
                                               settings: Settings) -> None:
    """Series A then series B on the same base: only files A or B touch get new mtimes."""
    a = make_mbox(kernel_tree, tmp_path, [("a", [COMMENT_FIX])], name="a")
    b = make_mbox(kernel_tree, tmp_path, [("b", [EXIT_SKIP])], name="b")
    out, state = run_apply(a, settings)
    wt = Path(out.json()["worktree"])
    release(state)
    files = [f for f in sh(["git", "ls-files"], wt).split() if not (wt / f).is_symlink()]
    before = {f: (wt / f).stat().st_mtime_ns for f in files}
    time.sleep(0.05)  # a rewrite now gets a later mtime
    out, state = run_apply(b, settings)
    try:
        assert out.json()["worktree"] == str(wt)
        touched = {f for f in files if (wt / f).stat().st_mtime_ns != before[f]}
        assert touched == {"mm/memcontrol.c", "kernel/exit.c"}
        assert (wt / "mm/memcontrol.c").read_text() == MEMCONTROL_C  # A is gone
    finally:
        release(state)


def test_no_hooks_or_filters_run(tmp_path: Path, kernel_tree: Path, settings: Settings,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    for hook in ("applypatch-msg", "pre-applypatch", "post-applypatch", "post-checkout",
                 "post-commit", "pre-commit", "commit-msg"):
        h = kernel_tree / ".git/hooks" / hook
        h.write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        h.chmod(0o755)
    # A user's global config with a filter driver that a patch's .gitattributes names.
    home = tmp_path / "home"
    home.mkdir()
    # (double quotes: an unquoted ";" starts a comment in a git config value)
    (home / ".gitconfig").write_text(
        f"[filter \"evil\"]\n\tsmudge = \"sh -c 'echo smudge >> {marker}; cat'\"\n"
        f"\tclean = \"sh -c 'echo clean >> {marker}; cat'\"\n")
    monkeypatch.setenv("HOME", str(home))
    mbox = make_mbox(kernel_tree, tmp_path, [
        ("attrs", [write(".gitattributes", "* filter=evil\n"), COMMENT_FIX]),
        ("more", [DOC])], cover=False)
    out, state = run_apply(mbox, settings)
    release(state)
    assert out.status == "success"
    # The next review on this worktree checks files out again, with the .gitattributes
    # of the previous series still in place: where a smudge filter would run.
    again, state = run_apply(make_mbox(kernel_tree, tmp_path, [("b", [DOC])], name="b"),
                             settings)
    release(state)
    assert again.status == "success"
    assert not marker.exists(), marker.read_text()
    # Control: plain git with the user's configuration and the repository's hooks runs
    # both on the same mails - which is what the protections above are for.
    control = tmp_path / "control"
    sh(["git", "clone", "-q", str(kernel_tree), str(control)], tmp_path)
    for hook in (kernel_tree / ".git/hooks").iterdir():
        (control / ".git/hooks" / hook.name).write_bytes(hook.read_bytes())
        (control / ".git/hooks" / hook.name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    import subprocess

    for args in (["am", "-3", str(mbox)], ["reset", "-q", "--hard", "HEAD~1"],
                 ["reset", "-q", "--hard", "ORIG_HEAD"]):
        subprocess.run(["git", "-c", "user.name=c", "-c", "user.email=c@c", *args],
                       cwd=control, env={**env, "HOME": str(home)}, capture_output=True,
                       check=False)
    ran = marker.read_text().split()
    assert "applypatch-msg" in ran and ("clean" in ran or "smudge" in ran)


def test_pipeline_releases_the_worktree_after_the_last_stage(tmp_path: Path, kernel_tree: Path,
                                                             settings: Settings) -> None:
    mbox = make_mbox(kernel_tree, tmp_path, [("a", [COMMENT_FIX]), ("b", [DOC])])
    review = review_series(series_from(mbox), settings, ReviewOptions())
    apply = review.outcome("apply")
    assert apply is not None and apply.status == "success"
    lock = Path(apply.json()["worktree"] + ".lock")
    got = try_lock(lock)
    assert got is not None and got.stale_pid is None  # released cleanly, not left behind
    got.release()


def test_no_tree_is_an_infra_error(tmp_path: Path) -> None:
    from reviewbot.errors import InfraError

    mbox_dir = tmp_path
    settings = settings_for(tmp_path, tmp_path / "absent")
    series = _tiny_series(mbox_dir)
    with pytest.raises(InfraError, match="tree init"):
        apply_stage(series, ReviewState(), settings, ReviewOptions())


def _tiny_series(tmp_path: Path):  # type: ignore[no-untyped-def]
    from treehelp import hand_series
    return hand_series(["diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"])


def test_revision_syntax_in_base_and_refusal_of_odd_base_commit(tmp_path: Path,
                                                                 kernel_tree: Path) -> None:
    from reviewbot.tree.bases import candidates, resolve

    sha = sh(["git", "rev-parse", TAG], kernel_tree).strip()
    assert resolve(kernel_tree, f"{TAG}^{{commit}}") == (sha, "")
    assert resolve(kernel_tree, "--output=/tmp/x")[0] is None
    cands = candidates(kernel_tree, "--upload-pack=touch /tmp/x", f"{TAG}~0", (), TAG)
    assert (cands[0].commit, cands[0].message) == (None, "'--upload-pack=touch /tmp/x' is "
                                                   "not a commit id")
    assert cands[1].commit == sha and cands[2].commit == sha


def test_next_review_undoes_added_deleted_renamed_files(tmp_path: Path, kernel_tree: Path,
                                                        settings: Settings) -> None:
    def rename(root: Path) -> None:
        # Renamed and edited: a pure rename (no hunk) is not seen as a patch by the mail
        # reader yet, so this one carries a hunk.
        sh(["git", "mv", "Documentation/admin-guide/cgroup-v1/memory.rst",
            "Documentation/admin-guide/cgroup-v1/memcg.rst"], root)
        with (root / "Documentation/admin-guide/cgroup-v1/memcg.rst").open("a") as f:
            f.write("Renamed.\n")

    def delete(root: Path) -> None:
        sh(["git", "rm", "-q", "scripts/checkpatch.pl"], root)

    a = make_mbox(kernel_tree, tmp_path, [
        ("add", [write("mm/memcg_new.c", "int x;\n")]), ("delete", [delete]),
        ("rename", [rename])], name="a")
    b = make_mbox(kernel_tree, tmp_path, [("b", [COMMENT_FIX])], name="b")
    out, state = run_apply(a, settings)
    wt = Path(out.json()["worktree"])
    assert out.status == "success", out.json()["patches"]
    assert (wt / "mm/memcg_new.c").exists()
    assert not (wt / "scripts/checkpatch.pl").exists()
    release(state)
    out, state = run_apply(b, settings)
    try:
        assert out.status == "success"
        assert not (wt / "mm/memcg_new.c").exists()
        assert os.access(wt / "scripts/checkpatch.pl", os.X_OK)
        assert (wt / "Documentation/admin-guide/cgroup-v1/memory.rst").exists()
        assert not (wt / "Documentation/admin-guide/cgroup-v1/memcg.rst").exists()
        assert sh(["git", "status", "--porcelain", "--ignored"], wt) == ""
        assert sh(["git", "diff", "--stat", TAG, "HEAD"], wt).count("|") == 1
    finally:
        release(state)


def test_rendered_mails_keep_a_non_ascii_author(tmp_path: Path, kernel_tree: Path,
                                                settings: Settings) -> None:
    from treehelp import hand_series

    clone = tmp_path / "dev"
    sh(["git", "clone", "-q", str(kernel_tree), str(clone)], tmp_path)
    COMMENT_FIX(clone)
    diff = sh(["git", "diff"], clone)
    series = hand_series([diff], author=("Łukasz Przykład", "lukasz@example.org"))
    state = ReviewState()
    out = apply_stage(series, state, settings, ReviewOptions())
    try:
        assert out.status == "success", out.json()
        wt = Path(out.json()["worktree"])
        log = sh(["git", "log", "-1", "--format=%an <%ae>%n%s"], wt)
        assert log == "Łukasz Przykład <lukasz@example.org>\nchange 1\n"
    finally:
        release(state)
