"""The ``rules`` stage of the pipeline: every rule over every present patch of a series.

When the apply stage left a worktree (``state.applied``), whole functions come from git:
the post-image of patch N from its commit (``state.patch_commits[N]``, else the worktree
file) and its base from the commit before it (else ``state.base_commit``). Otherwise the
functions are rebuilt from the hunks and findings are marked partial.

Its result is a :class:`~reviewbot.results.RulesResult`: the rules run, the mode (``tree``
or ``hunks``), the notices of rules that could not run, the functions seen only through the
hunks or that did not parse, and the findings per severity.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.diff import FileDiff, parse_diff
from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.closest import Placement, closest_base
from reviewbot.engine.loader import Rule, default_rules_dir, load_rules
from reviewbot.engine.postprocess import postprocess
from reviewbot.engine.run import build_file_context, run_rules
from reviewbot.engine.types import PatchContext
from reviewbot.errors import BadInputError, ReviewbotError
from reviewbot.facts.build import facts_for
from reviewbot.facts.fallback import Fallback
from reviewbot.facts.patch import patch_facts
from reviewbot.facts.tables import EMPTY, Facts
from reviewbot.limits import run_bounded
from reviewbot.model import SEVERITIES, Finding, Patch, Series
from reviewbot.results import ApplyResult, ReviewOptions, ReviewState, RulesResult, StageOutcome
from reviewbot.tree.bases import resolve
from reviewbot.tree.blobs import blob_reader
from reviewbot.tree.repo import open_tree
from reviewbot.tree.sources import base_date, base_view

log = logging.getLogger(__name__)


def base_facts(settings: Settings, state: ReviewState, options: ReviewOptions,
               located: str | None = None) -> tuple[Facts, str]:
    """The facts of the base the series applied to, else of the base its hunks are placed
    on (``located``), else of the configured tree's root base (a review that did not apply,
    or --no-tree, still knows what the base's functions do)."""
    if not settings.rules.facts:
        return EMPTY, "facts: off (rules.facts)"
    tree = options.tree or settings.path(settings.tree.path)
    if not (tree / ".git").exists():
        return EMPTY, f"facts: none (no kernel tree at {tree}; run `reviewbot tree init`)"
    try:
        rev = state.base_commit or located or options.base or _default_base(tree)
        facts = _facts_of(tree, rev, settings.path(settings.rules.facts_dir))
    except ReviewbotError as exc:
        log.warning("kernel facts unavailable: %s", exc)
        return EMPTY, f"facts: unavailable ({exc})"
    if facts is None:
        return EMPTY, "facts: none"
    return facts, f"facts: base {facts.revision[:12]}"


def nearest_base_reader(settings: Settings, options: ReviewOptions,
                        facts: Facts) -> Callable[[str], str | None] | None:
    """Files of the base the facts came from, for a series that is reviewed on its hunks."""
    if not settings.rules.rebuild or not facts.revision:
        return None
    reader = blob_reader(options.tree or settings.path(settings.tree.path))
    revision = facts.revision

    def read(path: str) -> str | None:
        try:
            return reader.read(revision, path)
        except ReviewbotError as exc:
            log.warning("cannot read %s of the base: %s", path, exc)
            return None
    return read


def other_bases_reader(settings: Settings, options: ReviewOptions, placed: Placement | None,
                       ) -> Callable[[str], Iterable[tuple[str, str]]] | None:
    """A file in the bases other than the nearest, most hunks found first (the order
    closest_base ranked them in): where the nearest base leaves a file's hunks unplaced,
    engine/run.py reads that file on the one that places them. Bases released after the
    mail are left out: they may hold the series and its fixes, code the author never saw.
    None with --base (the user chose the tree to read against) or no other candidate."""
    ranked = _other_bases(options, placed)
    if not ranked:
        return None
    reader = blob_reader(options.tree or settings.path(settings.tree.path))

    def read(path: str) -> Iterable[tuple[str, str]]:
        for ref in ranked:
            try:
                text = reader.read(ref, path)
            except ReviewbotError as exc:
                log.warning("cannot read %s of %s: %s", path, ref, exc)
                continue
            if text is not None:
                yield ref, text
    return read


def _other_bases(options: ReviewOptions, placed: Placement | None) -> list[str]:
    """The bases other than the nearest the series may have been written against, most
    hunks found first: none released after the mail (they may hold the series and its
    fixes, code the author never saw), none with --base (the user chose the tree)."""
    if placed is None or options.base:
        return []
    score = dict(placed.scores)
    return sorted((ref for ref in score if ref != placed.base and ref not in placed.later),
                  key=lambda ref: -score[ref])


