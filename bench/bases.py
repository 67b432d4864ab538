#!/usr/bin/env python3
"""Benchmark: which base takes the list's patches, and how many get whole-function reviews.

    python3 bench/bases.py [MBOX ...] [--tree DIR] [--json]

Default input: a year of the cgroups list (../shared/corpus/cgroups-2020.mbox.gz; skipped
with a message when absent). For every patch mail, on every base of the tree
(`reviewbot tree status` lists them):

- applies: `git apply --cached --check` of the patch alone on the base's tree, in a
  scratch index (`git read-tree`), so no worktree is touched (the measure of issue 13);
- already in: it does not apply but reverse-applies (`--reverse`);
- located: applies nowhere, yet the rules stage (as `review --no-tree` runs it) placed it on
  its closest base and read at least one touched function whole;
- untouched: none of these.

Then, for the patches that touch memcg or cgroup C code (mm/memcontrol*.c, mm/*.c with
memcg in a hunk, kernel/cgroup/), the share that gets a whole-function review: applied on
some base or located. And per base: the time its checks took and the disk its objects
add (`git rev-list --disk-usage --objects`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviewbot.config import Settings, load_settings
from reviewbot.engine.stage import rules_stage
from reviewbot.gitcmd import git, git_ok
from reviewbot.mail import read_series
from reviewbot.model import Patch, Series
from reviewbot.results import ReviewOptions, ReviewState, RulesResult
from reviewbot.tree.repo import open_tree
from reviewbot.tree.sources import newest_first

DEFAULT_MBOX = Path(__file__).resolve().parents[2] / "shared/corpus/cgroups-2020.mbox.gz"
_CGROUP_C = re.compile(r"^(mm/memcontrol[-\w]*\.c|kernel/cgroup/[\w/-]+\.c)$")
_PATH = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


def touches_cgroup_c(diff: str) -> bool:
    for _, path in _PATH.findall(diff):
        if _CGROUP_C.match(path):
            return True
        if path.startswith("mm/") and path.endswith(".c") and "memcg" in diff:
            return True
    return False


class IndexChecker:
    """`git apply --cached --check` against one base's tree in a scratch index."""

    def __init__(self, repo: Path, base: str, scratch: Path) -> None:
        self.repo = repo
        name = re.sub(r"[^\w.-]", "_", base)
        self.env = {"GIT_INDEX_FILE": str(scratch / f"index-{name}")}
        git_ok(["read-tree", base], cwd=repo, env=self.env, timeout=600)
        self.seconds = 0.0

    def check(self, diff: str, reverse: bool = False) -> bool:
        start = time.perf_counter()
        res = git(["apply", "--cached", "--check", *(["--reverse"] if reverse else []), "-"],
                  cwd=self.repo, env=self.env, input_bytes=diff.encode("utf-8", "surrogateescape"),
                  timeout=120)
        self.seconds += time.perf_counter() - start
        return res.ok

    def check_series(self, diffs: list[str], reverse: bool = False) -> bool:
        """Every patch in one input: git apply takes a later patch of a file on the result
        of the earlier one, as git am would; reversed, the last patch goes first."""
        ordered = diffs[::-1] if reverse else diffs
        return self.check("".join(d if d.endswith("\n") else d + "\n" for d in ordered), reverse)


def located_whole(series: Series, patch: Patch, settings: Settings, tree: Path) -> str:
    """"whole" when the rules stage (--no-tree) read at least one of the patch's functions
    whole, "none" when the patch touches no function (declarations, a removed function),
    else "hunks"."""
    one = Series(series_id=patch.message_id, version=series.version, subject=series.subject,
                 author=series.author, expected=1, slots=(None, patch), base_commit=None)
    out = rules_stage(one, ReviewState(), settings, ReviewOptions(use_tree=False, tree=tree))
    res = out.result
    if not isinstance(res, RulesResult):
        return "hunks"
    if res.functions == 0:
        return "none"
    return "whole" if res.rebuilt_on is not None and \
        res.functions > len(res.partial_functions) else "hunks"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mbox", nargs="*", type=Path)
    ap.add_argument("--tree", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    settings = load_settings(None)
    tree_path = args.tree or settings.path(settings.tree.path)
    if not (tree_path / ".git").exists():
        print(f"SKIP: no kernel tree at {tree_path} (run `reviewbot tree init`)")
        return 0
    inputs = args.mbox or [DEFAULT_MBOX]
    missing = [p for p in inputs if not p.is_file()]
    if missing:
        print(f"SKIP: {', '.join(map(str, missing))} absent (../shared not here)")
        return 0
    tree = open_tree(tree_path)
    bases = newest_first(tree_path, list(tree.bases)) or [tree.default_base or "HEAD"]
    found = read_series(inputs, settings)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-bases-") as scratch:
        checkers = {b: IndexChecker(tree_path, b, Path(scratch)) for b in bases}
        start = time.perf_counter()
        for series in found.series:
            for patch in series.patches:
                diff = patch.message.diff or ""
                if not diff:
                    continue
                applies = [b for b in bases if checkers[b].check(diff)]
                already = [] if applies else [b for b in bases if checkers[b].check(diff, True)]
                cgroup_c = touches_cgroup_c(diff)
                # An already-applied patch is read on its base too (its hunks are found
                # as post-images), so it counts as located when the rules read it whole.
                mode = located_whole(series, patch, settings, tree_path) \
                    if not applies and cgroup_c else ""
                located = mode == "whole"
                rows.append({"subject": patch.message.subject.raw[:90], "applies": applies,
                             "already_in": already, "located": located, "cgroup_c": cgroup_c,
                             "no_function": mode == "none"})
        seconds = time.perf_counter() - start
    disk = {}
    for i, base in enumerate(bases):
        others = [f"^{b}" for b in bases[i + 1:]]
        res = git(["rev-list", "--disk-usage", "--objects", base, *others], cwd=tree_path,
                  timeout=600)
        disk[base] = int(res.stdout.strip() or 0) if res.ok else None
    summary = summarise(rows, bases)
    summary["seconds"] = round(seconds, 1)
    summary["check_seconds"] = {b: round(c.seconds, 1) for b, c in checkers.items()}
    summary["disk_bytes_beyond_older_bases"] = disk
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2))
        return 0
    print_table(summary, bases, [p.name for p in inputs])
    return 0


