#!/usr/bin/env python3
"""Time to a boot-tested verdict, warm: `reviewbot review SERIES --boot`, end to end.

Issue 14 item 5: a series that touches only .c files (corpus/01 by default) must reach a
boot-tested verdict in under 60 s on this machine once the base is cached (base results per
base and config, ccache, the O= directory of the apply stage's worktree). Each profile is
reviewed once to warm up (that run can build and boot the base, minutes) and then --runs
times; the figures are the measured runs':

- wall: the whole review (mail, apply, rules, build, boot, compare, coverage);
- build: the patched kernel's build (kbuild reports the objects it compiled);
- guests: the patched run's QEMU wall time (both guests, at once when cores are idle),
  split into booting (kernel start to init, the guest's uptime) and testing (init to the
  end of the suite), from the main guest's console;
- confirm: a second boot of the tests that regressed, when one was needed;
- the rest: apply, rules, guest assembly, coverage, reports.

Usage: python bench/verdict.py [--series MBOX] [--profiles fast,debug] [--runs N] [--json]
The debug profile's first run builds and boots its base when it is not cached (about 25 min
here); `--profiles fast` skips it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reviewbot.boot.console import parse_console  # noqa: E402
from reviewbot.config import load_settings  # noqa: E402
from reviewbot.mail import read_series  # noqa: E402
from reviewbot.pipeline import review_series  # noqa: E402
from reviewbot.results import BootResult, ReviewOptions, SeriesReview, StageOutcome  # noqa: E402

DEFAULT_SERIES = REPO / "corpus" / "01-memcg-charge-move-cleanups.mbox"


def boot_review(series_path: Path, profile: str) -> tuple[SeriesReview, StageOutcome, float]:
    """`review --boot --profile PROFILE` of the latest series in a file: the review, its
    boot stage and the wall time (bench/mutants.py uses it too)."""
    settings = load_settings(None)
    found = read_series([series_path], settings)
    series = [s for s in found.series if s.latest][0]
    start = time.monotonic()
    review = review_series(series, settings, ReviewOptions(boot=True, profile=profile))
    wall = time.monotonic() - start
    boot = review.outcome("boot")
    assert boot is not None and isinstance(boot.result, BootResult), review.outcomes
    return review, boot, wall


def one_review(series_path: Path, profile: str) -> dict[str, Any]:
    _, boot, wall = boot_review(series_path, profile)
    assert isinstance(boot.result, BootResult)
    result = boot.result
    if result.error:
        raise SystemExit(f"boot stage error: {result.error}\n{result.detail}")
    assert result.build is not None and result.boot is not None
    console = Path(result.boot.console or "")
    first = console.with_name(f"{console.stem}.boot1{console.suffix}")
    report = parse_console(first.read_text(errors="replace")) if first.is_file() else None
    figures: dict[str, Any] = {
        "status": boot.status,
        "reason": boot.reason,
        "wall_s": round(wall, 1),
        "build_s": result.build.seconds,
        "guests_s": result.boot.seconds,
        "guest_boot_s": report.up_s if report else None,
        "guest_tests_s": round(report.suite_s, 1) if report and report.suite_s is not None else None,
        "confirmed": result.boot.confirm_console is not None,
        "coverage": result.coverage.status if result.coverage else "off",
        "functions_ran": sum(1 for f in result.coverage.functions if f.executed_by) if result.coverage else None,
        "functions_changed": len(result.coverage.functions) if result.coverage else None,
    }
    figures["rest_s"] = round(wall - figures["build_s"] - figures["guests_s"], 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=Path, default=DEFAULT_SERIES)
    parser.add_argument("--profiles", default="fast", help="comma-separated: fast,debug")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"series": args.series.name, "profiles": {}}
    for profile in [p for p in args.profiles.split(",") if p]:
        print(f"[bench] {profile}: warm-up review (builds and boots the base when not cached)", file=sys.stderr)
        warmup = one_review(args.series, profile)
        runs = []
        for index in range(args.runs):
            print(f"[bench] {profile}: measured review {index + 1}/{args.runs}", file=sys.stderr)
            runs.append(one_review(args.series, profile))
        out["profiles"][profile] = {"warmup": warmup, "runs": runs}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"time to a boot-tested verdict, warm: {args.series.name} (target < 60 s for a .c-only series)")
    for profile, data in out["profiles"].items():
        runs = data["runs"]
        walls = [r["wall_s"] for r in runs]
        print(f"\n{profile}: warm-up {data['warmup']['wall_s']} s; measured runs: median {statistics.median(walls):.1f} s")
        for r in runs:
            wall = r["wall_s"]
            share = {k: r[k] / wall * 100 for k in ("build_s", "guests_s", "rest_s")}
            print(f"  {wall:6.1f} s  build {r['build_s']:5.1f} s ({share['build_s']:.0f}%)  "
                  f"guests {r['guests_s']:5.1f} s ({share['guests_s']:.0f}%: boot to init {r['guest_boot_s']} s, "
                  f"tests {r['guest_tests_s']} s)  rest {r['rest_s']:5.1f} s ({share['rest_s']:.0f}%)"
                  f"{'  + confirming boot' if r['confirmed'] else ''}  [{r['status']}; coverage {r['coverage']}: "
                  f"{r['functions_ran']}/{r['functions_changed']} changed functions ran]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
