"""Run rules over one patch: build the functions it touches, compare with the base, and
turn engine hits into :class:`reviewbot.model.Finding` objects.

Base versus patch: every function-level rule runs on the post-image function *and* on the
same function before the patch (from ``git show <parent>:<path>`` when the series applied,
else rebuilt from the hunks' pre-image). A hit whose line-independent signature is also
found in the base is pre-existing: reported as ``info`` and never blamed on the patch.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewbot.diff import FileDiff, Hunk
from reviewbot.engine.anchor import anchor_views
from reviewbot.engine.astq import run_ast
from reviewbot.engine.cfunc import FunctionView, views_from_hunks, views_from_text
from reviewbot.engine.coccinelle import run_coccinelle
from reviewbot.engine.consistency import run_consistency
from reviewbot.engine.consumers import Consumers
from reviewbot.engine.contextrun import run_context
from reviewbot.engine.fieldstores import run_field_stores
from reviewbot.engine.fingerprint import fingerprint, normalize_message
from reviewbot.engine.getremoved import run_get_removed
from reviewbot.engine.helpers import reference_helpers
from reviewbot.engine.loader import Rule
from reviewbot.engine.matchers import run_pattern
from reviewbot.engine.rebuild import NamedViews, named_views, rebuild, rebuilt_views
from reviewbot.engine.refpaths import run_paths, shared_params
from reviewbot.engine.refspec import config_for
from reviewbot.engine.reorder import run_release_order
from reviewbot.engine.types import FileContext, PatchContext, RawFinding
from reviewbot.gitcmd import git
from reviewbot.model import SEVERITIES, Finding

log = logging.getLogger(__name__)

C_SUFFIXES = (".c", ".h")


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    partial_functions: list[str] = field(default_factory=list)  # "file:function"
    parse_errors: list[str] = field(default_factory=list)  # functions tree-sitter recovered
    rules_run: int = 0
    seconds: float = 0.0


class _SafeDict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_message(rule: Rule, captures: dict[str, str]) -> str:
    text = rule.message.strip().format_map(_SafeDict(captures)) + captures.get("parse_note", "")
    return " ".join(text.split())


def _changed_post_lines(fd: FileDiff) -> set[int]:
    """Post-image lines added, plus the lines around a pure removal (its function changed)."""
    return set().union(*(_changed_lines(h) for h in fd.hunks))


def _changed_lines(h: Hunk) -> set[int]:
    """_changed_post_lines() of one hunk."""
    lines: set[int] = set()
    prev_new = h.new_start
    for ln in h.lines:
        if ln.kind == "+" and ln.new_lineno:
            lines.add(ln.new_lineno)
        elif ln.kind == "-":
            lines.add(max(1, prev_new))
        if ln.new_lineno:
            prev_new = ln.new_lineno
    return lines


def git_show(worktree: Path, rev: str, path: str) -> str | None:
    result = git(["show", f"{rev}:{path}"], cwd=worktree, timeout=60)
    return result.stdout if result.ok else None


def build_file_context(
    fd: FileDiff, worktree: Path | None, post_rev: str | None, base_rev: str | None,
    base_reader: Callable[[str], str | None] | None = None,
    other_bases: Callable[[str], Iterable[tuple[str, str]]] | None = None,
) -> FileContext:
    """Functions touched by one file of a patch, post-image and base.

    With ``worktree`` and revisions, whole functions come from git. Otherwise, with
    ``base_reader`` (a path's text in the nearest base), the hunks are placed on that base
    and the functions around them read whole (engine/rebuild.py); else, or where a hunk
    does not fit, from the hunks alone. All but the first are marked partial.

    ``other_bases`` gives the file in the other bases ((ref, text), nearest first): where
    the nearest base leaves hunks of this file unplaced, the file is read on the base
    that places most of them. A series is written against one tree, but the bases are
    snapshots years apart, and the base closest to the series as a whole may have
    rewritten (or not yet have) the code around one file's hunks; a reviewer reads that
    file in the tree where it fits. ``FileContext.read_on`` names that base.
    """
    if fd.is_binary or not fd.path.endswith(C_SUFFIXES):
        return FileContext(fd, [])
    added = frozenset(
        ln.new_lineno for h in fd.hunks for ln in h.lines if ln.kind == "+" and ln.new_lineno
    )
    if worktree is not None and fd.new_path is not None:
        post_text = (
            git_show(worktree, post_rev, fd.new_path)
            if post_rev
            else _read(worktree / fd.new_path)
        )
        if post_text is not None:
            wanted = _changed_post_lines(fd)
            touched: list[FunctionView] = []
            others: list[FunctionView] = []
            for v in views_from_text(fd.path, post_text, added=added):
                first, last = v.node.start_point[0] + 1, v.node.end_point[0] + 1
                (touched if any(first <= w <= last for w in wanted) else others).append(v)
            names = {v.name for v in touched}

            def base_from_git() -> list[FunctionView]:
                if fd.old_path is None or not base_rev:
                    return []
                base_text = git_show(worktree, base_rev, fd.old_path)
                if base_text is None:
                    return []
                return named_views(fd.old_path, base_text, names)

            return FileContext(fd, touched, base_from_git, post_text, others)

    def hunk_views(hunks: list[Hunk] | None = None) -> list[FunctionView]:
        return [v for v in views_from_hunks(fd, post=True, hunks=hunks) if v.touched or _removal_inside(fd, v)]

    post: list[FunctionView] | None = None
    if base_reader is not None and fd.old_path is not None:
        base_text = base_reader(fd.old_path)
        rebuilt = rebuilt_views(fd, base_text) if base_text is not None else None
        read_on = None
        if other_bases is not None and (rebuilt is None or rebuilt[2].missed):
            for ref, text in other_bases(fd.old_path):
                placed = rebuild(fd, text)  # (placing is cheap; parsing waits for a winner)
                # Hunks found already applied do not count: a base that holds the series
                # (and maybe the fix of it) is not the tree the author wrote against.
                if placed.fresh > (len(rebuilt[2].placed) if rebuilt else 0) \
                        and (alt := rebuilt_views(fd, text, placed)) is not None:
                    rebuilt, base_text, read_on = alt, text, ref
                    if not placed.missed:
                        break
        if rebuilt is not None and base_text is not None:
            whole, others, result = rebuilt
            names = {v.name for v in whole}
            # A hunk placed inside the functions read whole is not read again alone
            # (the fragments were a twentieth of a rules run); the others are.
            covered = frozenset().union(*(v.line_set() for v in whole))
            alone = [h for h in fd.hunks if not _changed_lines(h) <= covered]
            post = whole + [v for v in hunk_views(alone) if v.name not in names]
            named = NamedViews(fd.old_path or fd.path, base_text, names)
            _anchor(fd, post, base_text)
            hunks: list[list[FunctionView]] = []  # the pre-image hunks' views, once

            def pre_image() -> list[FunctionView]:
                if not hunks:
                    hunks.append(views_from_hunks(fd, post=False))
                return hunks[0]

            def base_views() -> list[FunctionView]:
                return named.all() + [v for v in pre_image() if v.name not in names]

            def base_named(name: str) -> list[FunctionView]:
                # base_views() filtered by the name, without reading the others.
                if name in names:
                    return named.of(name)
                return [v for v in pre_image() if v.name == name]

            return FileContext(fd, post, base_views, untouched_views=others,
                               line_text=result.line_text, rebuilt_text=result.text,
                               rebuilt_rows=result.line_of_row, base_by_name=base_named,
                               read_on=read_on)
        post = hunk_views()
        if base_text is not None:
            _anchor(fd, post, base_text)
    return FileContext(fd, post if post is not None else hunk_views(),
                       lambda: views_from_hunks(fd, post=False))


def _anchor(fd: FileDiff, post: list[FunctionView], base_text: str) -> None:
    """Fragments read from hunks alone get their place in the base function
    (engine/anchor.py), for the context they are entered in."""
    fragments = [v for v in post if v.partial and not v.shown]
    if fragments:
        anchor_views(fd, fragments, NamedViews(fd.old_path or fd.path, base_text,
                                               {v.name for v in fragments}))


def _removal_inside(fd: FileDiff, view: FunctionView) -> bool:
    return bool(view.line_set() & _changed_post_lines(fd))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _signature(rule: Rule, function: str | None, raw: RawFinding) -> tuple[str, str, str]:
    return (rule.id, function or "", normalize_message(render_message(rule, raw.captures)))


def _moved_signature(rule: Rule, function: str, raw: RawFinding) -> tuple[str, str]:
    """A signature that survives a move to another function: its name left out."""
    message = normalize_message(render_message(rule, raw.captures))
    return rule.id, re.sub(rf"\b{re.escape(function)}\b", "FN", message)


_SPACE = re.compile(r"\s+")
# A removed line that takes or drops a lock (a primitive or a helper: cgroup_lock()).
_LOCK_CALL = re.compile(r"\b\w*(lock|down_read|down_write|up_read|up_write)\w*\s*\(")


def moved_from(ctx: PatchContext, fc: FileContext, view: FunctionView) -> list[FunctionView]:
    """Base functions a new function's code was moved out of: the patch removes (in any
    file) most of what it adds here. A reviewer reads such a hunk as moved code, not as
    new code; what was wrong with it before is not this patch's doing."""
    if fc.base_named(view.name):
        return []  # not a new function
    added = [_SPACE.sub(" ", ln.text.strip()) for h in fc.diff.hunks for ln in h.lines
             if ln.kind == "+" and ln.new_lineno in view.line_set() and len(ln.text.strip()) > 3]
    if len(added) < 3:
        return []
    removed = {_SPACE.sub(" ", ln.text.strip()) for f in ctx.files for h in f.diff.hunks
               for ln in h.lines if ln.kind == "-"}
    if sum(1 for a in added if a in removed) < 0.6 * len(added):
        return []
    return [b for f in ctx.files for b in f.base_views
            if any(_SPACE.sub(" ", b.row_text(n).strip()) in removed for n in b.lines())]