def with_older_bases(facts: Facts, settings: Settings, options: ReviewOptions,
                     placed: Placement | None) -> Facts:
    """The nearest base's facts, asking the other bases the series may have been written
    against about the functions it does not define (facts/fallback.py)."""
    refs = _other_bases(options, placed)
    if not refs or not facts.revision:
        return facts
    tree = options.tree or settings.path(settings.tree.path)
    cache = settings.path(settings.rules.facts_dir)

    def loader(ref: str) -> Callable[[], Facts | None]:
        def load() -> Facts | None:
            try:
                commit = _commit(settings, options, ref)
                return _facts_of(tree, commit, cache) if commit else None
            except ReviewbotError as exc:
                log.warning("kernel facts of %s unavailable: %s", ref, exc)
                return None
        return load
    return Fallback(facts, [loader(ref) for ref in refs])


# Per process: a worker or a scan reviews series after series on the same base, and each
# answer costs git calls (the stored facts themselves are read on demand, see StoredFacts).
@lru_cache(maxsize=8)
def _facts_of(tree: Path, rev: str, cache: Path) -> Facts | None:
    return facts_for(tree, rev, cache,
                     say=lambda text: print(f"reviewbot: {text}", file=sys.stderr, flush=True))


@lru_cache(maxsize=8)
def _default_base(tree: Path) -> str:
    return open_tree(tree).default_base or "HEAD"


def locate(series: Series, series_diffs: list[tuple[FileDiff, ...]], state: ReviewState,
           settings: Settings, options: ReviewOptions) -> Placement | None:
    """The base a series that did not apply (or --no-tree) is read against: --base when
    given, else the closest of the bases the apply stage tried, else of the tree's bases
    (newest first on a tie). None without a tree or with rebuilding off."""
    tree = options.tree or settings.path(settings.tree.path)
    if not settings.rules.rebuild or not (tree / ".git").exists():
        return None
    apply = state.outcomes.get("apply")
    tried = apply.result.tried if apply is not None and isinstance(apply.result, ApplyResult) \
        else []
    if options.base:
        bases = [options.base]
    elif tried:
        bases = list(dict.fromkeys(t.ref for t in tried if t.commit and t.outcome != "duplicate"))
    else:
        bases = list(settings.tree.bases) or list(base_view(tree).order)
    reader = blob_reader(tree)

    def read(base: str, path: str) -> str | None:
        try:
            return reader.read(base, path)
        except ReviewbotError as exc:
            log.warning("cannot read %s of %s: %s", path, base, exc)
            return None

    view = base_view(tree)
    dates = {b: view.dates[b] if b in view.dates else base_date(tree, b) for b in bases}
    when = next((p.message.date for p in series.patches if p.message.date), None)
    try:
        return closest_base(bases, series_diffs, read, when, dates)
    except ReviewbotError as exc:  # a broken tree: read against the root base as before
        log.warning("cannot choose a base to read the series against: %s", exc)
        return None


def _commit(settings: Settings, options: ReviewOptions, ref: str) -> str | None:
    tree = options.tree or settings.path(settings.tree.path)
    known = base_view(tree).commits
    if ref in known:
        return known[ref]
    sha, _ = resolve(tree, ref)
    return sha


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def patch_context(
    patch: Patch,
    settings: Settings,
    *,
    worktree: Path | None = None,
    post_rev: str | None = None,
    base_rev: str | None = None,
    series_removed: list[tuple[str, str]] | None = None,
    series_added: list[tuple[str, str]] | None = None,
    is_last: bool = True,
    files: tuple[FileDiff, ...] | None = None,
    base_reader: Callable[[str], str | None] | None = None,
    other_bases: Callable[[str], Iterable[tuple[str, str]]] | None = None,
) -> PatchContext:
    """Files and functions of one patch (BadInputError when its diff is unusable);
    ``files`` is its parsed diff when the caller has it already; ``base_reader`` gives a
    file of the nearest base, to read whole functions of a patch that did not apply."""
    if files is None:
        files = _parse(patch, settings)
    return PatchContext(
        patch_index=patch.index,
        files=[build_file_context(fd, worktree, post_rev, base_rev, base_reader, other_bases)
               for fd in files],
        worktree=worktree,
        series_removed=series_removed or [],
        series_added=series_added or [],
        is_last=is_last,
    )


def _parse(patch: Patch, settings: Settings) -> tuple[FileDiff, ...]:
    return parse_diff(patch.message.diff or "", settings.mail,
                      source=patch.message.source or patch.message_id)


