"""Two reviews at once, a run killed with SIGKILL, and Ctrl-C: locks and cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from treehelp import TAG, make_mbox, replace, series_from, settings_for, sh

from reviewbot.config import Settings
from reviewbot.lock import holder_of, try_lock
from reviewbot.pipeline import ReviewOptions, ReviewState
from reviewbot.tree import apply as apply_mod
from reviewbot.tree.stage import apply_stage
from reviewbot.tree.worktree import acquire_worktree, lock_slot, tree_id

WORKER = Path(__file__).with_name("apply_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _series(kernel_tree: Path, tmp_path: Path, word: str, name: str, n: int = 1) -> Path:
    edits = [(f"mm: memcontrol: say {word}",
              [replace("mm/memcontrol.c", "move a owner of the mm", f"move {word} owner")])]
    for i in range(1, n):
        edits.append((f"mm: note {i}", [_append("mm/memcontrol.c", f"/* note {i} */\n")]))
    return make_mbox(kernel_tree, tmp_path, edits, name=name)


def _append(path: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        with (root / path).open("a") as f:
            f.write(text)
    return apply


def _spawn(tree: Path, worktrees: Path, mbox: Path, hold: float, marker: str, report: Path,
           slots: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(WORKER), str(tree), str(worktrees), str(mbox),
                             str(hold), marker, str(report), str(slots)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_two_reviews_on_one_base_take_turns(tmp_path: Path, kernel_tree: Path) -> None:
    a = _series(kernel_tree, tmp_path, "alpha", "a")
    b = _series(kernel_tree, tmp_path, "beta", "b")
    wts = tmp_path / "wt"
    ra, rb = tmp_path / "a.json", tmp_path / "b.json"
    pa = _spawn(kernel_tree, wts, a, 1.5, "move alpha owner", ra)
    _wait_for(Path(str(ra) + ".applied"))
    pb = _spawn(kernel_tree, wts, b, 0.2, "move beta owner", rb)
    errs = []
    for p in (pa, pb):
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        errs.append(err.decode())
    ja, jb = json.loads(ra.read_text()), json.loads(rb.read_text())
    assert ja["status"] == jb["status"] == "success"
    assert ja["consistent"] and jb["consistent"]  # nobody touched the other's files
    assert ja["data"]["worktree"] == jb["data"]["worktree"]  # one slot: the same worktree
    assert jb["applied"] >= ja["released"]  # B waited for A's lock
    assert "waiting for worktree lock (pid" in errs[1]
    assert sh(["git", "status", "--porcelain", "--ignored"], kernel_tree) == ""


def test_two_slots_let_two_reviews_run_at_once(tmp_path: Path, kernel_tree: Path) -> None:
    a = _series(kernel_tree, tmp_path, "alpha", "a")
    b = _series(kernel_tree, tmp_path, "beta", "b")
    wts = tmp_path / "wt"
    ra, rb = tmp_path / "a.json", tmp_path / "b.json"
    pa = _spawn(kernel_tree, wts, a, 1.5, "move alpha owner", ra, slots=2)
    _wait_for(Path(str(ra) + ".applied"))
    pb = _spawn(kernel_tree, wts, b, 0.2, "move beta owner", rb, slots=2)
    for p in (pa, pb):
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    ja, jb = json.loads(ra.read_text()), json.loads(rb.read_text())
    assert ja["consistent"] and jb["consistent"]
    assert ja["data"]["worktree"] != jb["data"]["worktree"]
    assert Path(jb["data"]["worktree"]).name == f"{TAG}-1"
    assert jb["released"] < ja["released"]  # B ran while A still held its slot


def test_lock_waits_then_times_out_naming_the_holder(tmp_path: Path) -> None:
    from reviewbot.errors import InfraError

    path = tmp_path / "x.lock"
    held = try_lock(path)
    assert held is not None
    assert str(os.getpid()) in holder_of(path)
    with pytest.raises(InfraError, match=f"pid {os.getpid()}"):
        lock_slot([path], timeout_s=0.3)
    held.release()
    idx, again = lock_slot([path], timeout_s=0.3)
    assert idx == 0 and again.stale_pid is None
    again.release()


def test_sigkill_in_the_middle_of_git_am_is_recovered(tmp_path: Path, kernel_tree: Path,
                                                      settings: Settings) -> None:
    """A child locks the worktree, leaves git am stopped, an index.lock and a stray file,
    and is killed with SIGKILL; the next run repairs the worktree and applies normally."""
    conflict = make_mbox(kernel_tree, tmp_path, [("x", [replace(
        "kernel/exit.c", "\tif (mm->owner != NULL && mm->owner != p)\n",
        "\tif (mm->owner != NULL && mm->owner != p) /* x */\n")])],
        prerequisites=[("pre", [replace("kernel/exit.c", "\tif (mm->owner != p)\n",
                                        "\tif (mm->owner != NULL && mm->owner != p)\n")])],
        name="conflict")
    root = tmp_path / "worktrees"
    code = f"""
import os, signal, subprocess, sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from reviewbot.tree.worktree import acquire_worktree
wt = acquire_worktree(Path({str(kernel_tree)!r}), Path({str(root)!r}), {TAG!r},
                      {sh(["git", "rev-parse", TAG], kernel_tree).strip()!r})
env = dict(os.environ, GIT_COMMITTER_NAME="k", GIT_COMMITTER_EMAIL="k@k")
subprocess.run(["git", "am", "-3", {str(conflict)!r}], cwd=wt.path, env=env,
               capture_output=True)