def _moved_from(ctx: PatchContext, fc: FileContext, view: FunctionView) -> list[FunctionView]:
    """:func:`moved_from`, once per function of the patch: every rule that fires on the
    function asks, and the answer compares the whole patch's removed lines."""
    key = f"moved:{id(view)}"  # the view lives as long as the patch context
    found = ctx.memo.get(key)
    if not isinstance(found, list):
        found = ctx.memo[key] = moved_from(ctx, fc, view)
    return found


def _partial_consumers(rule: Rule, ctx: PatchContext) -> Consumers | dict[str, list[Any]]:
    """The patch's functions that consume a passed-in reference on some paths only
    (engine/consumers.py), once per patch and object set, each asked when called."""
    shared = shared_params(rule.params)
    if shared is None:
        return {}
    key = f"consumers:{id(shared)}"
    found = ctx.memo.get(key)
    if not isinstance(found, Consumers):
        config, _ = config_for(shared)
        found = ctx.memo[key] = Consumers(config, ctx.all_post_views(), ctx.facts)
    return found


def _function_hits(rule: Rule, view: FunctionView, ctx: PatchContext) -> list[RawFinding]:
    if rule.engine == "refcount" and rule.params.get("analysis") == "release-order":
        return run_release_order(rule.params, view, ctx)
    if rule.engine == "refcount" and rule.params.get("analysis") == "get-removed":
        return run_get_removed(rule.params, view, ctx)
    if rule.engine == "refcount":
        shared = shared_params(rule.params)
        key = f"helpers:{id(shared) if shared is not None else rule.id}"
        helpers = ctx.memo.get(key)
        if not isinstance(helpers, dict):
            helpers = ctx.memo[key] = reference_helpers(
                shared or rule.params, ctx.all_post_views(), ctx.all_untouched_views()
            )
        return run_paths(rule.params, view, helpers, ctx.facts, memo=ctx.memo,
                         partial=_partial_consumers(rule, ctx))
    if rule.engine == "context":
        return run_context(rule.params, view, ctx.facts, memo=ctx.memo, base=_base_if_unlocked(view, ctx))
    return run_ast(rule.params, view, ctx, str(rule.path))


