"""Reusable per-base worktrees, each guarded by a lock file.

Layout under ``tree.worktrees`` (default ~/.cache/reviewbot/worktrees)::

    <tree-id>/<key>/         a linked worktree (git worktree add --detach)
    <tree-id>/<key>.lock     a reviewbot.lock file lock: "pid host start-time" while in use
    <tree-id>/<key>.ready    written once the checkout finished (a killed `worktree add`
                             leaves no .ready, and the directory is made again)
    <tree-id>/.admin.lock    serialises `git worktree add/prune` on the main repository

``tree-id`` is a short hash of the main repository's path, ``key`` the name of the base
(the tag or branch, else the commit's first 12 hex digits); ``key-1``, ``key-2`` are extra
slots when ``tree.worktrees_per_base`` allows more than one.

The lock is ``flock``: the kernel drops it when its holder dies, even by SIGKILL, so a lock
is never stuck. A holder that died without releasing leaves its pid in the file; the next
holder sees that pid is gone and repairs the worktree (aborts the half-done ``git am``,
removes git's own stale ``index.lock``, resets and cleans) before use.

Going back to the base rewrites only files that differ, so unchanged files keep their
modification times and an out-of-tree kernel build (O=) in the build directory of that
base stays incremental: after a clean release :func:`switch_to` checks out just the paths
of ``git diff BASE HEAD`` (tens of milliseconds); after a recovery, ``git reset --hard``
(which stats every file) with a refresh first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from reviewbot.errors import InfraError
from reviewbot.gitcmd import git, git_dir, git_ok
from reviewbot.lock import FileLock, holder_of, is_locked, try_lock, wait_lock
from reviewbot.progress import Progress

log = logging.getLogger(__name__)

# `git worktree add` of a kernel takes ~20 s; waiters queue behind one another.
ADMIN_TIMEOUT_S = 1800.0

_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9._-]+")


def tree_id(repo: Path) -> str:
    """Short stable name for a main repository, so several trees can share one cache."""
    resolved = str(repo.resolve())
    return f"{Path(resolved).name}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


def worktree_key(ref: str, commit: str) -> str:
    """File-name-safe key of a base: the ref name, or the commit's short id for a sha."""
    if re.fullmatch(r"[0-9a-fA-F]{7,64}", ref) or not ref:
        return commit[:12]
    key = _UNSAFE_KEY.sub("_", ref.removeprefix("refs/").replace("/", "_")).strip("._")
    return key or commit[:12]


def lock_slot(
    paths: list[Path], timeout_s: float, out: TextIO | None = None, poll_s: float = 0.2
) -> tuple[int, FileLock]:
    """Lock the first free slot of ``paths``, waiting up to ``timeout_s`` for one.

    Returns:
        (slot index, lock)
    Raises:
        InfraError: no slot became free in time (names the holders).
    """
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        for i, path in enumerate(paths):
            lock = try_lock(path)
            if lock is not None:
                return i, lock
        if time.monotonic() >= deadline:
            holders = ", ".join(f"{p.name}: {holder_of(p) or '?'}" for p in paths)
            raise InfraError(
                f"worktree still locked after {timeout_s:.0f}s (tree.lock_timeout_s): {holders}"
            )
        if not told:
            print(f"reviewbot: waiting for worktree lock ({holder_of(paths[0])})",
                  file=out or sys.stderr, flush=True)
            told = True
        time.sleep(poll_s)


@dataclass
class Worktree:
    """A locked worktree checked out at some commit; release() unlocks it."""

    path: Path
    key: str
    lock: FileLock
    created: bool = False
    recovered_from: int | None = None  # pid of a dead holder whose leftovers were repaired

    def release(self) -> None:
        self.lock.release()


