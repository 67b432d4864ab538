#!/usr/bin/env python3
"""Boot benchmark: cold build, warm rebuild against plain make, boot and suite time, disk.

Figures (issue 5):
- cold build: the base kernel into an empty O= directory with an empty ccache (--no-cold
  skips it and reports the base build time recorded in the base-result cache instead);
- warm rebuild after one corpus series: reviewbot's sandboxed build (bwrap, ccache, config
  check) of the patched worktree, next to plain `make -j2` (no sandbox, no ccache) on the
  same edit in an O= directory of its own, in the same run; target: within 1.5x;
- boot time (kernel start to init) and suite time (init to "done") from the guest's uptime,
  and QEMU's wall time; target: boot + suite within 60 s on TCG;
- accelerator (KVM only after the probe boot worked) and guest memory (target <= 512 MB);
- disk per base: the tree's .git, the worktree, base sources, O= directories, ccache.

The worktree and the plain-make O= directory are kept under ~/.cache/reviewbot/bench-boot,
so the plain side's own cold build is paid once.

Usage: python bench/boot.py [--series MBOX] [--no-cold] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reviewbot import proc  # noqa: E402
from reviewbot.boot import kbuild, runner  # noqa: E402
from reviewbot.boot.console import parse_console  # noqa: E402
from reviewbot.boot.stage import base_key, ensure_base  # noqa: E402
from reviewbot.config import Settings, load_settings  # noqa: E402

DEFAULT_SERIES = REPO / "corpus" / "01-memcg-charge-move-cleanups.mbox"


def du(path: Path) -> int:
    if not path.exists():
        return 0
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out else 0


def git(*args: str | Path, cwd: Path) -> str:
    result = proc.run(["git", *args], cwd=cwd, timeout=1800)
    if not result.ok:
        raise SystemExit(f"git {' '.join(map(str, args))} failed: {result.excerpt()}")
    return result.stdout


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cold_build(settings: Settings, src: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="rb-cold-", dir=Path(settings.path("{cache}"))) as tmp:
        cold = Settings(**{**settings.__dict__, "build": type(settings.build)(**{**settings.build.__dict__, "ccache_dir": f"{tmp}/ccache"})})
        result = kbuild.build_kernel(cold, src, Path(tmp) / "out")
        if not result.ok:
            raise SystemExit(f"cold build failed: {result.reason}")
        return result.seconds


def plain_make(src: Path, out: Path, jobs: int) -> float:
    """A developer's `make -j2`: no sandbox, no ccache, own O= directory."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **kbuild.BUILD_ENV}
    if not (out / ".config").exists():
        shutil.copyfile(out.parent / "config-for-plain", out / ".config")
        subprocess.run(["make", "-C", str(src), "ARCH=x86_64", f"O={out}", "olddefconfig"], env=env, capture_output=True, check=True)
    start = time.monotonic()
    done = subprocess.run(["make", "-C", str(src), "ARCH=x86_64", f"O={out}", f"-j{jobs}", "bzImage"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"plain make failed: {done.stderr[-2000:]}")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=Path, default=DEFAULT_SERIES)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold build (10 min on 2 cores)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings(None)
    from reviewbot.tree.bases import resolve
    from reviewbot.tree.repo import open_tree

    tree = open_tree(Path(settings.path(settings.tree.path)))
    base, _ = resolve(tree.path, tree.default_base or "HEAD")
    assert base
    jobs = 2
    figures: dict[str, Any] = {"base_commit": base, "jobs": jobs, "guest_memory_mb": settings.vm.memory_mb}

    say("base kernel (cached results unless the first run)")
    result, cached, accel, why = ensure_base(settings, tree.path, base, None, say)
    figures["base_build_recorded_s"] = result.build["seconds"]
    base_src = runner.base_source(settings, tree.path, base)
    if not args.no_cold:
        say("cold build (empty O= and empty ccache)")
        figures["cold_build_s"] = round(cold_build(settings, base_src), 1)

    bench = Path(settings.path("{cache}")) / "bench-boot"
    wt = bench / "worktree"
    if not (wt / "Makefile").exists():
        bench.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--force", "--detach", wt, base, cwd=tree.path)
    proc.run(["git", "am", "--abort"], cwd=wt, timeout=120)  # a previous run stopped mid-way
    git("reset", "-q", "--hard", base, cwd=wt)
    rb_out = bench / "reviewbot-out"
    plain_out = bench / "plain-out"
    shutil.copyfile(runner.out_dir(settings, base, "base") / ".config", bench / "config-for-plain")
    say("bringing both O= directories up to date with the base (the plain one is cold once)")
    prep = kbuild.build_kernel(settings, wt, rb_out, jobs=jobs)
    assert prep.ok, prep.reason
    plain_make(wt, plain_out, jobs)

    say(f"applying {args.series.name}")
    git("-c", "user.name=bench", "-c", "user.email=bench@localhost", "am", "-q", "--3way", "--empty=drop", args.series.resolve(), cwd=wt)
    touched = git("diff", "--name-only", base, "HEAD", cwd=wt).split()
    figures["series"] = args.series.name
    figures["series_files"] = touched
    warm = kbuild.build_kernel(settings, wt, rb_out, jobs=jobs)
    assert warm.ok, warm.reason
    figures["warm_rebuild_reviewbot_s"] = round(warm.seconds, 2)
    figures["warm_rebuild_plain_make_s"] = round(plain_make(wt, plain_out, jobs), 2)
    figures["warm_ratio"] = round(figures["warm_rebuild_reviewbot_s"] / figures["warm_rebuild_plain_make_s"], 2)
    git("reset", "-q", "--hard", base, cwd=wt)

    say("boot + suite on the base kernel")
    out = runner.out_dir(settings, base, "base")
    initrds, _ = runner.prepare_guest(settings, base_src, out)
    run = runner.run_suite(settings, "bench", out / kbuild.IMAGE, initrds, bench / "console.log", accel, say)
    boot, report = run.boot, run.report
    first = parse_console(bench.joinpath("console.boot1.log").read_text(errors="replace"))
    figures.update(
        accel=accel,
        accel_reason=why,
        boot_status=boot.status,
        qemu_wall_s=round(boot.seconds, 1),
        guest_boot_s=first.up_s,
        guest_suite_s=round(first.suite_s, 1) if first.suite_s is not None else None,
        tests_passed=sum(r.status == "pass" for r in report.results.values()),
        tests_total=len(report.results),
    )
    figures["disk_bytes"] = {
        "tree_git": du(tree.path / ".git"),
        "worktree (tree helper, per base)": du(Path(settings.path(settings.tree.worktrees))),
        "base_sources": du(base_src),
        "build_dirs (base + patched O=)": du(runner.build_root(settings) / base),
        "ccache": du(Path(settings.path(settings.build.ccache_dir))),
        "base_results_cache": du(Path(settings.path("{cache}")) / "boot" / "base-results" / base_key(settings, base)),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"base {base[:12]}  accel {accel} ({why})  guest memory {settings.vm.memory_mb} MB")
    if "cold_build_s" in figures:
        print(f"cold build (empty ccache, -j{jobs}):        {figures['cold_build_s']:8.1f} s")
    print(f"base build as recorded:                   {figures['base_build_recorded_s']:8.1f} s")
    print(f"warm rebuild after {args.series.name} ({len(touched)} files)")
    print(f"  reviewbot (bwrap + ccache + checks):    {figures['warm_rebuild_reviewbot_s']:8.2f} s")
    print(f"  plain make -j{jobs}:                        {figures['warm_rebuild_plain_make_s']:8.2f} s")
    print(f"  ratio (target <= 1.5):                  {figures['warm_ratio']:8.2f}")
    print(f"boot to init (guest uptime):              {figures['guest_boot_s']} s")
    print(f"suite (init to done):                     {figures['guest_suite_s']} s")
    print(f"QEMU wall time, boot + suite (target 60): {figures['qemu_wall_s']:8.1f} s  [{boot.status}, {figures['tests_passed']}/{figures['tests_total']} passed]")
    for name, size in figures["disk_bytes"].items():
        print(f"disk {name:<40} {size / 2**20:10.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
