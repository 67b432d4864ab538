"""The ``pattern`` engine: regular expressions over the lines a patch adds or removes.

An anchor line (``match``, on added or removed lines) is qualified by ``all`` / ``any`` /
``none`` conditions, each a regex over a region (the hunk, the enclosing function, the
file, the patch) and a kind of line (added, removed, context, post = context + added).
Named groups of the anchor and of ``all`` conditions fill the rule's message.

Moved code is not new code: with ``moved-is-preexisting`` (the default) an added anchor
is pre-existing when the file's removed lines match the anchor as often (a loop moved into
a helper, as in Oleg Nesterov's 2024 mm_update_next_owner() series, is not a new scan).
The ``series`` scope looks at what the whole series leaves behind (leftover users of a
removed field), including, when the series applied, ``git grep`` over the worktree.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reviewbot.diff import FileDiff, Hunk, Line
from reviewbot.engine.loader import Rule
from reviewbot.engine.types import FileContext, PatchContext, RawFinding
from reviewbot.gitcmd import git

_KINDS = {
    "added": ("+",),
    "removed": ("-",),
    "context": (" ",),
    "post": (" ", "+"),
    "any": (" ", "+", "-"),
}


def _lines_of(hunks: Iterable[Hunk], kinds: tuple[str, ...]) -> list[Line]:
    return [ln for h in hunks for ln in h.lines if ln.kind in kinds]


def _file_lines(ctx: PatchContext, fc: FileContext, kinds: tuple[str, ...]) -> list[tuple[Hunk, Line]]:
    """The lines of these kinds in a file's hunks, with their hunk, in order: once per
    patch (every pattern rule looks at each added line of each file; most lines are
    context)."""
    key = f"pattern-lines:{id(fc)}:{kinds}"  # (the file context lives as long as the patch's)
    found = ctx.memo.get(key)
    if not isinstance(found, list):
        found = ctx.memo[key] = [(h, ln) for h in fc.diff.hunks for ln in h.lines if ln.kind in kinds]
    return found


def _function_of(fc: FileContext, hunk: Hunk, line: Line) -> tuple[str | None, frozenset[int]]:
    """Enclosing function name and its post-image line numbers (empty when unknown). A
    removed line is in the function of the post-image line that follows it in its hunk
    (or, at the hunk's end, the one before it)."""
    lineno = line.new_lineno
    if lineno is None and line.kind == "-":
        at = next((i for i, x in enumerate(hunk.lines) if x is line), -1)
        after = [x.new_lineno for x in hunk.lines[at + 1:] if x.new_lineno is not None]
        before = [x.new_lineno for x in hunk.lines[:max(at, 0)] if x.new_lineno is not None]
        lineno = after[0] if after else before[-1] if before else None
    if lineno is not None:
        for view in fc.post_views:
            lines = view.lines()
            if lines and lines[0] <= lineno <= lines[-1] and lineno in view.line_set():
                return view.name, view.line_set()
    return hunk.function, frozenset()


def _region(
    cond: dict[str, Any],
    fc: FileContext,
    ctx: PatchContext,
    hunk: Hunk,
    fn_lines: frozenset[int],
    function: str | None = None,
) -> list[str]:
    kinds = _KINDS[cond.get("lines", "post")]
    where = cond.get("in", "function")
    if where == "hunk":
        return [ln.text for ln in _lines_of([hunk], kinds)]
    if where == "function":
        # The function's name is part of the function (a hunk rarely shows its header);
        # so is the signature git prints after the @@ when the hunk is inside it.
        named = [f"{function}("] if function else []
        if function and hunk.function == function and hunk.section.strip():
            named.append(hunk.section.strip())
        return named + _function_region(kinds, fc, hunk, fn_lines)
    if where == "file":
        return [ln.text for ln in _lines_of(fc.diff.hunks, kinds)]
    return [ln.text for f in ctx.files for ln in _lines_of(f.diff.hunks, kinds)]


def _function_region(
    kinds: tuple[str, ...], fc: FileContext, hunk: Hunk, fn_lines: frozenset[int]
) -> list[str]:
    if not fn_lines:
        return [ln.text for ln in _lines_of([hunk], kinds)]
    # The lines of the hunks inside the function: a removed line (no post-image number)
    # by the post-image lines around it. (Not whole hunks: a hunk that adds three
    # functions would lend each the others' signatures and bodies.)
    texts: list[str] = []
    for h in fc.diff.hunks:
        if not any(x.new_lineno in fn_lines for x in h.lines):
            continue
        before = h.new_start - 1
        for ln in h.lines:
            if ln.new_lineno:
                before = ln.new_lineno
            inside = ln.new_lineno in fn_lines if ln.new_lineno else \
                (before in fn_lines or before + 1 in fn_lines)
            if inside and ln.kind in kinds:
                texts.append(ln.text)
    if fc.post_text is not None and kinds != ("-",):
        # The whole post-image function is known: use it, not only the hunks.
        post = fc.post_text.split("\n")
        texts += [post[n - 1] for n in sorted(fn_lines) if 0 < n <= len(post)]
    elif kinds != ("-",):
        # Or the function rebuilt whole on the nearest base (its signature, above the hunk).
        whole = next((v for v in fc.post_views if v.shown and v.line_set() == fn_lines), None)
        if whole is not None:
            texts += [whole.row_text(n) for n in whole.lines()]
    return texts


def _conditions_hold(
    params: dict[str, Any],
    fc: FileContext,
    ctx: PatchContext,
    hunk: Hunk,
    fn_lines: frozenset[int],
    function: str | None,
) -> tuple[bool, dict[str, str]]:
    captures: dict[str, str] = {}
    # Every value a named group of an ``all`` condition took in its region (each match of
    # each line), for later conditions that name the group as <<name>>.
    seen: dict[str, list[str]] = {}
    referred = any("<<" in c["regex"] for key in ("all", "any", "none") for c in params.get(key) or [])
    for cond in params.get("all") or []:
        region = _region(cond, fc, ctx, hunk, fn_lines, function)
        rx = _with_captures(cond["regex"], seen)
        if rx is None:
            return False, {}
        hit = next((m for t in region if (m := rx.search(t))), None)
        if hit is None:
            return False, {}
        captures.update({k: v for k, v in hit.groupdict().items() if v is not None})
        if referred and rx.groupindex:
            for t in region:
                for m in rx.finditer(t):
                    for k, v in m.groupdict().items():
                        if v is not None and v not in seen.setdefault(k, []):
                            seen[k].append(v)
    anys = [(c, _with_captures(c["regex"], seen)) for c in params.get("any") or []]
    if anys and not any(
        rx is not None and rx.search(t) for c, rx in anys for t in _region(c, fc, ctx, hunk, fn_lines, function)
    ):
        return False, {}
    for cond in params.get("none") or []:
        rx = _with_captures(cond["regex"], seen)
        if rx is not None and any(rx.search(t) for t in _region(cond, fc, ctx, hunk, fn_lines, function)):
            return False, {}
    return True, captures


_REFERENCE = re.compile(r"<<(\w+)>>")


def _with_captures(regex: str, seen: dict[str, list[str]]) -> re.Pattern[str] | None:
    """A condition's regex with each <<name>> replaced by the values an earlier ``all``
    condition's group of that name took (as literal alternatives): "the parameter this
    function tests for NULL is one of its owner parameters". None when a name took no
    value: the condition cannot match."""
    if "<<" not in regex:
        return re.compile(regex)
    missing = False

    def values(m: re.Match[str]) -> str:
        nonlocal missing
        found = seen.get(m.group(1))
        if not found:
            missing = True
            return ""
        return "(?:" + "|".join(re.escape(v) for v in found) + ")"

    expanded = _REFERENCE.sub(values, regex)
    return None if missing else re.compile(expanded)


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def run_pattern(rule: Rule, ctx: PatchContext) -> list[tuple[str, RawFinding]]:
    params = rule.params
    if rule.scope == "series":
        return _run_series(rule, ctx)
    anchor = re.compile(params["match"])
    on = _KINDS[params.get("on-lines", "added")]
    fn_rx = re.compile(params["functions"]) if params.get("functions") else None
    not_fn_rx = re.compile(params["not-functions"]) if params.get("not-functions") else None
    out: list[tuple[str, RawFinding]] = []
    for fc in ctx.files:
        if not rule.applies_to(fc.path):
            continue
        if fn_rx and not any(
            name and fn_rx.search(name)
            for name in [*(v.name for v in fc.post_views), *(h.function for h in fc.diff.hunks)]
        ):
            continue  # no function of this file can qualify (_function_of picks from these)
        # Matches on removed lines, by matched text: an added match with the same text is
        # the same construct moved (a loop moved into a helper), not a new one.
        moved: Counter[str] = Counter()
        if params.get("moved-is-preexisting", True) and on == ("+",):
            for _, ln in _file_lines(ctx, fc, ("-",)):
                for m in anchor.finditer(ln.text):
                    moved[_norm(m.group(0))] += 1
        for hunk, line in _file_lines(ctx, fc, on):
            match = anchor.search(line.text)
            if match is None:
                continue
            function, fn_lines = _function_of(fc, hunk, line)
            if fn_rx and not (function and fn_rx.search(function)):
                continue
            if not_fn_rx and function and not_fn_rx.search(function):
                continue
            ok, captures = _conditions_hold(params, fc, ctx, hunk, fn_lines, function)
            if not ok:
                continue
            key = _norm(match.group(0))
            was_moved = moved[key] > 0
            if was_moved:
                moved[key] -= 1
            captures = {
                **captures,
                **{k: v for k, v in match.groupdict().items() if v is not None},
                "match": match.group(0),
                "function": function or "?",
                "detail": "",
            }
            lineno = line.new_lineno if line.kind != "-" else line.old_lineno
            out.append(
                (
                    fc.path,
                    RawFinding(
                        line=lineno,
                        function=function,
                        captures=captures,
                        evidence=(lineno,) if lineno else (),
                        preexisting=was_moved,
                    ),
                )
            )
    return out


def _run_series(rule: Rule, ctx: PatchContext) -> list[tuple[str, RawFinding]]:
    """Leftovers: the series removes something (trigger), yet users of it remain.

    One finding per file, listing the lines (a reviewer writes "still used in exit.c:457,
    465, 507", not one mail per line).
    """
    params = rule.params
    if not ctx.is_last:
        return []
    trigger = params.get("trigger")
    if trigger is not None:
        rx = re.compile(trigger["regex"])
        if not any(rx.search(text) for _, text in ctx.series_removed):
            return []
    anchor = re.compile(params["match"])
    by_file: dict[str, dict[int, tuple[str, str | None]]] = {}

    def add(path: str, lineno: int, text: str, function: str | None) -> None:
        if rule.applies_to(path):
            by_file.setdefault(path, {}).setdefault(lineno, (text, function))

    for fc in ctx.files:
        for hunk in fc.diff.hunks:
            for line in hunk.lines:
                if line.kind in (" ", "+") and line.new_lineno and anchor.search(line.text):
                    add(fc.path, line.new_lineno, line.text, _function_of(fc, hunk, line)[0])
    if params.get("search-tree") and ctx.worktree is not None:
        for path, lineno, text in _git_grep(ctx.worktree, params["match"]):
            add(path, lineno, text, None)
    out: list[tuple[str, RawFinding]] = []
    for path, lines in sorted(by_file.items()):
        numbers = sorted(lines)
        first_text, function = lines[numbers[0]]
        match = anchor.search(first_text)
        assert match is not None
        where = ", ".join(str(n) for n in numbers[:8]) + (f" and {len(numbers) - 8} more" if len(numbers) > 8 else "")
        captures = {
            **{k: v for k, v in match.groupdict().items() if v is not None},
            "match": match.group(0),
            "function": function or "?",
            "detail": f"{path}:{where}",
        }
        out.append((path, RawFinding(numbers[0], function, captures, tuple(numbers[:8]))))
    return out


def _git_grep(worktree: Path, regex: str) -> list[tuple[str, int, str]]:
    # git grep -P understands the Python-style patterns used in rule files.
    result = git(["grep", "-n", "-I", "-P", regex, "--", "*.c", "*.h", "Kconfig*", "*/Kconfig*"],
                 cwd=worktree, timeout=120)
    hits = []
    for row in result.stdout.splitlines()[:200]:
        path, _, rest = row.partition(":")
        num, _, text = rest.partition(":")
        if num.isdigit():
            hits.append((path, int(num), text))
    return hits


def files_of(diffs: Iterable[FileDiff]) -> list[str]:
    return [d.path for d in diffs]
