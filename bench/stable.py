#!/usr/bin/env python3
"""Benchmark: the stable backports a list carries, and the base each would be reviewed on.

    python3 bench/stable.py [MBOX ...] [--tree DIR] [--json]

Default input: a year of the cgroups list (../shared/corpus/cgroups-2020.mbox.gz; skipped
with a message when absent). Every series goes through ``mail.stable.backport_of`` (the
subjects and changelog lines of Documentation/process/stable-kernel-rules.rst and AUTOSEL)
and the figures are: backport series and patch mails, AUTOSEL or not, by target version,
how many claim an upstream commit. Then, with a kernel tree (``--tree``, else
``tree.path`` of the configuration):

- the base the apply stage tries first (``tree.bases.candidates`` with the backport's
  target, exactly as the stage calls it), and whether that is the stable step or, for a
  target the tree has no base of, the normal order;
- the base it would be reviewed on: the first candidate on which the series' patches
  apply, checked with ``git apply --cached --check`` in a scratch index per base (no
  worktree touched), else "applies nowhere" (the rules then read its hunks on the closest
  base).

Without a tree it says which targets have a base among Debian's 6.1 and 6.12.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/bases.py

from bases import IndexChecker

from reviewbot.config import load_settings
from reviewbot.mail import read_series
from reviewbot.mail.stable import backport_of
from reviewbot.model import Series
from reviewbot.tree.bases import candidates
from reviewbot.tree.repo import open_tree
from reviewbot.tree.sources import version_key
from reviewbot.tree.stage import subject_prefixes

DEFAULT_MBOX = Path(__file__).resolve().parents[2] / "shared/corpus/cgroups-2020.mbox.gz"
DEBIAN_SERIES = ("6.1", "6.12")  # linux-source-6.1 and linux-source-6.12, tree.sources


def review_base(series: Series, target: str, tree_path: Path, bases: tuple[str, ...],
                default_base: str | None, scratch: Path,
                checkers: dict[str, IndexChecker]) -> dict[str, object]:
    """The first base tried and the base the series would be reviewed on."""
    diffs = [p.message.diff for p in series.patches if p.message.diff]
    cands = candidates(tree_path, series.base_commit, None, (), default_base, bases, diffs,
                       subject_prefixes(series), target)
    stable = next(c for c in cands if c.reason.startswith("stable backport"))
    first = next((c for c in cands if c.commit), None)
    reviewed_on, why = None, "applies nowhere (hunks read on the closest base)"
    seen: set[str] = set()
    for cand in cands:
        if cand.commit is None or cand.commit in seen or not diffs:
            continue
        seen.add(cand.commit)
        if cand.ref not in checkers:
            checkers[cand.ref] = IndexChecker(tree_path, cand.ref, scratch)
        if checkers[cand.ref].check_series(diffs):
            reviewed_on, why = cand.ref, cand.reason
            break
        # What the apply stage does after a conflict: a series that reverse-applies is
        # "already in" that base, and the review stops there.
        if checkers[cand.ref].check_series(diffs, reverse=True):
            reviewed_on, why = cand.ref, "already in this base (reverse-applies)"
            break
    return {"stable_base": stable.ref if stable.commit else None,
            "stable_message": stable.message, "first_tried": first.ref if first else None,
            "first_reason": first.reason if first else "", "reviewed_on": reviewed_on,
            "reviewed_reason": why}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("mbox", nargs="*", type=Path)
    ap.add_argument("--tree", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    inputs = args.mbox or [DEFAULT_MBOX]
    missing = [p for p in inputs if not p.is_file()]
    if missing:
        print(f"SKIP: {', '.join(map(str, missing))} absent (../shared not here)")
        return 0
    settings = load_settings(None)
    tree_path = args.tree or settings.path(settings.tree.path)
    start = time.perf_counter()
    found = read_series(inputs, settings)
    read_s = time.perf_counter() - start
    rows: list[dict[str, object]] = []
    for series in found.series:
        bp = backport_of(series)
        if bp is not None:
            rows.append({"series": series, "subject": series.subject[:80], "target": bp.target,
                         "autosel": bp.autosel, "mails": len(series.patches),
                         "upstream": list(bp.upstream), "unclaimed": list(bp.unclaimed)})
    has_tree = (tree_path / ".git").exists()
    tree_bases: list[str] = []
    if has_tree:
        tree = open_tree(tree_path)
        tree_bases = list(tree.bases)
        with tempfile.TemporaryDirectory(prefix="bench-stable-") as scratch:
            checkers: dict[str, IndexChecker] = {}
            for row in rows:
                row.update(review_base(row["series"], str(row["target"]), tree_path,  # type: ignore[arg-type]
                                       tree.bases, tree.default_base, Path(scratch), checkers))
    for row in rows:
        del row["series"]
    summary = summarise(rows, len(found.series), has_tree)
    summary["read_seconds"] = round(read_s, 1)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2))
        return 0
    print_report(summary, rows, [p.name for p in inputs],
                 str(tree_path) if has_tree else None, tree_bases)
    return 0


def summarise(rows: list[dict[str, object]], n_series: int, has_tree: bool) -> dict[str, object]:
    mails = Counter[str]()
    for r in rows:
        mails["autosel" if r["autosel"] else "other"] += int(r["mails"])  # type: ignore[call-overload]
    targets = Counter(str(r["target"]) for r in rows)
    out: dict[str, object] = {
        "series": n_series,
        "backport_series": len(rows),
        "autosel_series": sum(bool(r["autosel"]) for r in rows),
        "backport_mails": sum(mails.values()),
        "autosel_mails": mails["autosel"],
        "other_mails": mails["other"],
        "claiming_upstream": sum(bool(r["upstream"]) for r in rows),
        "targets": dict(sorted(targets.items(), key=lambda kv: version_key(kv[0]))),
    }
    if has_tree:
        out["on_stable_base"] = sum(r.get("stable_base") is not None for r in rows)
        out["reviewed_on"] = dict(Counter(str(r.get("reviewed_on")) for r in rows))
    else:
        out["targets_with_debian_base"] = sorted(t for t in targets if t in DEBIAN_SERIES)
    return out


def print_report(s: dict[str, object], rows: list[dict[str, object]], names: list[str],
                 tree: str | None, bases: list[str]) -> None:
    print(f"{', '.join(names)}: {s['series']} series, read in {s['read_seconds']} s")
    print(f"  stable backports: {s['backport_series']} series, {s['backport_mails']} patch "
          f"mails ({s['autosel_mails']} AUTOSEL, {s['other_mails']} other); "
          f"{s['claiming_upstream']} series claim an upstream commit")
    targets = s["targets"]
    assert isinstance(targets, dict)
    print("  target versions: " + (", ".join(f"{t}: {n}" for t, n in targets.items())
                                   or "none"))
    if tree is None:
        have = s["targets_with_debian_base"]
        assert isinstance(have, list)
        print(f"  no kernel tree; targets with a base among Debian's "
              f"{' and '.join(DEBIAN_SERIES)}: {', '.join(have) or 'none'}; "
              f"no matching base: {', '.join(t for t in targets if t not in have) or 'none'}")
        return
    print(f"  tree {tree}, bases {', '.join(bases)}:")
    print(f"  tried first on their stable base: {s['on_stable_base']} of {s['backport_series']}")
    for r in rows:
        stable = r["stable_base"] or r["stable_message"]
        kind = "AUTOSEL " if r["autosel"] else ""
        print(f"    [{kind}{r['target']}] {r['subject']} ({r['mails']} mail(s))")
        print(f"        stable step: {stable}")
        print(f"        first tried: {r['first_tried']} ({r['first_reason']}); reviewed on: "
              f"{r['reviewed_on'] or '-'} ({r['reviewed_reason']})")
    reviewed = s["reviewed_on"]
    assert isinstance(reviewed, dict)
    print("  reviewed on: " + ", ".join(f"{'no base (' + 'applies nowhere)' if b == 'None' else b}"
                                        f": {n}" for b, n in reviewed.items())
          + f"; {s['seconds']} s in all")


if __name__ == "__main__":
    raise SystemExit(main())
