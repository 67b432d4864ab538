"""tree init: a deterministic, idempotent import; open, status, and the CLI around them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from treehelp import TAG, sh

from reviewbot.cli import main
from reviewbot.errors import BadInputError, InfraError
from reviewbot.progress import Progress
from reviewbot.tree.repo import (
    debian_package_of,
    init_from_git,
    init_from_tarball,
    kernel_version,
    open_tree,
)

QUIET = Progress(heartbeat_s=3600)


def test_kernel_version_reads_the_makefile() -> None:
    text = "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\nNAME = x\n"
    assert kernel_version(text) == "6.1.192"
    assert kernel_version(text.replace("SUBLEVEL = 192", "SUBLEVEL = 0")) == "6.1"
    assert kernel_version(text.replace("EXTRAVERSION =", "EXTRAVERSION = -rc3")) == "6.1.192-rc3"
    with pytest.raises(BadInputError):
        kernel_version("all:\n\techo\n")


def test_import_ignores_debians_gitignore_and_tags_the_version(kernel_tree: Path) -> None:
    files = sh(["git", "ls-files"], kernel_tree).split()
    # The tarball's .gitignore ends with "/*": without -f nothing would be tracked.
    assert {"Makefile", "mm/memcontrol.c", "kernel/exit.c", ".gitignore"} <= set(files)
    assert sh(["git", "ls-files", "-s", "tools/outside"], kernel_tree).startswith("120000")
    assert sh(["git", "ls-files", "-s", "scripts/checkpatch.pl"], kernel_tree).startswith("100755")
    assert sh(["git", "tag"], kernel_tree).split() == [TAG]
    assert sh(["git", "status", "--porcelain"], kernel_tree) == ""
    tree = open_tree(kernel_tree)
    assert (tree.default_base, tree.version) == (TAG, "6.1.999")
    assert tree.source == "linux-source-6.1.tar.xz"
    assert tree.package is None  # a tarball no Debian package owns


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg (Debian)")
def test_debian_package_of_names_the_owner_and_its_revision() -> None:
    owner = sh(["dpkg-query", "-S", "/usr/bin/git"], Path("/")).split(":", 1)[0]
    version = sh(["dpkg-query", "-W", "-f=${Version}", owner], Path("/"))
    assert debian_package_of(Path("/usr/bin/git")) == f"{owner} {version}"
    assert debian_package_of(Path("/nonexistent/linux.tar.xz")) is None


def test_import_commit_id_is_the_same_everywhere(tmp_path: Path, kernel_tarball: Path) -> None:
    a, _ = init_from_tarball(kernel_tarball, tmp_path / "a", QUIET)
    b, _ = init_from_tarball(kernel_tarball, tmp_path / "elsewhere" / "b", QUIET)
    sha_a = sh(["git", "rev-parse", TAG], a.path)
    assert sha_a == sh(["git", "rev-parse", TAG], b.path)
    log = sh(["git", "log", "-1", "--format=%an <%ae> %ad %cn %cd", "--date=iso"], a.path)
    assert log.strip() == ("reviewbot import <reviewbot@localhost> 2000-01-01 00:00:00 +0000 "
                           "reviewbot import 2000-01-01 00:00:00 +0000")


def test_init_is_idempotent(tmp_path: Path, kernel_tarball: Path) -> None:
    dest = tmp_path / "linux"
    first, created = init_from_tarball(kernel_tarball, dest, QUIET)
    head = sh(["git", "rev-parse", "HEAD"], dest)
    again, created_again = init_from_tarball(kernel_tarball, dest, QUIET)
    assert created and not created_again
    assert again == first and sh(["git", "rev-parse", "HEAD"], dest) == head


def test_interrupted_import_is_redone(tmp_path: Path, kernel_tarball: Path) -> None:
    dest = tmp_path / "linux"
    partial = tmp_path / "linux.partial"
    partial.mkdir()
    (partial / "junk").write_text("left by a killed import")
    tree, created = init_from_tarball(kernel_tarball, dest, QUIET)
    assert created and not partial.exists() and not (dest / "junk").exists()


def test_init_refuses_a_foreign_directory(tmp_path: Path, kernel_tarball: Path) -> None:
    dest = tmp_path / "linux"
    dest.mkdir()
    (dest / "precious.txt").write_text("mine")
    with pytest.raises(BadInputError, match="not a tree made by"):
        init_from_tarball(kernel_tarball, dest, QUIET)
    assert (dest / "precious.txt").read_text() == "mine"


def test_missing_tarball_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="linux-source-6.1"):
        init_from_tarball(tmp_path / "nope.tar.xz", tmp_path / "linux", QUIET)


def test_open_tree_without_repository_is_an_infra_error(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="reviewbot tree init"):
        open_tree(tmp_path / "nothing")


def test_from_git_in_place_uses_the_clone_unchanged(tmp_path: Path, kernel_tree: Path) -> None:
    clone = tmp_path / "dev-clone"
    sh(["git", "clone", "-q", str(kernel_tree), str(clone)], tmp_path)
    head = sh(["git", "rev-parse", "HEAD"], clone)
    tree, created = init_from_git(str(clone), None, QUIET)
    assert not created and tree.path == clone
    assert tree.default_base == TAG  # the tag at HEAD came with the clone
    assert sh(["git", "rev-parse", "HEAD"], clone) == head
    assert sh(["git", "status", "--porcelain"], clone) == ""


def test_from_git_clones_to_path_and_tags_head(tmp_path: Path, kernel_tree: Path) -> None:
    src = tmp_path / "upstream"
    sh(["git", "clone", "-q", str(kernel_tree), str(src)], tmp_path)
    sh(["git", "tag", "-d", TAG], src)
    tree, created = init_from_git(str(src), tmp_path / "copy", QUIET)
    assert created and tree.default_base == "v6.1.999-reviewbot"
    assert sh(["git", "rev-parse", "v6.1.999-reviewbot"], tree.path) == sh(
        ["git", "rev-parse", "HEAD"], src)
    again, created_again = init_from_git(str(src), tmp_path / "copy", QUIET)
    assert not created_again and again.default_base == tree.default_base


def test_from_git_rejects_a_non_kernel(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    sh(["git", "init", "-q"], plain)
    (plain / "README").write_text("hi\n")
    sh(["git", "add", "README"], plain)
    sh(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"], plain)
    with pytest.raises(BadInputError, match="not a kernel tree"):
        init_from_git(str(plain), None, QUIET)


def test_cli_init_then_status(tmp_path: Path, kernel_tarball: Path,
                              capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("REVIEWBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "linux"
    assert main(["tree", "init", "--from-tarball", str(kernel_tarball), "--path", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert "created" in out and TAG in out
    assert "unpacking" in err and "adding files" in err and "done in" in err
    assert main(["tree", "init", "--from-tarball", str(kernel_tarball), "--path", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert "already present" in out
    assert main(["tree", "status", "--path", str(dest), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["default_base"] == TAG and info["main_worktree_clean"]
    assert info["package"] is None
    assert info["bases"][0]["commit"] == sh(["git", "rev-parse", TAG], dest).strip()
    # what an import of Debian's tarball records (the test tarball is no package's)
    sh(["git", "config", "--local", "reviewbot.package", "linux-source-6.1 6.1.192-3"], dest)
    assert main(["tree", "status", "--path", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"{TAG} (root): Linux 6.1.999" in out and f"order:    {TAG} " in out
    assert "linux-source-6.1.tar.xz (Debian linux-source-6.1 6.1.192-3)  Linux 6.1.999" in out


def test_cli_status_without_tree_exits_3(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tree", "status", "--path", str(tmp_path / "none")]) == 3
    assert "tree init" in capsys.readouterr().err


def test_cli_init_needs_no_network(tmp_path: Path, kernel_tarball: Path) -> None:
    # --from-git with a local directory never runs git clone over a network.
    dest = tmp_path / "t"
    shutil.copy(kernel_tarball, tmp_path / "k.tar.xz")
    assert main(["tree", "init", "--from-tarball", str(tmp_path / "k.tar.xz"),
                 "--path", str(dest)]) == 0
    assert main(["tree", "init", "--from-git", str(dest)]) == 0


def test_other_tarballs_are_not_tagged_debian(tmp_path: Path, kernel_tarball: Path) -> None:
    renamed = tmp_path / "linux-6.1.999.tar.xz"
    shutil.copy(kernel_tarball, renamed)
    tree, _ = init_from_tarball(renamed, tmp_path / "t", QUIET)
    assert tree.default_base == "v6.1.999-import"
