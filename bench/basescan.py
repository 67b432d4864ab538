"""Function-level rules over whole files of the base tree, every line taken as new.

Mature kernel code is, as a rule, correct: a function-level rule that fires on many base
functions is noisy. This prints, per rule, the hits over the named files (default: the
cgroup, memcg, exit and fork files a memcg reviewer reads) with the base's facts.

The charging rules (category ``charging``: pattern and consistency engines, which read a
diff rather than one function) see each file as a patch that adds it whole: every line
is new, so an "added" charge or allocation anywhere in mature code counts as a hit.

Usage: python bench/basescan.py [--tree DIR] [--rule ID] [-v] [FILE...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reviewbot.config import Settings  # noqa: E402
from reviewbot.diff import FileDiff, Hunk, Line  # noqa: E402
from reviewbot.engine.cfunc import FunctionView, views_from_text  # noqa: E402
from reviewbot.engine.consistency import run_consistency  # noqa: E402
from reviewbot.engine.loader import Rule, default_rules_dir, load_rules  # noqa: E402
from reviewbot.engine.matchers import run_pattern  # noqa: E402
from reviewbot.engine.run import _function_hits  # noqa: E402
from reviewbot.engine.types import FileContext, PatchContext, RawFinding  # noqa: E402
from reviewbot.facts.build import facts_for  # noqa: E402

FILES = ("mm/memcontrol.c", "kernel/cgroup/cgroup.c", "kernel/cgroup/cgroup-v1.c",
         "kernel/cgroup/cpuset.c", "kernel/cgroup/rstat.c", "kernel/exit.c", "kernel/fork.c",
         "mm/vmscan.c", "block/blk-cgroup.c", "block/blk-iocost.c", "mm/hugetlb_cgroup.c",
         "kernel/cgroup/freezer.c", "mm/page_counter.c", "kernel/cgroup/namespace.c",
         "block/bfq-cgroup.c", "mm/swap_cgroup.c", "kernel/cgroup/pids.c", "mm/oom_kill.c")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", default=list(FILES))
    ap.add_argument("--tree", type=Path, default=None)
    ap.add_argument("--rule", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    settings = Settings()
    tree = args.tree or settings.path(settings.tree.path)
    if not (tree / ".git").exists():
        print(f"basescan: no kernel tree at {tree} (run `reviewbot tree init`); skipped")
        return 0
    facts = facts_for(tree, "HEAD", settings.path(settings.rules.facts_dir))
    every = [r for r in load_rules(default_rules_dir(settings)) if args.rule is None or r.id == args.rule]
    rules = [r for r in every if r.scope == "function" and r.engine in ("refcount", "ast", "context")]
    charging = [r for r in every if r.category == "charging" and r.engine in ("pattern", "consistency")
                and r.scope in ("function", "hunk")]
    hits: Counter[str] = Counter()
    functions = 0
    start = time.perf_counter()
    for rel in args.files:
        path = tree / rel
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = frozenset(range(1, text.count("\n") + 2))
        views = views_from_text(rel, text, added=lines)
        functions += len(views)
        ctx = PatchContext(patch_index=1, files=[], facts=facts or PatchContext(1, []).facts)
        for rule, raw in _charging_hits(charging, rel, text, views, ctx):
            hits[rule.id] += 1
            if args.verbose:
                print(f"{rule.id} {rel}:{raw.line} {raw.function}(): {raw.captures.get('detail', '')[:220]}")
        for rule in rules:
            if not rule.applies_to(rel):
                continue
            for view in views:
                for raw in _function_hits(rule, view, ctx):
                    hits[rule.id] += 1
                    if args.verbose:
                        detail = raw.captures.get("detail", "")[:220]
                        print(f"{rule.id} {rel}:{raw.line} {view.name}(): {detail}")
    print(f"{functions} functions of {len(args.files)} files, {time.perf_counter() - start:.1f} s")
    for rule in [*rules, *charging]:
        print(f"  {rule.id:32} {hits[rule.id]}")
    return 0


def _charging_hits(charging: list[Rule], rel: str, text: str, views: list[FunctionView], base: PatchContext
                   ) -> list[tuple[Rule, RawFinding]]:
    """The diff-reading charging rules over a patch that adds the file whole."""
    if not charging:
        return []
    rows = text.split("\n")
    # One hunk per function (and one per stretch between functions): a rule's "function"
    # region is the hunks that overlap it, and one hunk of the whole file would make every
    # function's region the whole file.
    cuts = sorted({1, len(rows) + 1} | {n for v in views if v.lines() for n in (v.lines()[0], v.lines()[-1] + 1)})
    hunks = tuple(Hunk(0, 0, a, b - a, "", tuple(Line("+", rows[i - 1], None, i) for i in range(a, b)))
                  for a, b in zip(cuts, cuts[1:], strict=False) if b > a)
    diff = FileDiff(None, rel, True, False, False, None, None, False, hunks)
    ctx = PatchContext(patch_index=1, files=[FileContext(diff, post_views=views, post_text=text)],
                       facts=base.facts)
    out: list[tuple[Rule, RawFinding]] = []
    for rule in charging:
        if not rule.applies_to(rel):
            continue
        if rule.engine == "pattern":
            out.extend((rule, raw) for _, raw in run_pattern(rule, ctx))
        else:
            out.extend((rule, raw) for _, raw in run_consistency(rule.params, ctx, rule.applies_to))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
