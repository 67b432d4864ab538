"""Rules against real list traffic: recall on real bugs, noise on correct code.

Two data sets, both third-party mail read from ../shared (skipped with a message when it
is absent):

* ``fixes`` (the default): 147 bug/fix pairs of the cgroups list (../shared/corpus/fixes,
  see bench/evalfixes.py). ``--split tune`` (default) is the half rules are written on;
  ``--split check`` the half they are judged on, run only after a rule is written;
  ``--split all`` prints tune, check and both.
* ``--set real``: the 18 labelled mm->owner/memcg patches of ../shared/corpus/real.

Both end with the noise measure over a year of the list (cgroups-2020.mbox.gz): the
share of patches flagged at warning or above (``--no-mbox`` skips it).

Usage: python bench/eval.py [--set fixes|real] [--split tune|check|all] [-v] [--no-mbox]
                            [--bases REF,REF]

The ``real`` set: runs the rules stage the way ``reviewbot review --no-tree`` does over
../shared/corpus/real/*.patch, and prints per patch the INDEX.tsv label and the rules
that fired (warning and above, then info), followed by:

* recall on risky patches: flagged at warning+ by a rule whose category matches the
  reason INDEX.tsv/REVIEWS.tsv give (the mapping below is per patch *reason*, written from
  INDEX.tsv before looking at the output; a flag by an unrelated rule does not count);
* share of clean patches flagged at warning or above.

A second, unlabelled measure of noise: the same rules over every patch of
../shared/corpus/cgroups-2020.mbox.gz (a year of the cgroups list), counting the patches
flagged at warning or above (--no-mbox skips it).

Targets (issue 10, on the check half): at least half of the target originals flagged at
warning+, at most 10% of the fixes and 2% of the 2020 year's patches.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from reviewbot.config import Settings  # noqa: E402
from reviewbot.engine.stage import rules_stage  # noqa: E402
from reviewbot.mail import read_series  # noqa: E402
from reviewbot.pipeline import ReviewOptions, ReviewState  # noqa: E402
from reviewbot.results import RulesResult  # noqa: E402

SHARED = REPO.parent / "shared" / "corpus"
DEFAULT_CORPUS = SHARED / "real"

# The reason each risky patch is risky (INDEX.tsv evidence column), as the rules that
# express that reason. Written from INDEX.tsv / REVIEWS.tsv, not from the rules' output.
RIGHT_REASON: dict[str, set[str]] = {
    # R05 put-new/leak-old in mm_move_memcg(); R04 css_get on NULL memcg; R11 RCU.
    "001": {"ref-pointer-swap-releases-new", "css-get-maybe-null", "rcu-pointer-plain-access"},
    # R10 fork inherit css_get vs migration put; R11 unannotated mm->memcg; R09 lifetime.
    "002": {"rcu-pointer-plain-access", "charge-before-cgroup-settled", "css-get-under-rcu"},
    # R01 zombie leader / delay_group_leader; O(n) do_each_thread scan in the exit path.
    "003": {"leader-assumption", "tasklist-scan-in-hot-path"},
    # R03 thread_group_leader() gate on charge migration.
    "005": {"leader-assumption", "v1-attach-assumes-process"},
    # goto out of for_each_mem_cgroup() without mem_cgroup_iter_break() (fixed by 022).
    "006": {"memcg-iter-early-exit", "refcount-imbalance"},
    # css_get() after an RCU-protected objcg->memcg read (fixed by 027).
    "007": {"css-get-under-rcu", "ref-pointer-xchg-discarded", "refcount-imbalance"},
    # one css reference shared by many file_regions (fixed by 014).
    "029": {"ref-field-ownership", "refcount-imbalance", "css-get-in-thread-loop"},
}


def load_index(corpus: Path) -> dict[str, dict[str, str]]:
    with (corpus / "INDEX.tsv").open(encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def review_file(path: Path, settings: Settings, options: ReviewOptions) -> tuple[list[dict[str, object]], float, list[str]]:
    start = time.perf_counter()
    found = read_series([path], settings)
    findings: list[dict[str, object]] = []
    notes = [e.error for e in found.errors]
    for series in found.series:
        outcome = rules_stage(series, ReviewState(), settings, options)
        if isinstance(outcome.result, RulesResult):
            notes += outcome.result.skipped
        findings += [
            {"rule": f.rule, "severity": f.severity, "line": f.line, "function": f.function,
             "file": f.file, "message": f.message, "preexisting": f.preexisting}
            for f in outcome.findings
        ]
    return findings, time.perf_counter() - start, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=None)
    ap.add_argument("--set", choices=("fixes", "real"), default="fixes")
    ap.add_argument("--split", choices=("tune", "check", "all"), default="tune")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table (real set)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every finding")
    ap.add_argument("--no-mbox", action="store_true", help="skip the cgroups-2020 noise scan")
    ap.add_argument("--bases", default="",
                    help="comma-separated refs: read the patches against these bases only "
                         "(default: every base of the tree, as a review does)")
    args = ap.parse_args(argv)
    if args.set == "fixes":
        return main_fixes(args)
    args.corpus = args.corpus or DEFAULT_CORPUS
    if not (args.corpus / "INDEX.tsv").is_file():
        print(f"eval: corpus not found at {args.corpus} (needs ../shared/corpus/real); skipped")
        return 0
    index = load_index(args.corpus)
    settings = _settings(args)
    options = ReviewOptions(use_tree=False)
    rows = []
    for name, meta in sorted(index.items()):
        path = args.corpus / name
        if not path.is_file():
            continue
        findings, seconds, notes = review_file(path, settings, options)
        strong = sorted({str(f["rule"]) for f in findings if f["severity"] in ("error", "warning")})
        info = sorted({str(f["rule"]) for f in findings if f["severity"] == "info"} - set(strong))
        key = name[:3]
        right = bool(set(strong) & RIGHT_REASON.get(key, set()))
        rows.append({"patch": key, "label": meta["label"], "fired": strong, "info": info,
                     "right_reason": right, "ms": round(seconds * 1000, 1), "notes": notes,
                     "findings": findings})
    risky = [r for r in rows if r["label"] == "risky"]
    clean = [r for r in rows if r["label"] == "clean"]
    hit = [r for r in risky if r["right_reason"]]
    noisy = [r for r in clean if r["fired"]]
    summary = {
        "risky": len(risky), "risky_flagged_right_reason": len(hit),
        "risky_flagged_any": sum(1 for r in risky if r["fired"]),
        "clean": len(clean), "clean_flagged_warning_plus": len(noisy),
        "clean_share_flagged": round(len(noisy) / len(clean), 3) if clean else 0.0,
    }
    mbox = args.corpus.parent / "cgroups-2020.mbox.gz"
    noise = None if args.no_mbox or not mbox.is_file() else scan_mbox(mbox, settings, options)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary, "mbox": noise}, indent=2))
        return 0
    print(f"{'patch':5} {'label':6} {'ok':3} {'ms':>7}  rules fired (warning+) | info only")
    for r in rows:
        ok = "" if r["label"] == "clean" else ("yes" if r["right_reason"] else "NO")
        if r["label"] == "clean" and r["fired"]:
            ok = "FP"
        print(f"{r['patch']:5} {r['label']:6} {ok:3} {r['ms']:7.1f}  {', '.join(r['fired']) or '-'}"
              f" | {', '.join(r['info']) or '-'}")
        if args.verbose:
            for f in r["findings"]:
                print(f"        {f['severity']:7} {f['rule']} {f['file']}:{f['line']} {f['function']}: {f['message'][:160]}")
    print()
    print(f"recall on risky (right reason): {len(hit)}/{len(risky)}"
          f"  (any warning+: {summary['risky_flagged_any']}/{len(risky)})")
    print(f"clean flagged at warning+: {len(noisy)}/{len(clean)} ({summary['clean_share_flagged']:.0%})"
          + (f" [{', '.join(str(r['patch']) for r in noisy)}]" if noisy else ""))
    if noise is not None:
        print()
        print(f"{mbox.name}: {noise['patches']} patches in {noise['series']} series, "
              f"{noise['flagged']} flagged at warning+ ({noise['flagged'] / max(1, noise['patches']):.1%}), "
              f"{noise['unparsable']} with an unusable diff, {noise['seconds']:.1f} s")
        for hit in noise["hits"]:
            print(f"  {hit}")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    """The default settings, with --bases as the candidate bases (tree.bases): the figures
    depend on which bases the tree holds, and a third base (7.2) changes where some
    patches are read."""
    settings = Settings()
    bases = tuple(b for b in args.bases.split(",") if b)
    return dataclasses.replace(settings, tree=dataclasses.replace(settings.tree, bases=bases)) \
        if bases else settings


def main_fixes(args: argparse.Namespace) -> int:
    from evalfixes import details, load_pairs, table

    corpus = args.corpus or SHARED / "fixes"
    if not (corpus / "LABELS.tsv").is_file():
        print(f"eval: fixes corpus not found at {corpus} (needs ../shared/corpus/fixes); skipped")
        return 0
    settings = _settings(args)
    options = ReviewOptions(use_tree=False)
    splits = {"tune", "check"} if args.split == "all" else {args.split}
    start = time.perf_counter()
    pairs = load_pairs(corpus, splits, settings, options)
    seconds = time.perf_counter() - start
    if args.verbose:
        print("\n".join(details(pairs)))
        print()
    print(f"{len(pairs)} pairs reviewed (original and fix) in {seconds:.1f} s")
    if args.split == "all":
        for split in ("tune", "check"):
            print("\n".join(table([p for p in pairs if p.split == split], f"split {split}:")))
        print("\n".join(table(pairs, "both halves:")))
    else:
        print("\n".join(table(pairs, f"split {args.split}:")))
    mbox = corpus.parent / "cgroups-2020.mbox.gz"
    if not args.no_mbox and mbox.is_file():
        noise = scan_mbox(mbox, settings, options)
        print(f"{mbox.name}: {noise['patches']} patches in {noise['series']} series, "
              f"{noise['flagged']} flagged at warning+ ({noise['flagged'] / max(1, noise['patches']):.1%}), "
              f"{noise['seconds']:.1f} s")
        for hit in noise["hits"]:
            print(f"  {hit}")
    return 0


def scan_mbox(mbox: Path, settings: Settings, options: ReviewOptions) -> dict[str, object]:
    """Rules over every series of a mailing-list archive: how often do they speak up?"""
    start = time.perf_counter()
    found = read_series([mbox], settings)
    patches = flagged = unparsable = 0
    hits: list[str] = []
    for series in found.series:
        outcome = rules_stage(series, ReviewState(), settings, options)
        patches += len(series.patches)
        if isinstance(outcome.result, RulesResult):
            unparsable += len(outcome.result.bad_patches)
        strong = [f for f in outcome.findings if f.severity in ("error", "warning")]
        flagged += len({f.patch_index for f in strong})
        hits += sorted({f"{f.rule}: {series.subject[:60]} ({f.file}, {f.function}())" for f in strong})
    return {"series": len(found.series), "patches": patches, "flagged": flagged,
            "unparsable": unparsable, "hits": hits, "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    raise SystemExit(main())
