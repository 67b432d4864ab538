"""The findings of a whole series, made into what a reviewer would say about it.

The engines look at one patch at a time and report every path to a problem; a reviewer
reads the series and says each thing once. Three pure passes (no I/O), run by
:func:`postprocess` from the rules stage, in this order:

1. :func:`with_advice` copies each rule's fix hint and its followable references onto its
   findings, so every report (text, mail, JSON) can print them without the rule files.
2. :func:`final_state` judges the series by its end result: a problem patch N introduces
   and a later patch M removes is not a warning on patch N but one ``info`` finding, a
   bisection hazard fixed by patch M (an LLM reviewer's users counted a quarter of its
   findings on series of four or more patches as this kind of noise).
3. :func:`merge_duplicates` keeps one finding per construct: the refcount engine reports
   a leak once per exit path of the same acquire, a pattern rule once per copy of the
   same line in a function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reviewbot.diff import FileDiff
from reviewbot.engine.cfunc import views_from_hunks
from reviewbot.engine.fingerprint import normalize_message
from reviewbot.engine.loader import Rule
from reviewbot.model import SEVERITIES, Finding, Reference
from reviewbot.references import rule_references

# What engine/run.py puts in front of a finding the base code has too: the same problem
# seen again on a later patch carries it, and must still be recognised as the same one.
PREEXISTING_PREFIX = "pre-existing (also in the base code): "

C_SUFFIXES = (".c", ".h")


def postprocess(
    findings: Sequence[Finding],
    rules: Iterable[Rule],
    diffs: Mapping[int, tuple[FileDiff, ...] | Exception],
) -> list[Finding]:
    """Advice, final state, then one finding per construct (see the module docstring).

    Args:
        findings: every finding of the series' patches, as the engines made them.
        rules: the loaded rules (their ``fix_hint`` and ``references``).
        diffs: each present patch's parsed diff by patch index; an exception for a patch
            whose diff could not be parsed (it then counts as changing nothing).
    Returns:
        The findings to report, in the order given (a merged finding where its first
        duplicate was).
    """
    advised = with_advice(findings, rules)
    changes = series_changes(advised, diffs)
    return merge_duplicates(final_state(advised, changes))


# -- advice -----------------------------------------------------------------------------


def with_advice(findings: Iterable[Finding], rules: Iterable[Rule]) -> list[Finding]:
    """Each rule finding with its rule's fix hint and followable references (a finding that
    already has a hint, or whose rule is unknown - build warnings, splats - is kept as is)."""
    by_id = {r.id: r for r in rules}
    # Worked out for the rules that found something only (reading every rule's references
    # was a few percent of a rules run).
    advice: dict[str, tuple[str, tuple[Reference, ...]]] = {}
    out = []
    for f in findings:
        if f.rule in by_id and not f.fix_hint:
            if f.rule not in advice:
                rule = by_id[f.rule]
                advice[f.rule] = (" ".join(rule.fix_hint.split()), rule_references(rule.references))
            hint, refs = advice[f.rule]
            f = dataclasses.replace(f, fix_hint=hint, references=refs)
        out.append(f)
    return out


# -- duplicates -------------------------------------------------------------------------


def construct_key(finding: Finding) -> tuple[object, ...]:
    """What a finding is about, independent of the path that reached it.

    The first evidence line is the construct for every engine: the refcount engine's leak
    evidence is (acquire, goto, exit) and its ``line`` is the exit, so one acquire leaking
    on three paths shares evidence[0] but not ``line``; the ast and pattern engines give
    the flagged line itself; a field-store finding gives the store. Without evidence, the
    line (else the message) says it.
    """
    if finding.evidence:
        what: object = " ".join(finding.evidence[0].split())
    elif finding.line is not None:
        what = finding.line
    else:
        what = normalize_message(finding.message)
    return (finding.patch_index, finding.rule, finding.file, finding.function, what)


def _rank(f: Finding) -> tuple[int, bool, int]:
    sev = SEVERITIES.index(f.severity) if f.severity in SEVERITIES else len(SEVERITIES)
    return (sev, f.preexisting, f.line or 0)


def merge_duplicates(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per rule, file, function and construct (:func:`construct_key`) of a
    patch: the most severe (then not pre-existing, then the first line) is kept, and the
    lines of the others are noted in its message ("also at lines 412, 430").

    Two rules on the same line stay two findings: each has its own advice.
    """
    groups: dict[tuple[object, ...], list[Finding]] = {}
    for f in findings:
        groups.setdefault(construct_key(f), []).append(f)
    out = []
    for group in groups.values():
        kept = min(group, key=_rank)
        others = sorted({g.line for g in group if g.line is not None and g.line != kept.line})
        if others:
            kept = dataclasses.replace(kept, message=_also_at(kept.message, others))
        out.append(kept)
    return out


