#!/usr/bin/env python3
"""Are the mutants caught, and is the clean series clean, run after run? (issue 14)

Reviews each mutant of tests/data/mutants (each breaks a charge test) and of
tests/data/mutants-debug (a use-after-free of a css, an RCU dereference outside the read
lock: bugs the charge tests do not see, which the debug kernel's KASAN, lockdep/PROVE_RCU
or percpu_ref checks report), plus the clean corpus series, with `review --boot` on one
build profile, --runs times. A mutant is caught when the boot stage fails (a confirmed
regression, a new splat, a new kmemleak report in touched code); the clean series must
show no regression and no new splat in every run.

Usage: python bench/mutants.py [--profile fast|debug] [--runs 3] [--only NAME,...] [--json]
Cost on this machine (TCG): fast about 2 min per review; debug 4-8 min per review, plus the
debug base (about 25 min) when it is not cached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.verdict import boot_review  # noqa: E402
from reviewbot.results import BootResult  # noqa: E402

CLEAN = REPO / "corpus" / "01-memcg-charge-move-cleanups.mbox"


def series_list(only: set[str]) -> list[tuple[Path, bool]]:
    """(path, is_mutant) for every mutant and the clean series."""
    data = REPO / "tests" / "data"
    paths = [*sorted((data / "mutants").glob("*.patch")), *sorted((data / "mutants-debug").glob("*.patch"))]
    out = [(p, True) for p in paths] + [(CLEAN, False)]
    return [(p, m) for p, m in out if not only or p.stem in only or p.stem.split("-")[0] in only]


def review_once(path: Path, profile: str) -> dict[str, Any]:
    review, boot, wall = boot_review(path, profile)
    assert isinstance(boot.result, BootResult)
    result = boot.result
    regressions = [t.name for t in result.tests if t.status == "regression"]
    splats = [f"{s.kind}: {s.title}" for s in (result.boot.splats_new if result.boot else [])
              if s.kind != "kmemleak"]
    leaks = [f.message for f in review.findings if f.rule == "boot-kmemleak"]
    return {"status": boot.status, "reason": boot.reason, "seconds": round(wall, 1),
            "regressions": regressions, "new_splats": splats, "kmemleak": leaks,
            "error": result.error}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="debug")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated mutant names or numbers (07,08,01-memcg-...)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for path, mutant in series_list({x for x in args.only.split(",") if x}):
        for run in range(args.runs):
            print(f"[bench] {path.stem}: run {run + 1}/{args.runs} ({args.profile})", file=sys.stderr)
            row = review_once(path, args.profile)
            row.update(series=path.stem, mutant=mutant, run=run + 1)
            row["ok"] = (row["status"] == "fail") if mutant else (
                row["status"] in ("success", "warning") and not row["regressions"] and not row["new_splats"])
            rows.append(row)
            print(f"[bench]   {row['status']} in {row['seconds']} s: {row['reason'][:160]}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"profile {args.profile}, {args.runs} run(s) each; a mutant is caught when the boot stage fails, "
          "the clean series must have no regression and no new splat")
    for name in dict.fromkeys(r["series"] for r in rows):
        mine = [r for r in rows if r["series"] == name]
        good = sum(r["ok"] for r in mine)
        kind = "caught" if mine[0]["mutant"] else "clean"
        print(f"\n{name}: {kind} in {good} of {len(mine)} runs")
        for r in mine:
            what = "; ".join(filter(None, [
                f"regressed {', '.join(r['regressions'])}" if r["regressions"] else "",
                f"new splat(s) {' | '.join(x[:90] for x in r['new_splats'][:3])}" if r["new_splats"] else "",
                f"kmemleak {len(r['kmemleak'])}" if r["kmemleak"] else "",
                r["error"]])) or "nothing new"
            print(f"  run {r['run']}: {r['status']:<8} {r['seconds']:6.0f} s  {what}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