assert (Path(wt.path) / ".." ).exists()
gitdir = subprocess.run(["git", "rev-parse", "--absolute-git-dir"], cwd=wt.path,
                        capture_output=True, text=True).stdout.strip()
assert os.path.isdir(os.path.join(gitdir, "rebase-apply")), "git am did not stop"
open(os.path.join(gitdir, "index.lock"), "w").close()
(Path(wt.path) / "mm" / "stray.o").write_text("half-built")
print(os.getpid(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    dead_pid = int(child.stdout.split()[0])
    wt_path = root / tree_id(kernel_tree) / TAG
    assert (wt_path / "mm/stray.o").exists()
    good = _series(kernel_tree, tmp_path, "gamma", "good")
    state = ReviewState()
    out = apply_stage(series_from(good), state, settings, ReviewOptions())
    try:
        assert out.status == "success", out.json()
        assert out.json()["recovered_from_pid"] == dead_pid
        assert not (wt_path / "mm/stray.o").exists()
        gitdir = Path(sh(["git", "rev-parse", "--absolute-git-dir"], wt_path).strip())
        assert not (gitdir / "rebase-apply").exists() and not (gitdir / "index.lock").exists()
        assert sh(["git", "status", "--porcelain"], wt_path) == ""
    finally:
        for fn in state.release:
            fn()


def test_sigkill_at_a_random_moment_then_next_run_succeeds(tmp_path: Path,
                                                           kernel_tree: Path) -> None:
    long = _series(kernel_tree, tmp_path, "delta", "long", n=40)
    wts = tmp_path / "wt"
    for delay in (0.3, 0.8):
        p = _spawn(kernel_tree, wts, long, 5.0, "move delta owner", tmp_path / "k.json")
        time.sleep(delay)
        p.kill()
        p.wait()
    report = tmp_path / "after.json"
    p = _spawn(kernel_tree, wts, long, 0.0, "move delta owner", report)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    result = json.loads(report.read_text())
    assert result["status"] == "success"
    assert [x["status"] for x in result["data"]["patches"]] == ["applied"] * 40
    assert sh(["git", "status", "--porcelain", "--ignored"], kernel_tree) == ""


def test_ctrl_c_during_git_am_unlocks_and_resets(tmp_path: Path, kernel_tree: Path,
                                                 settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real_git = apply_mod.git

    def interrupted(args, **kw):  # type: ignore[no-untyped-def]
        res = real_git(args, **kw)
        if args and args[0] == "am" and "--3way" in args:
            raise KeyboardInterrupt  # as if Ctrl-C arrived right after git am wrote commits
        return res

    monkeypatch.setattr(apply_mod, "git", interrupted)
    mbox = _series(kernel_tree, tmp_path, "eps", "eps", n=3)
    with pytest.raises(KeyboardInterrupt):
        apply_stage(series_from(mbox), ReviewState(), settings, ReviewOptions())
    wt = tmp_path / "worktrees" / tree_id(kernel_tree) / TAG
    lock = try_lock(wt.with_name(TAG + ".lock"))
    assert lock is not None and lock.stale_pid is None  # released, not abandoned
    lock.release()
    assert sh(["git", "rev-parse", "HEAD"], wt) == sh(["git", "rev-parse", TAG], kernel_tree)
    assert sh(["git", "status", "--porcelain"], wt) == ""


def test_sigint_in_a_later_stage_releases_the_worktree(tmp_path: Path,
                                                       kernel_tree: Path) -> None:
    mbox = _series(kernel_tree, tmp_path, "zeta", "z")
    wts = tmp_path / "wt"
    report = tmp_path / "z.json"
    p = _spawn(kernel_tree, wts, mbox, 30.0, "move zeta owner", report)
    _wait_for(Path(str(report) + ".applied"))
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=60)
    assert p.returncode != 0  # KeyboardInterrupt ended it
    assert json.loads(report.read_text())["released"]
    lock = try_lock(wts / tree_id(kernel_tree) / f"{TAG}.lock")
    assert lock is not None and lock.stale_pid is None
    lock.release()


def test_acquire_recreates_a_worktree_whose_checkout_never_finished(
        tmp_path: Path, kernel_tree: Path) -> None:
    root = tmp_path / "worktrees"
    base = sh(["git", "rev-parse", TAG], kernel_tree).strip()
    wt = acquire_worktree(kernel_tree, root, TAG, base)
    wt.release()
    wt.path.with_name(TAG + ".ready").unlink()  # as if `worktree add` was killed
    (wt.path / "Makefile").unlink()
    again = acquire_worktree(kernel_tree, root, TAG, base)
    try:
        assert again.created and (again.path / "Makefile").exists()
    finally:
        again.release()
    assert settings_for  # the helper stays importable for the other tests


def test_worktree_of_a_reimported_tree_is_made_again(tmp_path: Path, kernel_tree: Path,
                                                      kernel_tarball: Path) -> None:
    import shutil

    from reviewbot.progress import Progress
    from reviewbot.tree.repo import init_from_tarball

    root = tmp_path / "worktrees"
    base = sh(["git", "rev-parse", TAG], kernel_tree).strip()
    acquire_worktree(kernel_tree, root, TAG, base).release()
    shutil.rmtree(kernel_tree)
    init_from_tarball(kernel_tarball, kernel_tree, Progress(heartbeat_s=3600))
    again = acquire_worktree(kernel_tree, root, TAG, base)
    try:
        assert again.created
        assert sh(["git", "rev-parse", "HEAD"], again.path).strip() == base
    finally:
        again.release()