def _also_at(message: str, lines: list[int]) -> str:
    where = f"line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}"
    # Rule messages are sentences: "... a use-after-free. Also at lines 6829, 6840."
    return f"{message} Also at {where}." if message.endswith(".") else f"{message} (also at {where})"


# -- the series' final state ----------------------------------------------------------------


@dataclass(frozen=True)
class FunctionChange:
    """What one patch does to one function, as its hunks show it (no tree needed)."""

    removed: frozenset[str]  # lines the patch removes from the function (spaces collapsed)
    shown: frozenset[str]  # the function's lines the hunks show before the patch: context and removed


def _norm(text: str) -> str:
    return " ".join(text.split())


def function_changes(files: Iterable[FileDiff]) -> dict[tuple[str, str], FunctionChange]:
    """The functions a patch changes, by (file, function), with the lines it removes.

    A function is changed when the patch adds a line to it (post-image view) or removes
    one from it (pre-image view): the same hunk-built views the engines name functions by,
    so the names agree with the findings'. A renamed file is known by both paths.
    """
    out: dict[tuple[str, str], FunctionChange] = {}
    for fd in files:
        if fd.is_binary or not fd.path.endswith(C_SUFFIXES):
            continue
        old_text = {ln.old_lineno: ln.text for h in fd.hunks for ln in h.lines
                    if ln.kind in (" ", "-") and ln.old_lineno}
        removed = {n for h in fd.hunks for ln in h.lines if ln.kind == "-" and (n := ln.old_lineno)}
        changed = {v.name for v in views_from_hunks(fd, post=True) if v.touched}
        shown: dict[str, set[str]] = {}
        gone: dict[str, set[str]] = {}
        for v in views_from_hunks(fd, post=False):
            lines = v.line_set()
            shown.setdefault(v.name, set()).update(_norm(old_text[n]) for n in lines if n in old_text)
            cut = {_norm(old_text[n]) for n in lines & removed}
            gone.setdefault(v.name, set()).update(cut)
            if cut:
                changed.add(v.name)
        for name in changed:
            change = FunctionChange(frozenset(gone.get(name, ())), frozenset(shown.get(name, ())))
            for path in {fd.path, fd.old_path or fd.path}:
                out[(path, name)] = change
    return out


def _candidate(f: Finding) -> bool:
    # Pre-existing problems are not the series' doing; series-level findings have no
    # function a later patch could change.
    return not f.preexisting and f.patch_index is not None and f.function is not None


def series_changes(
    findings: Sequence[Finding], diffs: Mapping[int, tuple[FileDiff, ...] | Exception]
) -> dict[int, dict[tuple[str, str], FunctionChange]]:
    """Per patch index, the changed functions of the files that hold a candidate finding of
    an earlier patch (only those are ever asked about; building views costs a parse)."""
    candidates = [f for f in findings if _candidate(f)]
    if not candidates:
        return {}
    first = min(f.patch_index or 0 for f in candidates)
    files = {f.file for f in candidates}
    out: dict[int, dict[tuple[str, str], FunctionChange]] = {}
    for index, parsed in diffs.items():
        if index <= first or isinstance(parsed, Exception):
            continue
        out[index] = function_changes(
            fd for fd in parsed if fd.path in files or fd.old_path in files
        )
    return out