def acquire_worktree(
    repo: Path,
    root: Path,
    key: str,
    commit: str,
    *,
    slots: int = 1,
    timeout_s: float = 600.0,
) -> Worktree:
    """Lock a worktree slot for ``key``, make it if needed, and reset it to ``commit``.

    Raises:
        InfraError: the lock timed out or git failed; the lock is released first.
    """
    base_dir = root / tree_id(repo)
    names = [key] + [f"{key}-{i}" for i in range(1, max(1, slots))]
    idx, lock = lock_slot([base_dir / f"{n}.lock" for n in names], timeout_s)
    path = base_dir / names[idx]
    try:
        created = _ensure(repo, base_dir, path, commit)
        if lock.stale_pid is not None and not created:
            log.warning("recovering worktree %s left by dead pid %s", path, lock.stale_pid)
            kill_leftovers(path)
            repair(path)
        if created or lock.stale_pid is not None or not switch_to(path, commit):
            reset_to(path, commit, refresh=lock.stale_pid is not None)
    except BaseException:
        lock.release()
        raise
    return Worktree(path, names[idx], lock, created, lock.stale_pid)


def _ensure(repo: Path, base_dir: Path, path: Path, commit: str) -> bool:
    ready = path.with_name(path.name + ".ready")
    # A worktree whose main repository was deleted and imported again points at a git
    # directory that is gone: make it again rather than fail on every review.
    if (ready.exists() and (path / ".git").is_file()
            and git(["rev-parse", "--absolute-git-dir"], cwd=path).ok):
        return False
    ready.unlink(missing_ok=True)
    with wait_lock(base_dir / ".admin.lock", ADMIN_TIMEOUT_S, what="git worktree administration"):
        if path.exists():
            kill_leftovers(path)  # a killed run's `git worktree add` may still be writing
            shutil.rmtree(path)  # a checkout that never finished
        git(["worktree", "prune"], cwd=repo)
        # A first checkout of a kernel base writes ~80,000 files (30-90 s on 2 busy cores):
        # said with a heartbeat, or the first review sits silent between "reviewing" and the
        # first stage's output.
        with Progress(sys.stderr, prefix="[apply] ").phase(f"checking out {commit[:12]} into {path}"):
            git_ok(["worktree", "add", "--detach", "--force", str(path), commit], cwd=repo,
                   timeout=3600, what=f"git worktree add {path}")
    ready.write_text(f"{commit}\n", encoding="utf-8")
    return True


