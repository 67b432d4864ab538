"""Several bases in one tree (6.1 and a "6.12" child), the base a reviewer would choose,
already-applied series, and git remotes; all on real repositories made from tarballs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_apply import release, run_apply
from treehelp import TAG, make_mbox, replace, settings_for, sh, write_source

from reviewbot.cli import main
from reviewbot.errors import BadInputError
from reviewbot.progress import Progress
from reviewbot.tree.bases import candidates, pre_images
from reviewbot.tree.repo import open_tree
from reviewbot.tree.sources import (
    add_sources,
    fetch_remote,
    import_child,
    newest_first,
    parse_source,
)

QUIET = Progress(heartbeat_s=3600)
NEW = "v6.12.999-debian"
# What "6.12" changed against "6.1": the version, a reworded comment in memcontrol.c (so
# that a patch written on one does not apply on the other) and a new file.
OLD_COMMENT = "We move charges only when we move a owner of the mm"
NEW_COMMENT = "Charges move only with the mm's owner"


@pytest.fixture(scope="module")
def newer_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tarball612")
    root = base / "linux-source-6.12"
    write_source(root)
    mk = root / "Makefile"
    mk.write_text(mk.read_text().replace("PATCHLEVEL = 1\n", "PATCHLEVEL = 12\n"))
    memcg = root / "mm/memcontrol.c"
    memcg.write_text(memcg.read_text().replace(OLD_COMMENT, NEW_COMMENT))
    (root / "mm/memcontrol-v1.c").write_text("// SPDX-License-Identifier: GPL-2.0\n")
    out = base / "linux-source-6.12.tar.xz"
    sh(["tar", "-cJf", str(out), "linux-source-6.12"], base)
    return out


@pytest.fixture()
def two_bases(kernel_tree: Path, newer_tarball: Path) -> Path:
    tag, created = import_child(kernel_tree, newer_tarball, TAG, QUIET)
    assert (tag, created) == (NEW, True)
    return kernel_tree


def test_child_import_shares_history_and_leaves_the_checkout_alone(two_bases: Path,
                                                                   newer_tarball: Path) -> None:
    tree = two_bases
    assert sh(["git", "rev-parse", f"{NEW}^"], tree) == sh(["git", "rev-parse", TAG], tree)
    changed = sh(["git", "diff", "--name-only", TAG, NEW], tree).split()
    assert sorted(changed) == ["Makefile", "mm/memcontrol-v1.c", "mm/memcontrol.c"]
    # The checkout stays on the root import, clean, with no scratch files left.
    assert sh(["git", "rev-parse", "HEAD"], tree) == sh(["git", "rev-parse", TAG], tree)
    assert sh(["git", "status", "--porcelain"], tree) == ""
    assert not (tree / ".git" / "reviewbot-import").exists()
    opened = open_tree(tree)
    assert opened.bases == (TAG, NEW) and opened.default_base == TAG
    assert newest_first(tree, list(opened.bases)) == [NEW, TAG]
    # Idempotent, and deterministic: the same files on the same parent, the same id.
    assert import_child(tree, newer_tarball, TAG, QUIET) == (NEW, False)
    assert open_tree(tree).bases == (TAG, NEW)


def test_status_lists_every_base_with_version_and_order(two_bases: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("REVIEWBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["tree", "status", "--path", str(two_bases), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [(b["ref"], b["version"]) for b in info["bases"]] == [(TAG, "6.1.999"),
                                                                (NEW, "6.12.999")]
    assert info["bases"][1]["age_days"] == 0.0 and info["bases"][1]["source"].endswith(".tar.xz")
    assert info["order"] == [NEW, TAG]
    assert main(["tree", "status", "--path", str(two_bases)]) == 0
    out = capsys.readouterr().out
    assert f"{NEW}: Linux 6.12.999" in out and f"order:    {NEW} -> {TAG}" in out


def test_index_lines_choose_the_base_the_patch_was_written_on(two_bases: Path,
                                                              tmp_path: Path) -> None:
    # Written on 6.1 (the old comment): newest first would try 6.12 and fail; the
    # pre-image blob of its index line is 6.1's file, so 6.1 is tried first.
    mbox = make_mbox(two_bases, tmp_path, [
        ("mm: memcontrol: reword", [replace("mm/memcontrol.c", OLD_COMMENT,
                                            "Charges follow the owner")])], base=TAG)
    out, state = run_apply(mbox, settings_for(tmp_path, two_bases))
    try:
        tried = out.json()["tried"]
        assert out.status == "success" and out.json()["base"] == TAG
        assert tried[0]["reason"].startswith("the diffs' index lines: 1 of 1")
    finally:
        release(state)
    # The same patch without index lines: newest first, 6.12 conflicts, 6.1 applies.
    plain = tmp_path / "plain.mbox"
    plain.write_text("".join(line for line in mbox.read_text().splitlines(keepends=True)
                             if not line.startswith("index ")))
    out, state = run_apply(plain, settings_for(tmp_path, two_bases))
    try:
        assert [(t["ref"], t["outcome"]) for t in out.json()["tried"]] == [
            (NEW, "conflict"), (TAG, "applied")]
        assert out.json()["tried"][0]["reason"].startswith("the tree's bases, newest first")
    finally:
        release(state)


def test_subject_prefix_names_a_stable_series(two_bases: Path, tmp_path: Path) -> None:
    # A doc patch that applies on both: "[PATCH 6.1]" (a stable backport) picks 6.1 over the
    # newest-first order.
    mbox = make_mbox(two_bases, tmp_path, [
        ("doc: say who moves", [replace("Documentation/admin-guide/cgroup-v1/memory.rst",
                                        "a leader of a thread group",
                                        "the mm's owner")])], base=TAG)
    text = mbox.read_text()
    plain = "".join(line for line in text.splitlines(keepends=True)
                    if not line.startswith("index "))
    mbox.write_text(plain.replace("Subject: [PATCH]", "Subject: [PATCH 6.1]"))
    out, state = run_apply(mbox, settings_for(tmp_path, two_bases))
    try:
        tried = out.json()["tried"]
        assert tried[0]["ref"] == TAG and tried[0]["reason"] == "the subject prefix [6.1]"
        assert out.json()["base"] == TAG
    finally:
        release(state)


def test_a_series_already_in_a_base_is_reported_as_such(two_bases: Path,
                                                        tmp_path: Path) -> None:
    # The patch that made 6.12's comment, posted again against 6.1: 6.12 has it already.
    mbox = make_mbox(two_bases, tmp_path, [
        ("mm: memcontrol: reword the owner comment",
         [replace("mm/memcontrol.c", OLD_COMMENT, NEW_COMMENT)])], base=TAG)
    plain = tmp_path / "plain.mbox"
    plain.write_text("".join(line for line in mbox.read_text().splitlines(keepends=True)
                             if not line.startswith("index ")))
    out, state = run_apply(plain, settings_for(tmp_path, two_bases, bases=(NEW,)))
    assert out.status == "fail" and out.reason == f"already in {NEW} (every patch reverse-applies)"
    d = out.json()
    assert d["tried"][0]["outcome"] == "already-applied" and d["base"] == NEW
    assert [p["status"] for p in d["patches"]] == ["already-present"]
    assert state.release == [] and not state.applied
    # The worktree is back at the base, clean, for the next review.
    (wt,) = [p.parent for p in (tmp_path / "worktrees").glob("*/*/.git")
             if NEW in p.parent.name]
    assert sh(["git", "status", "--porcelain"], wt) == ""
    assert sh(["git", "rev-parse", "HEAD"], wt) == sh(["git", "rev-parse", NEW], two_bases)


def test_pre_images_take_the_first_diff_of_each_file() -> None:
    first = ("diff --git a/mm/a.c b/mm/a.c\nindex 1111111..2222222 100644\n--- a/mm/a.c\n"
             "+++ b/mm/a.c\n@@ -1 +1 @@\n-x\n+y\n"
             "diff --git a/mm/new.c b/mm/new.c\nnew file mode 100644\nindex 0000000..3333333\n")
    second = ("diff --git a/mm/a.c b/mm/a.c\nindex 2222222..4444444 100644\n"
              "diff --git a/mm/b.c b/mm/b.c\nindex 5555555..6666666 100644\n")
    assert pre_images([first, second]) == {"mm/a.c": "1111111", "mm/b.c": "5555555"}


def test_sources_parse_and_refuse() -> None:
    assert parse_source("linux-source-6.12").tarball == Path("/usr/src/linux-source-6.12.tar.xz")
    assert parse_source("/srv/linux-6.13.tar.gz").kind == "tarball"
    git = parse_source("https://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm.git#mm-unstable")
    assert (git.kind, git.ref, git.local_ref) == ("git", "mm-unstable", "bases/mm/mm-unstable")
    for bad in ("linux", "https://example.org/x.git#--upload-pack=touch", "a b#c"):
        with pytest.raises(BadInputError, match="not a tree source"):
            parse_source(bad)


def test_git_remote_is_fetched_shallow_and_moves_on_update(two_bases: Path,
                                                           tmp_path: Path) -> None:
    remote = tmp_path / "mm"
    sh(["git", "clone", "-q", "--no-local", str(two_bases), str(remote)], tmp_path)
    sh(["git", "checkout", "-q", "-b", "mm-unstable", NEW], remote)
    replace("mm/memcontrol.c", NEW_COMMENT, "Charges move with mm->owner")(remote)
    sh(["git", "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "mm"], remote)
    src = parse_source(f"file://{remote}#mm-unstable")
    assert src.local_ref == "bases/mm/mm-unstable"
    ref, changed = fetch_remote(two_bases, src, QUIET)
    assert (ref, changed) == ("bases/mm/mm-unstable", True)
    assert open_tree(two_bases).bases == (TAG, NEW, ref)
    assert newest_first(two_bases, [TAG, NEW, ref]) == [ref, NEW, TAG]
    assert add_sources(two_bases, [src], QUIET) == [(ref, False)]  # nothing new
    replace("mm/memcontrol.c", "mm->owner", "the owner")(remote)
    sh(["git", "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "mm2"], remote)
    assert add_sources(two_bases, [src], QUIET) == [(ref, True)]
    assert sh(["git", "rev-parse", ref], two_bases) == sh(["git", "rev-parse", "HEAD"], remote)
    # "[PATCH mm-unstable]" names it.
    cands = candidates(two_bases, None, None, (), TAG, (TAG, NEW, ref), (), ("mm-unstable",))
    assert cands[0].ref == ref and cands[0].reason == "the subject prefix [mm-unstable]"