def _base_if_unlocked(view: FunctionView, ctx: PatchContext) -> Callable[[], list[FunctionView]] | None:
    """The function before the patch, when the patch removes a lock or unlock line from
    the function's file (lock-not-held then asks whether a call still needs a lock the
    patch took away, lock-scope-shrunk whether a write left its section); else None, and
    those two questions are not asked. (Once per function: every context rule asks.)"""
    key = f"base-if-unlocked:{id(view)}"  # the view lives as long as the patch context
    if key in ctx.memo:
        found: Callable[[], list[FunctionView]] | None = ctx.memo[key]  # type: ignore[assignment]
        return found
    found = ctx.memo[key] = _base_if_unlocked_of(view, ctx)
    return found


def _base_if_unlocked_of(view: FunctionView, ctx: PatchContext) -> Callable[[], list[FunctionView]] | None:
    for fc in ctx.files:
        if fc.path != view.file or not any(v is view for v in fc.post_views):
            continue
        key = f"removes-lock:{id(fc)}"  # asked by every context rule of every function
        removes = ctx.memo.get(key)
        if removes is None:
            removes = ctx.memo[key] = any(_LOCK_CALL.search(ln.text)
                                          for h in fc.diff.hunks for ln in h.removed)
        return functools.partial(fc.base_named, view.name) if removes else None
    return None