def kill_leftovers(path: Path, timeout_s: float = 10.0) -> list[int]:
    """SIGKILL git processes still working in ``path`` after their run died.

    Killing a run with SIGKILL leaves its children alive: a ``git am`` started by the dead
    run goes on writing into the worktree while the next holder repairs it (seen in the
    kill -9 test: "No such file or directory: 'author-script'" as both removed rebase-apply).
    Only processes whose working directory is inside the worktree and whose name starts
    with "git" are touched: a person's shell in there is left alone.
    """
    root = str(path.resolve())
    victims: list[int] = []
    if not Path("/proc/self/cwd").exists():
        return victims  # no procfs: nothing to look at (reviewbot targets Linux)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            comm = (entry / "comm").read_text().strip()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to look at
        inside = cwd == root or cwd.startswith(root + "/")
        # `git worktree add PATH` runs in the main repository, naming the worktree.
        names_it = os.fsencode(root) in argv or os.fsencode(str(path)) in argv
        if (inside or names_it) and comm.startswith("git"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                victims.append(int(entry.name))
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout_s
    while victims and time.monotonic() < deadline:
        victims = [v for v in victims if Path(f"/proc/{v}").exists() and not _zombie(v)]
        time.sleep(0.05)
    return victims


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except (OSError, IndexError):
        return True


def repair(path: Path) -> None:
    """Undo what a killed run may have left: a git am in progress, git's index.lock."""
    gdir = git_dir(path)
    for leftover in ("rebase-apply", "rebase-merge"):
        if (gdir / leftover).exists():
            shutil.rmtree(gdir / leftover, ignore_errors=True)
    for stale in ("index.lock", "HEAD.lock", "ORIG_HEAD.lock"):
        (gdir / stale).unlink(missing_ok=True)
    # Files a killed `git am` wrote but never committed: ignored by the tarball's "/*"
    # .gitignore, so -x is needed; builds live out of tree (O=), nothing else is here.
    git_ok(["clean", "-ffdxq"], cwd=path)


def switch_to(path: Path, commit: str) -> bool:
    """Move a clean worktree from HEAD to ``commit`` touching only the paths that differ.

    The fast path after a clean release: the previous run left HEAD on its last patch with
    index and files equal to HEAD (git am wrote them; the rules, build (O=) and boot
    stages only read the sources). Then the paths in ``git diff base HEAD`` are the only
    ones to put back, and `git checkout --no-overlay BASE -- PATHS` does that while
    stat-ing only those paths, where `reset --hard` stats all 78,635 files of the kernel
    (0.3-0.6 s). Files a series added are removed (--no-overlay).

    Returns:
        False when git refused (then the caller does the full reset).
    """
    gdir = git_dir(path)
    if (gdir / "rebase-apply").exists() or (gdir / "index.lock").exists():
        return False  # an earlier run failed half-way: take the full reset
    head = git(["rev-parse", "-q", "--verify", "HEAD"], cwd=path)
    if not head.ok:
        return False
    if head.stdout.strip() != commit:
        names = git(["diff", "--name-only", "--no-renames", "-z", commit, "HEAD"], cwd=path)
        if not names.ok:
            return False
        if names.stdout:
            res = git(["checkout", "-q", "--no-overlay", commit, "--pathspec-from-file=-",
                       "--pathspec-file-nul"], cwd=path,
                      input_bytes=names.stdout.encode("utf-8", errors="surrogateescape"))
            if not res.ok:
                return False
        if not git(["update-ref", "--no-deref", "HEAD", commit], cwd=path).ok:
            return False
    return True


def reset_to(path: Path, commit: str, *, refresh: bool = False) -> None:
    """Put the worktree at ``commit`` rewriting only files that differ (mtimes survive).

    ``refresh``: first re-read the stat data of every file. `reset --hard` rewrites a file
    whose stat data changed even when its content did not (touch a file, reset, and its
    mtime is new: checked on git 2.39), so after a recovery the refresh keeps those
    mtimes. It costs a stat of every file (~0.35 s on the full tree), and the normal path
    skips it: there only `git am` and `reset` wrote to the worktree, and a file whose stat
    data something else changed has a new mtime already, which make sees either way.
    """
    gdir = git_dir(path)
    # We hold the worktree's lock, so no git of ours runs here: an index.lock is stale.
    (gdir / "index.lock").unlink(missing_ok=True)
    if (gdir / "rebase-apply").exists():
        git(["am", "--abort"], cwd=path)
        if (gdir / "rebase-apply").exists():
            shutil.rmtree(gdir / "rebase-apply", ignore_errors=True)
        refresh = True
    if refresh:
        git(["update-index", "-q", "--refresh"], cwd=path, timeout=1800)
    git_ok(["reset", "-q", "--hard", commit], cwd=path, timeout=1800)


def list_worktrees(repo: Path, root: Path) -> list[dict[str, str]]:
    """Worktrees of ``repo`` under ``root`` with their HEAD and lock holder."""
    base_dir = root / tree_id(repo)
    res = git(["worktree", "list", "--porcelain"], cwd=repo)
    rows: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in res.stdout.splitlines() + [""]:
        if not line:
            if current.get("worktree", "").startswith(str(base_dir)):
                wt = Path(current["worktree"])
                lockf = wt.with_name(wt.name + ".lock")
                current["lock"] = holder_of(lockf) if lockf.exists() else ""
                current["in_use"] = "yes" if lockf.exists() and is_locked(lockf) else "no"
                rows.append(current)
            current = {}
            continue
        name, _, value = line.partition(" ")
        current[name] = value
    return rows