def summarise(rows: list[dict[str, object]], bases: list[str]) -> dict[str, object]:
    n = len(rows)
    out: dict[str, object] = {"patches": n}
    out["applies"] = {b: sum(b in r["applies"] for r in rows) for b in bases}  # type: ignore[operator]
    out["applies_any"] = sum(bool(r["applies"]) for r in rows)
    out["already_in"] = sum(bool(r["already_in"]) for r in rows)
    out["already_in_by_base"] = {b: sum(b in r["already_in"] for r in rows) for b in bases}  # type: ignore[operator]
    cg = [r for r in rows if r["cgroup_c"]]
    out["cgroup_c"] = len(cg)
    out["cgroup_c_applied"] = sum(bool(r["applies"]) for r in cg)
    out["cgroup_c_already_in"] = sum(bool(r["already_in"]) for r in cg)
    out["cgroup_c_located"] = sum(bool(r["located"]) for r in cg)
    out["cgroup_c_located_already_in"] = sum(bool(r["located"] and r["already_in"]) for r in cg)
    out["cgroup_c_no_function"] = sum(bool(r["no_function"]) for r in cg)
    out["cgroup_c_untouched"] = len(cg) - out["cgroup_c_applied"] - out["cgroup_c_located"] \
        - out["cgroup_c_no_function"]  # type: ignore[operator]
    return out


def print_table(s: dict[str, object], bases: list[str], names: list[str]) -> None:
    n = int(s["patches"])  # type: ignore[call-overload]

    def pct(k: int) -> str:
        return f"{k} ({100 * k / n:.1f}%)" if n else "0"

    print(f"{', '.join(names)}: {n} patch mails, {len(bases)} base(s), {s['seconds']} s")
    for b in bases:
        print(f"  applies alone on {b}: {pct(s['applies'][b])}"  # type: ignore[index]
              f"  ({s['check_seconds'][b]} s of checks)")  # type: ignore[index]
    print(f"  applies on either: {pct(int(s['applies_any']))}")  # type: ignore[call-overload]
    print(f"  already in a base (reverse-applies): {pct(int(s['already_in']))}"  # type: ignore[call-overload]
          f" {s['already_in_by_base']}")
    cg = int(s["cgroup_c"])  # type: ignore[call-overload]
    whole = int(s["cgroup_c_applied"]) + int(s["cgroup_c_located"])  # type: ignore[call-overload]
    print(f"patches touching memcg/cgroup C code: {cg}")
    print(f"  applied on a base: {s['cgroup_c_applied']}, located (whole functions read on "
          f"the closest base): {s['cgroup_c_located']} (of them already in a base: "
          f"{s['cgroup_c_located_already_in']} of {s['cgroup_c_already_in']}), "
          f"hunk-only: {s['cgroup_c_untouched']}, touching no function (declarations, "
          f"removals): {s['cgroup_c_no_function']}")
    if cg:
        print(f"  whole-function review (applied or located): {whole}/{cg} "
              f"= {100 * whole / cg:.1f}%")
        fn = cg - int(s["cgroup_c_no_function"])  # type: ignore[call-overload]
        if fn:
            print(f"  of the {fn} that touch a function: {whole}/{fn} = {100 * whole / fn:.1f}%")
    for b, size in dict(s["disk_bytes_beyond_older_bases"]).items():  # type: ignore[call-overload]
        if size is not None:
            print(f"  objects of {b} not in older bases: {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    raise SystemExit(main())