def run_rules(rules: list[Rule], ctx: PatchContext, *, coccinelle: bool = True) -> RunResult:
    """Every rule over one patch; engine failures become notices, not crashes."""
    start = time.monotonic()
    result = RunResult()
    for fc in ctx.files:
        for v in fc.post_views:
            if v.partial:
                result.partial_functions.append(f"{fc.path}:{v.name}")
            if v.parse_errors:
                result.parse_errors.append(f"{fc.path}:{v.name}")
    for rule in rules:
        result.rules_run += 1
        hits: list[tuple[FileContext | None, str, RawFinding, bool, bool]] = []
        try:
            if rule.engine == "pattern":
                by_path = {fc.path: fc for fc in ctx.files}
                for path, raw in run_pattern(rule, ctx):
                    pfc = by_path.get(path)
                    hits.append((pfc, path, raw, raw.preexisting, pfc.partial if pfc else False))
            elif rule.engine == "coccinelle":
                if not coccinelle:
                    result.notices.append(f"{rule.id}: skipped, Coccinelle disabled (rules.coccinelle)")
                    continue
                found, notice = run_coccinelle(rule, ctx)
                if notice:
                    result.notices.append(notice)
                by_path = {fc.path: fc for fc in ctx.files}
                for path, raw in found:
                    hits.append((by_path.get(path), path, raw, raw.preexisting, False))
            elif rule.engine == "refcount" and rule.params.get("analysis") == "field-stores":
                hits.extend(_field_store_hits(rule, ctx))
            elif rule.engine == "consistency":
                for cfc, raw in run_consistency(rule.params, ctx, rule.applies_to):
                    hits.append((cfc, cfc.path, raw, False, cfc.partial))
            else:
                for fc in ctx.files:
                    if not rule.applies_to(fc.path):
                        continue
                    for view in fc.post_views:
                        raws = _function_hits(rule, view, ctx)
                        if not raws:
                            continue
                        base_sigs = Counter(
                            _signature(rule, b.name, r)
                            for b in fc.base_named(view.name)
                            for r in _function_hits(rule, b, ctx)
                        )
                        # Code moved into a new function: judged against where it came from.
                        moved = Counter(
                            _moved_signature(rule, b.name, r)
                            for b in _moved_from(ctx, fc, view)
                            for r in _function_hits(rule, b, ctx)
                        )
                        if view.parse_errors:
                            # Say so: tree-sitter recovered from errors (kernel macros).
                            raws = [_note_parse(raw) for raw in raws]
                        changed = _changed_post_lines(fc.diff) if rule.engine == "ast" else set()
                        for raw in raws:
                            sig = _signature(rule, view.name, raw)
                            pre = base_sigs[sig] > 0
                            if pre:
                                base_sigs[sig] -= 1
                            elif changed and not changed & {raw.line, *raw.evidence}:
                                # One construct on lines the patch left as they were: it was
                                # there before (a parse of the base fragment may have missed it).
                                pre = True
                            elif moved[_moved_signature(rule, view.name, raw)] > 0:
                                pre = True
                                moved[_moved_signature(rule, view.name, raw)] -= 1
                            # Without a tree the analysis saw only the hunks: partial,
                            # even when a whole new function was visible.
                            hits.append((fc, fc.path, raw, pre, view.partial or fc.partial))
        except Exception as exc:  # one broken rule must not hide the others' findings
            log.exception("rule %s failed", rule.id)
            result.notices.append(f"{rule.id}: engine error: {exc!r}")
            continue
        for hfc, path, raw, pre, partial in hits:
            result.findings.append(_finding(rule, hfc, path, raw, pre, partial, ctx.patch_index))
    result.findings.sort(key=lambda f: (f.file, f.line or 0, SEVERITIES.index(f.severity), f.rule))
    result.seconds = time.monotonic() - start
    return result


