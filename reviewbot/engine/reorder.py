"""A release moved earlier: the ``refcount`` engine's ``release-order`` analysis.

Refactors that fold a put into a helper, or tidy the order of an exit path, move a
release. Moved later it is a longer hold; moved earlier, the statements it now precedes
run without the reference, and a use among them (or inside a call among them) is a
use-after-free. A reviewer checks exactly this when a patch deletes a put: where does the
object get released now?

For each release the patch removes from a function (a call of one of the rule's pairs, or
of a put helper the facts know), the analysis looks in the post-image function for where
the same object is released now:

* an added release of it earlier in the function (the call moved up), or
* an earlier call of a function the patch changed so that it releases that argument
  (the put folded into a helper: bfq_put_cooperator() now drops the process reference).

If statements lie between that point and the removed release's old place, it reports the
release and the statements that now run after it.
"""

from __future__ import annotations

import re
from typing import Any

from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.refspec import config_for, normalize
from reviewbot.engine.types import FileContext, PatchContext, RawFinding
from reviewbot.facts.extract import CALL, args_at

_STATEMENT = re.compile(r"^\s*(?![{}]\s*$)(?!/?\*)(?!//)\S")


def release_keys(text: str, params: dict[str, Any], ctx: PatchContext) -> list[tuple[str, str, str]]:
    """(object, pair, call) of each release a line of code makes."""
    config, _ = config_for(params)
    out: list[tuple[str, str, str]] = []
    for m in CALL.finditer(text):
        name = m.group(1)
        args = args_at(text, m.end(), closed_only=True)
        for matched in config.matching(name):
            for spec in matched.release:
                if spec.arg is not None and spec.arg < len(args):
                    out.append((normalize(args[spec.arg]), matched.pair.name, name))
        for index, obj in ctx.facts.released_params(name).items():
            if index < len(args) and obj != "stored":  # a store hands on, it does not free
                out.append((normalize(args[index]), obj, name))
    return out


def run_release_order(params: dict[str, Any], view: FunctionView, ctx: PatchContext) -> list[RawFinding]:
    fc = next((f for f in ctx.files if any(v is view for v in f.post_views)), None)
    if fc is None:
        return []
    # Without a tree each hunk is a view of its own: the function is all of them.
    same = [v for v in fc.post_views if v.name == view.name]
    if same[0] is not view:
        return []  # reported once, on the first
    lines = frozenset().union(*(v.line_set() for v in same))
    removed = _removed_releases(fc, lines, params, ctx)
    if not removed:
        return []  # (most functions: the text of their lines is not needed)
    post_text = {n: v.row_text(n) for v in same for n in v.line_set()}
    out: list[RawFinding] = []
    for old_at, key, call in removed:
        if any(k == key for n in fc_added(fc) if n in lines and n >= old_at
               for k, _, _ in release_keys(post_text.get(n, ""), params, ctx)):
            continue  # still released at (or after) its old place
        earlier = _new_release(fc, lines, post_text, key, old_at, params, ctx)
        if earlier is None:
            continue
        at, how = earlier
        between = [n for n in sorted(lines) if at < n <= old_at and _STATEMENT.match(post_text.get(n, ""))]
        if not between:
            continue
        shown = ", ".join(str(n) for n in between[:6]) + (" ..." if len(between) > 6 else "")
        detail = (f"`{key}` is now released at line {at} ({how}), before line(s) {shown}, which "
                  f"ran while it was still held: the patch removes {call}() that released it "
                  f"after them")
        out.append(RawFinding(line=at, function=view.name,
                              captures={"detail": detail, "object": key},
                              evidence=(at, *between[:3])))
    return out


def fc_added(fc: FileContext) -> set[int]:
    return {ln.new_lineno for h in fc.diff.hunks for ln in h.lines if ln.kind == "+" and ln.new_lineno}


def _removed_releases(fc: FileContext, lines: frozenset[int], params: dict[str, Any],
                      ctx: PatchContext) -> list[tuple[int, str, str]]:
    """(post-image line after which it was, object, call) of each release the patch removes
    inside the function."""
    out: list[tuple[int, str, str]] = []
    for anchor, text in removed_lines(fc, ctx):
        if anchor in lines:
            out.extend((anchor, key, call) for key, _, call in release_keys(text, params, ctx))
    return out


def removed_lines(fc: FileContext, ctx: PatchContext) -> list[tuple[int, str]]:
    """(post-image line after which it was, text) of each line the file's hunks remove:
    once per file, not once per function and rule (each read every hunk line)."""
    key = f"removed-lines:{id(fc)}"  # the file context lives as long as the patch's
    cached = ctx.memo.get(key)
    if isinstance(cached, list):
        return cached
    found: list[tuple[int, str]] = []
    for hunk in fc.diff.hunks:
        anchor = hunk.new_start - 1
        for ln in hunk.lines:
            if ln.new_lineno:
                anchor = ln.new_lineno
            if ln.kind == "-":
                found.append((anchor, ln.text))
    ctx.memo[key] = found
    return found


def _new_release(fc: FileContext, lines: frozenset[int], post_text: dict[int, str], key: str,
                 old_at: int, params: dict[str, Any], ctx: PatchContext) -> tuple[int, str] | None:
    added = fc_added(fc)
    for n in sorted(lines):
        if n > old_at:
            break
        text = post_text.get(n, "")
        for found, _, call in release_keys(text, params, ctx):
            if found != key:
                continue
            if n in added:
                return n, f"{call}() moved up"
            if ctx.facts.changed_by_patch(call):
                return n, f"{call}(), which this patch makes drop it"
    return None
