"""A get removed, its put kept: the ``refcount`` engine's ``get-removed`` analysis.

The mirror of a put removed from an exit path. A patch deletes the ``get_task_struct()``
(or ``css_get()``, ``mmget_not_zero()``, ...) that a function took on a local object and
leaves the ``put_task_struct()`` that balanced it: the put now drops a reference the
function never took. Whoever holds the real one (an iterator, the object's owner) is left
with a count one too low: an underflow, and a use-after-free when the last real holder
lets go. A reviewer reading such a hunk asks "and the put below?".

For each acquire the patch removes inside a function (a call of one of the rule's pairs,
a function the tree facts know to take a reference on an argument, or one that returns a
reference assigned to a local), the post-image function is checked for:

* a release of the same object on a line the patch kept (the put stays), after the
  removed acquire's place;
* no acquire of it the patch adds (the get moved or was rewritten), no added call of a
  function the patch changes that takes it (the get folded into a helper), and no added
  assignment of the object (it now comes from elsewhere, maybe with its reference);
* the object rooted in a local variable: when it comes from a parameter, the patch may
  have moved the get to the callers (the function now consumes their reference), which
  the function alone cannot show.
"""

from __future__ import annotations

import re
from typing import Any

from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.refspec import config_for, normalize
from reviewbot.engine.reorder import fc_added, release_keys, removed_lines
from reviewbot.engine.types import PatchContext, RawFinding
from reviewbot.engine.uses import parameter_list
from reviewbot.facts.extract import CALL, args_at

_ASSIGNED = re.compile(r"^\s*(?:[\w\s\*]+?\s+\**)?([A-Za-z_][\w\.\->]*)\s*=[^=]")
_ROOT = re.compile(r"[A-Za-z_]\w*")


def _calls(text: str) -> list[tuple[str, list[str], int]]:
    return [(m.group(1), args_at(text, m.end(), closed_only=True), m.start()) for m in CALL.finditer(text)]


def _acquires(text: str, params: dict[str, Any], ctx: PatchContext) -> list[tuple[str, str, str]]:
    """(object, pair, call) of each reference a line of code takes."""
    config, _ = config_for(params)
    assigned = _ASSIGNED.match(text)
    out: list[tuple[str, str, str]] = []
    for name, args, at in _calls(text):
        for matched in config.matching(name):
            for spec in matched.acquire:
                if spec.returns and assigned is not None and assigned.end() <= at + 1:
                    out.append((normalize(assigned.group(1)), matched.pair.name, name))
                elif spec.arg is not None and spec.arg < len(args):
                    out.append((normalize(args[spec.arg]), matched.pair.name, name))
        for index, obj in ctx.facts.acquired_params(name).items():
            if index < len(args):
                out.append((normalize(args[index]), obj, name))
        returned = ctx.facts.returned_ref(name) if assigned is not None and assigned.end() <= at + 1 else []
        if assigned is not None and returned:
            out.append((normalize(assigned.group(1)), returned[0], name))
    return out


def run_get_removed(params: dict[str, Any], view: FunctionView, ctx: PatchContext) -> list[RawFinding]:
    fc = next((f for f in ctx.files if any(v is view for v in f.post_views)), None)
    if fc is None or not fc.diff.hunks:
        return []
    same = [v for v in fc.post_views if v.name == view.name]
    if same[0] is not view:
        return []  # reported once, on the first view of the function
    lines = frozenset().union(*(v.line_set() for v in same))
    removed = [(anchor, key, pair, call) for anchor, text in removed_lines(fc, ctx) if anchor in lines
               for key, pair, call in _acquires(text, params, ctx)]
    if not removed:
        return []  # (most functions)
    passed_in = set(parameter_list(view.node))
    added = fc_added(fc) & lines
    post_text = {n: v.row_text(n) for v in same for n in v.line_set()}
    out: list[RawFinding] = []
    seen: set[str] = set()
    for anchor, key, pair, call in removed:
        root = _ROOT.match(key)
        if key in seen or root is None or root.group(0) in passed_in:
            continue
        if _replaced(key, added, post_text, params, ctx):
            continue
        kept = next(((n, rel) for n in sorted(lines) if n > anchor and n not in added
                     for found, rpair, rel in release_keys(post_text.get(n, ""), params, ctx)
                     if found == key and rpair == pair), None)
        if kept is None:
            continue
        seen.add(key)
        at, rel = kept
        detail = (f"the patch removes {call}() that took the reference on `{key}` (after line "
                  f"{anchor}), but keeps {rel}() at line {at}: that put now drops a reference "
                  f"this function no longer takes")
        out.append(RawFinding(line=at, function=view.name,
                              captures={"detail": detail, "object": key}, evidence=(at,)))
    return out


def _replaced(key: str, added: set[int], post_text: dict[int, str], params: dict[str, Any],
              ctx: PatchContext) -> bool:
    """Whether an added line takes the reference again, hands the object to a function the
    patch changes, or assigns the object anew."""
    for n in added:
        text = post_text.get(n, "")
        if key not in text:
            continue
        if any(found == key for found, _, _ in _acquires(text, params, ctx)):
            return True
        assigned = _ASSIGNED.match(text)
        if assigned is not None and normalize(assigned.group(1)) == key:
            return True
        if any(ctx.facts.changed_by_patch(name) and any(normalize(a) == key for a in args)
               for name, args, _ in _calls(text)):
            return True
    return False
