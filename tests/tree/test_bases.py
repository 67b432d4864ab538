"""Several bases in one tree (6.1 and a "6.12" child), the base a reviewer would choose,
already-applied series, and git remotes; all on real repositories made from tarballs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_apply import release, run_apply
from treehelp import TAG, make_mbox, replace, series_from, settings_for, sh, write_source

from reviewbot.cli import main
from reviewbot.config import Settings
from reviewbot.errors import BadInputError
from reviewbot.mail.stable import backport_of
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
    # newest-first order; the stable step names it before the subject hint does.
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
        assert tried[0]["ref"] == TAG
        assert tried[0]["reason"] == "stable backport to 6.1: the tree's 6.1 base"
        assert out.json()["base"] == TAG
    finally:
        release(state)
    # Without the stable step (candidates() called as before it existed) the subject hint
    # still names 6.1.
    cands = candidates(two_bases, None, None, (), TAG, (TAG, NEW), (), ("PATCH", "6.1"))
    assert (cands[0].ref, cands[0].reason) == (TAG, "the subject prefix [6.1]")


def _doc_backport(tree: Path, work: Path, subject: str, name: str) -> Path:
    """A doc patch written on 6.1 that applies on both bases (the file is the same in
    both), sent as SUBJECT with an AUTOSEL-style upstream line; index lines kept, so the
    index guess alone would pick 6.1 (the first of two equal matches)."""
    mbox = make_mbox(tree, work, [
        ("doc: say who moves", [replace("Documentation/admin-guide/cgroup-v1/memory.rst",
                                        "a leader of a thread group", "the mm's owner")])],
        base=TAG, name=name)
    text = mbox.read_text().replace("Subject: [PATCH]", f"Subject: {subject}")
    mbox.write_text(text.replace("\n\nWhy: a test.", "\n\n[ Upstream commit "
                                 "0123456789abcdef0123456789abcdef01234567 ]\n\nWhy: a test."))
    return mbox


def test_a_stable_backport_is_tried_on_its_stable_base_first(two_bases: Path,
                                                            tmp_path: Path) -> None:
    # "[PATCH AUTOSEL 6.12]": the 6.12 base comes before the index guess (which would take
    # 6.1 first) and before newest-first.
    mbox = _doc_backport(two_bases, tmp_path, "[PATCH AUTOSEL 6.12]", "autosel")
    bp = backport_of(series_from(mbox))
    assert bp is not None and (bp.target, bp.autosel) == ("6.12", True)
    assert bp.upstream == ("0123456789abcdef0123456789abcdef01234567",)
    out, state = run_apply(mbox, settings_for(tmp_path, two_bases))
    try:
        d = out.json()
        assert [(t["ref"], t["reason"], t["outcome"]) for t in d["tried"]] == [
            (NEW, "stable backport to 6.12: the tree's 6.12 base", "applied")]
        assert d["base"] == NEW and d["base_reason"] == d["tried"][0]["reason"]
    finally:
        release(state)
    # --base still comes first: the operator said so.
    out, state = run_apply(mbox, settings_for(tmp_path, two_bases), base=TAG)
    try:
        assert [t["reason"] for t in out.json()["tried"]] == ["--base on the command line"]
        assert out.json()["base"] == TAG
    finally:
        release(state)
    cands = candidates(two_bases, None, TAG, (), TAG, (TAG, NEW), (), ("PATCH", "AUTOSEL",
                                                                       "6.12"), "6.12")
    assert [(c.ref, c.reason.split(":")[0]) for c in cands][:3] == [
        (TAG, "--base on the command line"), (NEW, "stable backport to 6.12"),
        (NEW, "the subject prefix [6.12]")]


def test_a_backport_to_a_series_the_tree_lacks_says_so_and_goes_on(two_bases: Path,
                                                                   tmp_path: Path) -> None:
    mbox = _doc_backport(two_bases, tmp_path, "[PATCH 5.10]", "old-stable")
    out, state = run_apply(mbox, settings_for(tmp_path, two_bases))
    try:
        d = out.json()
        first, second = d["tried"][:2]
        assert (first["ref"], first["commit"], first["reason"], first["outcome"]) == (
            "5.10", None, "stable backport to 5.10", "not-found")
        assert first["message"] == "no 5.10 base in the tree (bases: 6.1.999, 6.12.999)"
        # The normal order goes on: the index guess, on which it applies.
        assert second["reason"].startswith("the diffs' index lines") and d["base"] == TAG
        assert out.status == "success"
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


def test_a_series_that_applies_nowhere_is_read_against_the_closest_base(
        two_bases: Path, tmp_path: Path) -> None:
    from dataclasses import replace as dc_replace

    from treehelp import series_from

    from reviewbot.config import RulesSettings
    from reviewbot.engine.stage import rules_stage
    from reviewbot.results import ReviewOptions, ReviewState

    settings = dc_replace(settings_for(tmp_path, two_bases),
                          rules=RulesSettings(facts_dir=str(tmp_path / "facts")))
    for base, comment in ((TAG, OLD_COMMENT), (NEW, NEW_COMMENT)):
        mbox = make_mbox(two_bases, tmp_path, [
            ("mm: memcontrol: reword", [replace("mm/memcontrol.c", comment, "Reworded")])],
            base=base, name=f"on-{base}")
        out = rules_stage(series_from(mbox), ReviewState(), settings,
                          ReviewOptions(use_tree=False, tree=two_bases))
        d = out.json()
        assert d["mode"] == "hunks" and d["rebuilt_base"] == base, d
        assert d["rebuilt_on"] == sh(["git", "rev-parse", base], two_bases).strip()
        assert d["rebuilt_reason"].startswith(f"closest of 2 bases: 1 of 1 hunks' context "
                                              f"found in {base}")


def test_closest_base_counts_hunks_and_breaks_ties_by_the_mails_date() -> None:
    from datetime import UTC, datetime

    from reviewbot.diff import parse_diff
    from reviewbot.engine.closest import closest_base
    from reviewbot.tree.sources import release_date

    diff = ("diff --git a/mm/a.c b/mm/a.c\n--- a/mm/a.c\n+++ b/mm/a.c\n"
            "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -10,3 +10,3 @@\n x\n-y\n+Y\n z\n")
    files = parse_diff(diff, Settings().mail)
    trees = {"new": "a\nb\nc\n", "old": "a\nb\nc\nq\nx\ny\nz\n", "none": "nothing\n"}

    def read(base: str, path: str) -> str | None:
        return trees[base] if path == "mm/a.c" else None

    placed = closest_base(["new", "old"], [files], read)
    assert placed is not None and (placed.base, placed.found, placed.hunks) == ("old", 2, 2)
    assert placed.describe() == "closest of 2 bases: 2 of 2 hunks' context found in old (new 1)"
    assert closest_base(["none"], [files], read) is None  # placed nowhere: no opinion
    # A tie: the base released nearest the mail's date wins, else the first listed.
    trees["old"] = trees["new"]
    dates = {"new": release_date((6, 12, 0)), "old": release_date((6, 1, 0))}
    assert release_date((6, 1, 0)) < datetime(2023, 2, 1, tzinfo=UTC) < release_date((6, 12, 0))
    in_2021 = datetime(2021, 7, 13, tzinfo=UTC)
    in_2025 = datetime(2025, 6, 1, tzinfo=UTC)
    assert closest_base(["new", "old"], [files], read, in_2021, dates).base == "old"
    # A base released after the mail is a tree its author never had: no file of the
    # series is read there unless it is the closest (engine/stage.py other_bases_reader).
    in_2023 = datetime(2023, 2, 1, tzinfo=UTC)
    assert closest_base(["new", "old"], [files], read, in_2023, dates).later == {"new"}
    assert closest_base(["new", "old"], [files], read, in_2021, dates).later == {"new", "old"}
    assert closest_base(["new", "old"], [files], read, in_2025, dates).later == frozenset()
    assert closest_base(["new", "old"], [files], read, in_2025, dates).base == "new"
    assert closest_base(["new", "old"], [files], read).base == "new"


def test_bench_bases_counts_applies_already_in_and_located(
        two_bases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("REVIEWBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    # Three patches written on 6.1: one applies on both bases, one only on 6.1, one is
    # what 6.12 already has.
    mboxes = [
        make_mbox(two_bases, tmp_path, [("doc", [replace(
            "Documentation/admin-guide/cgroup-v1/memory.rst", "a leader", "the leader")])],
            base=TAG, name="doc"),
        make_mbox(two_bases, tmp_path, [("mm: memcontrol: reword", [replace(
            "mm/memcontrol.c", OLD_COMMENT, "Reworded")])], base=TAG, name="old"),
        make_mbox(two_bases, tmp_path, [("mm: memcontrol: as 6.12", [replace(
            "mm/memcontrol.c", OLD_COMMENT, NEW_COMMENT)])], base=TAG, name="same"),
    ]
    path = Path(__file__).resolve().parents[2] / "bench" / "bases.py"
    spec = importlib.util.spec_from_file_location("bench_bases", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_bases", bench)
    spec.loader.exec_module(bench)
    assert bench.main([*map(str, mboxes), "--tree", str(two_bases)]) == 0
    out = capsys.readouterr().out
    assert "3 patch mails, 2 base(s)" in out
    assert f"applies alone on {NEW}: 1 (33.3%)" in out
    assert f"applies alone on {TAG}: 3 (100.0%)" in out
    assert "already in a base (reverse-applies): 0" in out  # all apply on 6.1
    assert "patches touching memcg/cgroup C code: 2" in out


def test_tree_gc_packs_the_imports(two_bases: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REVIEWBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    def loose() -> int:
        counts = dict(line.split(": ") for line in sh(["git", "count-objects", "-v"],
                                                      two_bases).splitlines())
        return int(counts["count"])

    assert loose() > 0
    assert main(["tree", "gc", "--path", str(two_bases)]) == 0
    assert "MiB ->" in capsys.readouterr().out
    assert loose() == 0
    assert sh(["git", "rev-parse", f"{NEW}^"], two_bases) == sh(["git", "rev-parse", TAG], two_bases)