def parsed_diffs(series: Series, settings: Settings) -> dict[int, tuple[FileDiff, ...] | BadInputError]:
    """Each present patch's parsed diff, or the error that makes it unusable: parsed once,
    for the series' lines and for each patch's functions (unidiff is a fifth of a run)."""
    out: dict[int, tuple[FileDiff, ...] | BadInputError] = {}
    for patch in series.patches:
        try:
            out[patch.index] = _parse(patch, settings)
        except BadInputError as exc:
            out[patch.index] = exc
    return out


def series_lines(
    series: Series,
    settings: Settings,
    parsed: dict[int, tuple[FileDiff, ...] | BadInputError] | None = None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    removed: list[tuple[str, str]] = []
    added: list[tuple[str, str]] = []
    parsed = parsed if parsed is not None else parsed_diffs(series, settings)
    for item in parsed.values():
        if isinstance(item, BadInputError):
            continue
        for fd in item:
            for h in fd.hunks:
                for ln in h.lines:
                    if ln.kind == "-":
                        removed.append((fd.path, ln.text))
                    elif ln.kind == "+":
                        added.append((fd.path, ln.text))
    return removed, added


# Functions of a series' earlier patches kept for the facts of the later ones (oldest
# dropped first: a series of hundreds of patches should not make each patch's facts slow).
MAX_SERIES_VIEWS = 400


def _wants_facts(rules: list[Rule]) -> bool:
    return any(r.engine in ("context", "refcount") for r in rules)


@dataclass
class Prepared:
    """What the rules stage reads before it runs the rules: done in the parent when the
    rules run in a bounded child, so that the process's caches (blobs, facts, bases) stay
    warm from series to series."""

    rules_dir: Path
    rules: list[Rule]
    parsed: dict[int, tuple[FileDiff, ...] | BadInputError]
    placed: Placement | None
    facts: Facts
    facts_note: str


def prepare(series: Series, state: ReviewState, settings: Settings,
            options: ReviewOptions) -> Prepared:
    rules_dir = options.rules_dir or default_rules_dir(settings)
    rules = load_rules(rules_dir)
    use_tree = state.applied and state.worktree is not None
    parsed = parsed_diffs(series, settings)
    placed = None if use_tree else locate(
        series, [d for d in parsed.values() if not isinstance(d, BadInputError)], state, settings, options)
    located = _commit(settings, options, placed.base) if placed else None
    facts, facts_note = base_facts(settings, state, options, located) \
        if _wants_facts(rules) else (EMPTY, "")
    if placed is not None and not use_tree and facts is not EMPTY:
        facts = with_older_bases(facts, settings, options, placed)
    return Prepared(rules_dir, rules, parsed, placed, facts, facts_note)


def rules_stage(
    series: Series, state: ReviewState, settings: Settings, options: ReviewOptions,
    prepared: Prepared | None = None,
) -> StageOutcome:
    ready = prepared or prepare(series, state, settings, options)
    rules_dir, rules, parsed, placed = ready.rules_dir, ready.rules, ready.parsed, ready.placed
    facts, facts_note = ready.facts, ready.facts_note
    use_tree = state.applied and state.worktree is not None
    removed, added = series_lines(series, settings, parsed)
    findings: list[Finding] = []
    skipped: list[str] = []
    partial: list[str] = []
    parse_errors: list[str] = []
    bad_patches: list[str] = []
    functions = 0  # C functions the patches touch (parse_errors and partial are subsets)
    patches = series.patches
    # A series that did not apply is placed hunk by hunk on the nearest base, each patch
    # on the files as the patches before it left them.
    reader = None if use_tree else nearest_base_reader(settings, options, facts)
    others = None if reader is None else other_bases_reader(settings, options, placed)
    rebuilt: dict[str, str] = {}
    read_elsewhere: dict[str, str] = {}  # file -> the base it was read on, when not `placed`

    def read(path: str) -> str | None:
        return rebuilt[path] if path in rebuilt else reader(path) if reader else None

    def read_others(path: str) -> Iterable[tuple[str, str]]:
        # Only a file's first touch: later patches build on what the earlier ones left.
        return () if path in rebuilt or others is None else others(path)

    earlier: dict[tuple[str, str], FunctionView] = {}  # (file, function) -> its latest view
    for n, patch in enumerate(patches):
        post_rev = state.patch_commits.get(patch.index) if use_tree else None
        base_rev = None
        if use_tree:
            base_rev = f"{post_rev}^" if post_rev else state.base_commit
        diff = parsed[patch.index]
        if isinstance(diff, BadInputError):
            bad_patches.append(f"patch {patch.index}: {diff}")
            continue
        ctx = patch_context(
            patch,
            settings,
            worktree=state.worktree if use_tree else None,
            post_rev=post_rev,
            base_rev=base_rev,
            series_removed=removed,
            series_added=added,
            is_last=n == len(patches) - 1,
            files=diff,
            base_reader=read if reader else None,
            other_bases=read_others if others else None,
        )
        for fc in ctx.files:
            if fc.rebuilt_text is not None and fc.diff.new_path:
                rebuilt[fc.diff.new_path] = fc.rebuilt_text
            if fc.read_on:
                read_elsewhere[fc.path] = fc.read_on
        # The patch's own functions on top of the base's, and those the series' earlier
        # patches added or changed (a helper patch 1 adds and patch 2 calls under a lock).
        own = ctx.all_post_views()
        mine = {(v.file, v.name) for v in own}
        ctx.facts = patch_facts([v for k, v in earlier.items() if k not in mine] + own, facts)
        for v in own:
            if not v.partial or (v.file, v.name) not in earlier:
                earlier[(v.file, v.name)] = v
        while len(earlier) > MAX_SERIES_VIEWS:
            earlier.pop(next(iter(earlier)))
        functions += len(own)
        result = run_rules(rules, ctx, coccinelle=settings.rules.coccinelle)
        findings.extend(result.findings)
        skipped.extend(s for s in result.notices if s not in skipped)
        partial.extend(result.partial_functions)
        parse_errors.extend(result.parse_errors)
    findings = postprocess(findings, rules, parsed)
    floor = _rank(settings.rules.min_severity)
    findings = [f for f in findings if _rank(f.severity) <= floor]
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    blocking = any(f.severity in ("error", "warning") and not f.preexisting for f in findings)
    status = "warning" if blocking else "success"
    reason = f"{counts['error'] + counts['warning']} finding(s) at warning or above" if blocking else ""
    if bad_patches:
        status, reason = "fail", "; ".join(bad_patches)
    return StageOutcome(
        name="rules",
        status=status,
        reason=reason,
        result=RulesResult(
            rules_run=len(rules),
            rules_dir=str(rules_dir),
            patches=len(patches),
            mode="tree" if use_tree else "hunks",
            facts=facts_note,
            rebuilt_on=facts.revision if reader else None,
            rebuilt_base=placed.base if reader and placed else None,
            rebuilt_reason=placed.describe() if reader and placed else "",
            rebuilt_elsewhere=read_elsewhere,
            skipped=skipped,
            functions=functions,
            partial_functions=sorted(set(partial)),
            parse_errors=sorted(set(parse_errors)),
            findings_by_severity=counts,
            bad_patches=bad_patches,
        ),
        findings=findings,
    )


def bounded_rules_stage(
    series: Series, state: ReviewState, settings: Settings, options: ReviewOptions
) -> StageOutcome:
    """:func:`rules_stage` under ``rules.time_limit_s`` and ``rules.memory_limit_mb`` (a
    forked child, reviewbot/limits.py): a series too large or too slow to analyse gets a
    ``review-limit`` finding and a failed stage instead of a worker busy for hours."""
    cfg = settings.rules
    ready = prepare(series, state, settings, options)
    lines = sum(len(h.lines) for d in ready.parsed.values() if not isinstance(d, BadInputError)
                for fd in d for h in fd.hunks)
    if lines < cfg.bounded_min_lines:
        # The engines are linear (bench/rules.py --sizes: about 1 s per 1,000 lines at
        # worst): a small series cannot approach the limits, and a fork costs tens of ms.
        return rules_stage(series, state, settings, options, ready)
    done = run_bounded(rules_stage, series, state, settings, options, ready,
                       time_s=cfg.time_limit_s, memory_mb=cfg.memory_limit_mb)
    if done.status == "ok":
        outcome: StageOutcome = done.value
        return outcome
    if done.status == "crash":
        log.error("rules stage crashed in its child process: %s", done.message)
        last = done.message.strip().splitlines()[-1:] or ["no answer"]
        return StageOutcome("rules", "error", f"internal error: {last[0]}")
    if done.status == "timeout":
        why = (f"the rules did not finish in {cfg.time_limit_s:g} s (rules.time_limit_s)")
    else:
        why = (f"the rules needed more than {cfg.memory_limit_mb} MiB of memory "
               "(rules.memory_limit_mb)")
    message = (f"{why}: this series is too large or too slow to analyse; it is not "
               "reviewed by the rules, read it by hand (or raise the limit)")
    finding = Finding(
        rule="review-limit", severity="warning", confidence="high", file="", line=None,
        function=None, message=message, category="limits",
        fingerprint=hashlib.sha256(f"review-limit|{series.content_key}".encode()).hexdigest()[:16],
        patch_index=series.patches[0].index if series.patches else 0)
    return StageOutcome("rules", "fail", why, None, [finding])
