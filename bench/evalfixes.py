"""The rules against real bug/fix pairs of the cgroups list (../shared/corpus/fixes).

Each pair is an original patch as it was posted and the later patch whose ``Fixes:`` line
names it. LABELS.tsv gives each pair a risk class, what it takes to see the bug
(``diff``, ``function``, ``no``) and a split: ``tune`` pairs are for writing rules,
``check`` pairs for measuring them; a rule is judged on ``check`` only after it is
written. The figures:

* originals flagged at warning or above (recall), per class and detectability, and the
  share of those where a finding lies in a file the fix changes (the right place);
* fixes flagged at warning or above: fixes are, as a rule, correct code, so a finding on
  one is likely noise;
* which rules fired on each side, and the share of touched functions tree-sitter parsed
  without error.

Reviews run the way ``reviewbot review --no-tree`` does (hunks only; the tree facts of the
configured base are used when the kernel tree exists, as in a real review of a patch that
does not apply).
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.diff import parse_diff
from reviewbot.engine.stage import rules_stage
from reviewbot.mail import read_series
from reviewbot.pipeline import ReviewOptions, ReviewState
from reviewbot.results import RulesResult

# The classes reviewbot is for (memcg/cgroup lifetime) plus locking: the target.
TARGET_CLASSES = ("refcount", "rcu", "leader-or-zombie", "wrong-cgroup-charge", "exit-scan",
                  "null-mm", "locking")
CLASS_ORDER = (*TARGET_CLASSES, "other-bug", "not-a-bug")
DETECTABLE = ("diff", "function", "no")


@dataclass
class Side:
    """One patch's review: rules that fired at warning+, and where."""

    fired: list[str] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    findings: list[str] = field(default_factory=list)
    functions: int = 0
    parse_errors: int = 0
    seconds: float = 0.0


@dataclass
class Pair:
    id: str
    risk: str
    detectable: str
    split: str
    reason: str
    fix_files: set[str]
    original: Side
    fix: Side

    @property
    def target(self) -> bool:
        return self.risk in TARGET_CLASSES and self.detectable in ("diff", "function")

    @property
    def right_place(self) -> bool:
        return bool(self.original.files & self.fix_files)


def review(path: Path, settings: Settings, options: ReviewOptions) -> Side:
    start = time.perf_counter()
    side = Side()
    found = read_series([path], settings)
    for series in found.series:
        outcome = rules_stage(series, ReviewState(), settings, options)
        result = outcome.result
        if isinstance(result, RulesResult):
            side.functions += result.functions
            side.parse_errors += len(result.parse_errors)
        for f in outcome.findings:
            if f.severity in ("error", "warning") and not f.preexisting:
                side.fired.append(f.rule)
                side.files.add(f.file)
                side.findings.append(f"{f.rule} {f.file}:{f.line} {f.function}(): {f.message[:200]}")
    side.fired = sorted(set(side.fired))
    side.seconds = time.perf_counter() - start
    return side


def touched_files(path: Path, settings: Settings) -> set[str]:
    found = read_series([path], settings)
    files: set[str] = set()
    for series in found.series:
        for patch in series.patches:
            try:
                files |= {fd.path for fd in parse_diff(patch.message.diff or "", settings.mail)}
            except Exception:
                continue
    return files


def load_pairs(corpus: Path, splits: set[str], settings: Settings, options: ReviewOptions) -> list[Pair]:
    with (corpus / "LABELS.tsv").open(encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh, delimiter="\t"))
    pairs = []
    for row in labels:
        if row["split"] not in splits:
            continue
        orig, fix = corpus / f"{row['id']}-original.patch", corpus / f"{row['id']}-fix.patch"
        if not orig.is_file() or not fix.is_file():
            continue
        pairs.append(Pair(row["id"], row["risk_class"], row["detectable"], row["split"],
                          row.get("reason", ""), touched_files(fix, settings),
                          review(orig, settings, options), review(fix, settings, options)))
    return pairs


def table(pairs: list[Pair], title: str) -> list[str]:
    """Per class and detectability: pairs, originals flagged (right place), fixes flagged."""
    out = [title, f"  {'class':20} {'detect':8} {'pairs':>5} {'orig flagged':>13} {'right place':>11} {'fix flagged':>11}"]
    groups: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for p in pairs:
        groups[(p.risk, p.detectable)].append(p)
    for risk in CLASS_ORDER:
        for det in DETECTABLE:
            group = groups.get((risk, det))
            if not group:
                continue
            flagged = sum(1 for p in group if p.original.fired)
            right = sum(1 for p in group if p.original.fired and p.right_place)
            noisy = sum(1 for p in group if p.fix.fired)
            out.append(f"  {risk:20} {det:8} {len(group):5} {flagged:13} {right:11} {noisy:11}")
    target = [p for p in pairs if p.target]
    hit = [p for p in target if p.original.fired]
    right = [p for p in hit if p.right_place]
    fixes = [p for p in pairs if p.fix.fired]
    fns = sum(p.original.functions + p.fix.functions for p in pairs)
    errs = sum(p.original.parse_errors + p.fix.parse_errors for p in pairs)
    out.append(f"  target (lifetime + locking, diff/function): {len(hit)}/{len(target)} originals "
               f"flagged at warning+ ({_pct(len(hit), len(target))}), {len(right)} in a file the fix changes")
    out.append(f"  fixes flagged at warning+: {len(fixes)}/{len(pairs)} ({_pct(len(fixes), len(pairs))})")
    out.append(f"  all originals flagged: {sum(1 for p in pairs if p.original.fired)}/{len(pairs)}")
    out.append(f"  touched functions parsed without error: {fns - errs}/{fns} ({_pct(fns - errs, fns)})")
    orig_rules = Counter(r for p in pairs for r in p.original.fired)
    fix_rules = Counter(r for p in pairs for r in p.fix.fired)
    out.append("  rules fired (originals | fixes): " + (", ".join(
        f"{r} {orig_rules[r]}|{fix_rules[r]}" for r in sorted(set(orig_rules) | set(fix_rules))) or "none"))
    return out


def _pct(a: int, b: int) -> str:
    return f"{a / b:.0%}" if b else "-"


def details(pairs: list[Pair]) -> list[str]:
    out = []
    for p in pairs:
        if not (p.original.fired or p.fix.fired or p.target):
            continue
        mark = "HIT" if p.original.fired and p.target else ("miss" if p.target else "")
        out.append(f"{p.id} {p.split:5} {p.risk}/{p.detectable} {mark}")
        out += [f"    orig: {f}" for f in p.original.findings]
        out += [f"    FIX:  {f}" for f in p.fix.findings]
    return out
