#!/usr/bin/env python3
"""Benchmark: the apply stage on the full kernel tree next to plain `git am -3` by hand.

    python3 bench/apply.py [--tree DIR] [--series MBOX] [--runs N] [--no-init]

Prints, on the same tree and in the same run:
- `tree init` from Debian's tarball into a scratch directory: time and disk (skipped with
  --no-init or when the tarball is absent);
- the apply stage (base selection, safety checks, lock, reset of the reusable worktree,
  git am --3way, commit mapping) on a 5-patch corpus series, warm, N runs;
- plain `git am -3 MBOX` + `git am --skip` (the cover letter stops git am; a maintainer
  skips it) on the same worktree, and `git am -3` of the five patch mails alone.
The target is an overhead of at most 20% over git am by hand. Exits 0 with "SKIP:" when
there is no tree (run `reviewbot tree init`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.mail import read_series
from reviewbot.pipeline import ReviewOptions, ReviewState
from reviewbot.proc import run
from reviewbot.progress import Progress
from reviewbot.tree.repo import disk_usage, init_from_tarball, open_tree
from reviewbot.tree.stage import apply_stage
from reviewbot.tree.worktree import acquire_worktree

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERIES = ROOT / "corpus" / "01-memcg-charge-move-cleanups.mbox"
MIB = 1024 * 1024


def by_hand_env() -> dict[str, str]:
    # What a person's shell has: their identity; nothing of reviewbot's own git settings.
    return {**os.environ, "LC_ALL": "C", "GIT_COMMITTER_NAME": "Bench Person",
            "GIT_COMMITTER_EMAIL": "bench@example.org"}


def timed_git(args: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> float:
    start = time.monotonic()
    res = run(["git", *args], cwd=cwd, env=by_hand_env(), timeout=600)
    elapsed = time.monotonic() - start
    if res.returncode not in ok_codes:
        raise SystemExit(f"git {' '.join(args)} failed: {res.excerpt()}")
    return elapsed


def bench_init(settings: Settings) -> None:
    tarball = Path("/usr/src/linux-source-6.1.tar.xz")
    if not tarball.is_file():
        print(f"tree init: SKIP: {tarball} absent (apt-get install linux-source-6.1)")
        return
    scratch_parent = settings.path("{cache}")
    scratch_parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-init-", dir=scratch_parent))
    try:
        start = time.monotonic()
        with open(os.devnull, "w") as quiet:
            init_from_tarball(tarball, scratch / "linux", Progress(quiet))
        elapsed = time.monotonic() - start
        git_bytes = disk_usage(scratch / "linux" / ".git")
        total = disk_usage(scratch / "linux")
        files = run(["git", "ls-files"], cwd=scratch / "linux").stdout.count("\n")
        print(f"tree init (tarball {tarball.stat().st_size // MIB} MiB): {elapsed:.1f} s, "
              f"{files} files, .git {git_bytes // MIB} MiB + checkout "
              f"{(total - git_bytes) // MIB} MiB = {total // MIB} MiB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def patches_only(mbox: Path, out: Path) -> None:
    """The same mails without the cover letter (what `b4 am` hands to git am)."""
    text = mbox.read_text()
    mails = text.split("\nFrom ")
    keep = [m for m in mails if "Subject: [PATCH 0/" not in m]
    joined = "\nFrom ".join(keep)
    out.write_text(joined if joined.startswith("From ") else "From " + joined)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="kernel tree (default: tree.path)")
    parser.add_argument("--series", type=Path, default=DEFAULT_SERIES)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-init", action="store_true", help="do not time tree init")
    args = parser.parse_args()
    settings = Settings()
    tree_path = args.tree or settings.path(settings.tree.path)
    if not (tree_path / ".git").exists():
        print(f"SKIP: no kernel tree at {tree_path} (run `reviewbot tree init`)")
        return 0
    tree = open_tree(tree_path)
    (series,) = read_series([args.series], settings).series
    n = len(series.patches)
    print(f"tree {tree_path} ({tree.default_base}), series {args.series.name}: {n} patches, "
          f"{args.runs} runs each, warm")
    if not args.no_init:
        bench_init(settings)
    options = ReviewOptions(tree=tree_path)

    def stage_once() -> tuple[float, Path]:
        state = ReviewState()
        start = time.monotonic()
        out = apply_stage(series, state, settings, options)
        elapsed = time.monotonic() - start
        for fn in reversed(state.release):
            fn()
        if out.status not in ("success", "warning"):
            raise SystemExit(f"apply stage: {out.status}: {out.reason}")
        return elapsed, Path(str(out.json()["worktree"]))

    _, worktree = stage_once()  # warm-up: makes the worktree on a first run
    base = open_tree(tree_path).default_base or "HEAD"
    base_sha = run(["git", "rev-parse", base], cwd=tree_path).stdout.strip()
    only = Path(tempfile.mkstemp(suffix=".mbox")[1])
    patches_only(args.series, only)
    stage: list[float] = []
    hand_cover: list[float] = []
    hand_only: list[float] = []
    hand_reset: list[float] = []
    for _ in range(args.runs):
        stage.append(stage_once()[0])
        # By hand, on the same worktree (holding its lock so that no review interferes).
        wt = acquire_worktree(tree_path, settings.path(settings.tree.worktrees),
                              worktree.name, base_sha)
        try:
            t = timed_git(["am", "-3", str(args.series)], wt.path, ok_codes=(0, 128))
            t += timed_git(["am", "--skip"], wt.path)
            hand_cover.append(t)
            hand_reset.append(timed_git(["reset", "-q", "--hard", base_sha], wt.path))
            hand_only.append(timed_git(["am", "-3", str(only)], wt.path))
            timed_git(["reset", "-q", "--hard", base_sha], wt.path)
        finally:
            wt.release()
    only.unlink()

    def fmt(xs: list[float]) -> str:
        return f"median {statistics.median(xs):6.3f} s  min {min(xs):6.3f} s"

    reset_and_am = [r + a for r, a in zip(hand_reset, hand_only, strict=True)]
    print(f"  reviewbot apply stage             {fmt(stage)}")
    print(f"  by hand: git am -3 MBOX + --skip  {fmt(hand_cover)}")
    print(f"  by hand: git am -3 (patches only) {fmt(hand_only)}")
    print(f"  by hand: git reset --hard base    {fmt(hand_reset)}")
    print(f"  by hand: reset + am (patches)     {fmt(reset_and_am)}")
    # The stage includes putting the reusable worktree back at the base (reset --hard,
    # ~0.4 s on this tree), which the git am rows alone do not.
    for label, ref in (("the same mbox by hand (am -3 + --skip)", hand_cover),
                       ("reset + am -3 of the patches by hand", reset_and_am),
                       ("git am -3 of the patches alone (strictest)", hand_only)):
        over = statistics.median(stage) / statistics.median(ref) - 1
        print(f"  overhead vs {label}: {over * 100:+.0f}% (target: at most +20%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