def _note_parse(raw: RawFinding) -> RawFinding:
    note = " [the parse of this function was partial: kernel macros tree-sitter could not read]"
    detail = raw.captures.get("detail", "")
    return RawFinding(raw.line, raw.function, {**raw.captures, "parse_note": note,
                      "detail": detail}, raw.evidence, raw.preexisting)


def _field_store_hits(
    rule: Rule, ctx: PatchContext
) -> list[tuple[FileContext | None, str, RawFinding, bool, bool]]:
    files = [fc for fc in ctx.files if rule.applies_to(fc.path)]
    views = [v for fc in files for v in fc.post_views]
    raws = run_field_stores(rule.params, views)
    if not raws:
        return []
    base_views = [v for fc in files for v in fc.base_views]
    base = Counter(_signature(rule, r.function, r) for r in run_field_stores(rule.params, base_views))
    by_name = {(v.name, v.file): fc for fc in files for v in fc.post_views}
    out = []
    for raw in raws:
        fc = next((f for (name, _), f in by_name.items() if name == raw.function), None)
        pre = base[_signature(rule, raw.function, raw)] > 0
        view = next((v for v in views if v.name == raw.function), None)
        partial = bool(view and view.partial) or bool(fc and fc.partial)
        out.append((fc, fc.path if fc else "", raw, pre, partial))
    return out


def _evidence_text(fc: FileContext | None, lines: tuple[int, ...]) -> tuple[str, ...]:
    if fc is None:
        return ()
    text = fc.quotable()
    return tuple(text[n].rstrip() for n in lines if n in text)


def _finding(
    rule: Rule,
    fc: FileContext | None,
    path: str,
    raw: RawFinding,
    preexisting: bool,
    partial: bool,
    patch_index: int,
) -> Finding:
    message = render_message(rule, raw.captures)
    if preexisting:
        message = f"pre-existing (also in the base code): {message}"
    evidence = _evidence_text(fc, raw.evidence)
    return Finding(
        rule=rule.id,
        severity="info" if preexisting else rule.severity,
        confidence=rule.confidence,
        file=path,
        line=raw.line,
        function=raw.function,
        message=message,
        fingerprint=fingerprint(rule.id, path, raw.function, render_message(rule, raw.captures), evidence),
        evidence=evidence,
        partial=partial,
        preexisting=preexisting,
        patch_index=patch_index,
        category=rule.category,
    )