def signature(f: Finding) -> tuple[str, str, str | None, str]:
    """Line-independent identity of a problem (as fingerprints and the base comparison
    use it), also when a later patch reports it as pre-existing."""
    message = f.message.removeprefix(PREEXISTING_PREFIX)
    return (f.rule, f.file, f.function, normalize_message(message))


def _same_problem(f: Finding, g: Finding) -> bool:
    if (f.rule, f.file, f.function) != (g.rule, g.file, g.function):
        return False
    # A later patch may reach the same construct by another path (another message), or
    # the same message on a moved line (another construct): either is the same problem.
    return signature(f) == signature(g) or construct_key(f)[1:] == construct_key(g)[1:]


def fixed_by(
    f: Finding,
    findings: Sequence[Finding],
    changes: Mapping[int, Mapping[tuple[str, str], FunctionChange]],
) -> int | None:
    """The later patch that removes problem F for good, or None.

    Patch M fixes F when M changes F's function, M and every later patch that changes it
    report no finding of the same problem (:func:`_same_problem`), and what M changed
    proves the analysis saw the construct: whole functions were analysed (tree mode, F is
    not partial), or M removes the construct itself (F's first evidence line: the
    acquire of a leak, the flagged line of a pattern), or M's hunks show every evidence
    line (as context or removed: a fix that only adds a ``css_put()`` before the return).
    In hunks mode a later patch that touches another part of the function reports nothing
    simply because its hunks do not show the problem; that is not a fix, and neither is
    removing a line as common as ``return 0;`` somewhere else in the function.
    """
    assert f.patch_index is not None and f.function is not None
    key = (f.file, f.function)
    evidence = {_norm(e) for e in f.evidence if e.strip()}
    construct = _norm(f.evidence[0]) if f.evidence else None
    later = sorted(i for i, c in changes.items() if i > f.patch_index and key in c)
    fixer = None
    for index in later:
        present = any(
            g.patch_index == index and _same_problem(f, g) for g in findings
        )
        if present:
            fixer = None  # still there (or back again): only a later patch can fix it
            continue
        if fixer is not None:
            continue
        change = changes[index][key]
        if not f.partial or construct in change.removed or (evidence and evidence <= change.shown):
            fixer = index
    return fixer


def _hazard(f: Finding, fixer: int) -> Finding:
    return dataclasses.replace(
        f,
        severity="info",
        message=(f"bisection hazard, fixed by patch {fixer} of this series (the commits "
                 f"before it have the problem): {f.message}"),
        fix_hint=(f"Fold the fix from patch {fixer} into patch {f.patch_index}, so that "
                  "every commit of the series is correct on its own: git bisect can stop "
                  "on any of them."),
    )


def final_state(
    findings: Sequence[Finding],
    changes: Mapping[int, Mapping[tuple[str, str], FunctionChange]],
) -> list[Finding]:
    """Judge the series by its final state (see :func:`fixed_by`).

    A problem patch N introduces and patch M fixes becomes one ``info`` finding on patch N
    that names M; the same problem reported again on the patches between N and M (as
    pre-existing, or reached again) is dropped: it is reported once.
    """
    fixes: dict[int, int] = {}  # position in findings -> the patch that fixes it
    for pos, f in enumerate(findings):
        if _candidate(f):
            m = fixed_by(f, findings, changes)
            if m is not None:
                fixes[pos] = m
    out = []
    for pos, g in enumerate(findings):
        earlier = any(
            (f := findings[p]).patch_index is not None and g.patch_index is not None
            and f.patch_index < g.patch_index < m and _same_problem(f, g)
            for p, m in fixes.items()
        )
        if earlier:
            continue  # the same problem, already reported on the patch that introduced it
        out.append(_hazard(g, fixes[pos]) if pos in fixes else g)
    return out
