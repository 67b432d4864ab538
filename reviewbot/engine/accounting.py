"""The ``consistency`` engine's ``check: accounting``: memory accounting added to some
allocations of a request and not to others.

A patch that turns ``GFP_KERNEL`` into ``GFP_KERNEL_ACCOUNT`` (or adds ``__GFP_ACCOUNT``)
decides that what a function allocates for its caller is charged to the caller's memory
cgroup (Documentation/admin-guide/cgroup-v2.rst, "Memory Ownership"): a task must not be
able to pin unlimited kernel memory through it. That decision holds for every object the
same request keeps, and a reviewer checks the rest of the request:

* another allocation of the converted function that it keeps (stores, links into a list
  or returns) with blocking flags and no accounting: any allocator family, flags passed
  through a local, ``vmalloc()`` (always ``GFP_KERNEL``), a slab cache the tree creates
  without ``SLAB_ACCOUNT`` (engine/allocsites.py);
* a function the converted function calls, or sets as a callback and calls through the
  field (``event->register_event = fn; ... event->register_event(...)``), that keeps such
  an allocation. The callee is known by its body: the patch's own version, else the tree
  facts of the base. Only callees of the same subsystem count (the converted file's
  folder): core code (workqueues, kernfs, the idr) decides its own accounting.

The same holds the other way round: an allocation a patch **adds** to a function whose
other kept allocations are charged (``GFP_KERNEL_ACCOUNT``, a ``SLAB_ACCOUNT`` cache) joins
an object whose owner already pays for its parts, and is reported when it is uncharged;
so is a call the patch adds, in such a function, of a same-subsystem callee that keeps
uncharged memory. A conversion is any line the patch rewrites only by adding accounting
(the allocation, a flags local, the cache's creation).

A temporary buffer freed before the function returns is not kept and not reported.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from reviewbot.diff import FileDiff
from reviewbot.engine.allocsites import Allocation, allocations_of
from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.types import FileContext, PatchContext, RawFinding
from reviewbot.facts.extract import calls_of
from reviewbot.facts.knowledge import Knowledge, load_knowledge

_CALL_NAME = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
# `obj->cb = fn;` / `obj.cb = &fn;`: a function set as a callback.
_CALLBACK = re.compile(r"(?:->|\.)\w+\s*=\s*&?\s*([A-Za-z_]\w*)\s*;")
# What a conversion adds to a line: `GFP_KERNEL` -> `GFP_KERNEL_ACCOUNT` (any `GFP_X` ->
# `GFP_X_ACCOUNT`), `| __GFP_ACCOUNT`, `| SLAB_ACCOUNT`.
_ACCOUNTING = re.compile(r"(?<=GFP_)(\w+?)_ACCOUNT\b|\s*\|\s*(?:__GFP|SLAB)_ACCOUNT\b|\b(?:__GFP|SLAB)_ACCOUNT\s*\|\s*")
# A function worth reading for allocations (most are not).
_ALLOC_HINT = re.compile(r"GFP_|alloc|kstrn?dup|kmemdup|asprintf")


def run_accounting(params: dict[str, Any], ctx: PatchContext,
                   applies: Any) -> list[tuple[FileContext, RawFinding]]:
    k = load_knowledge()
    out: list[tuple[FileContext, RawFinding]] = []
    for fc in ctx.files:
        if not applies(fc.path) or fc.diff.is_binary:
            continue
        converted = _converted(fc.diff, k)
        added = {ln.new_lineno for h in fc.diff.hunks for ln in h.lines
                 if ln.kind == "+" and ln.new_lineno and _ALLOC_HINT.search(ln.text)}
        if not converted and not added:
            continue
        for view in fc.post_views:
            lines = view.line_set()
            mine = sorted(ln for ln in converted if ln in lines)
            if mine:
                out.extend((fc, raw) for raw in _missed(view, mine, converted, fc.path, ctx, k))
            elif added & lines:
                out.extend((fc, raw) for raw in _added_uncharged(view, added & lines, fc.path, ctx, k))
    return out


def _strip_accounting(text: str) -> str:
    return "".join(_ACCOUNTING.sub(lambda m: m.group(1) or "", text).split())


def _converted(fd: FileDiff, k: Knowledge) -> dict[int, str]:
    """Post-image lines where the patch makes something accounted: a line with accounting
    flags added where the hunk removes the same line without them (the allocation itself,
    a flags local, a cache creation), or an allocator call with accounting flags where the
    hunk removes the same allocator without them."""
    found: dict[int, str] = {}
    for h in fd.hunks:
        plain = [ln.text for ln in h.lines if ln.kind == "-" and "ACCOUNT" not in ln.text]
        if not plain:
            continue
        stripped = {"".join(t.split()) for t in plain}
        removed = {m.group(1) for t in plain if k.blocking_gfp.search(t)
                   for m in _CALL_NAME.finditer(t) if k.allocators.fullmatch(m.group(1))}
        for ln in h.lines:
            if ln.kind != "+" or not ln.new_lineno or "ACCOUNT" not in ln.text:
                continue
            if _strip_accounting(ln.text) in stripped or (
                    k.accounted_gfp.search(ln.text) and any(m.group(1) in removed for m in _CALL_NAME.finditer(ln.text))):
                found[ln.new_lineno] = ln.text.strip()
    return found


def _missed(view: FunctionView, mine: list[int], converted: dict[int, str], path: str,
            ctx: PatchContext, k: Knowledge) -> list[RawFinding]:
    first = mine[0]
    what = f"line {first}: `{converted[first][:70]}`"
    out = []
    # Another allocation of this function that it keeps, left uncharged.
    for alloc in allocations_of(view, k, ctx.facts):
        if alloc.line in converted or alloc.charged is not False or not alloc.kept:
            continue
        detail = (f"the patch charges what {view.name}() allocates to the caller's memory cgroup "
                  f"({what}), but line {alloc.line} still allocates `{alloc.text}` without accounting "
                  f"({alloc.how}) and keeps it")
        out.append(RawFinding(line=alloc.line, function=view.name, captures={"detail": detail},
                              evidence=(alloc.line, first)))
    out.extend(_callees(view, first, what, path, ctx, only=None))
    return out


def _added_uncharged(view: FunctionView, added: set[int], path: str, ctx: PatchContext,
                     k: Knowledge) -> list[RawFinding]:
    """An allocation (or a call of a callee that allocates) the patch adds, uncharged, to
    a function whose other kept allocations are charged."""
    allocs = allocations_of(view, k, ctx.facts)
    # A charged sibling need not be kept: nobody charges a temporary on purpose.
    charged = [a for a in allocs if a.charged and a.line not in added]
    if not charged:
        return []
    sibling: Allocation = charged[0]
    what = f"line {sibling.line}: `{sibling.text[:70]}`, {sibling.how}"
    out = []
    for alloc in allocs:
        if alloc.line not in added or alloc.charged is not False or not alloc.kept:
            continue
        detail = (f"{view.name}() charges what it keeps to the caller's memory cgroup ({what}), "
                  f"but the allocation the patch adds at line {alloc.line}, `{alloc.text}`, is not "
                  f"charged ({alloc.how}) and is kept too")
        out.append(RawFinding(line=alloc.line, function=view.name, captures={"detail": detail},
                              evidence=(alloc.line, sibling.line)))
    if not any(a.charged is False and a.kept for a in allocs):
        out.extend(_callees(view, sibling.line, what, path, ctx, only=added))
    return out


def _callees(view: FunctionView, first: int, what: str, path: str, ctx: PatchContext,
             only: set[int] | None) -> list[RawFinding]:
    """A callee (called, or set as a callback) of the same subsystem that keeps an uncharged
    allocation; with ``only``, a callee named on one of those lines."""
    lines = list(view.lines())
    texts = [view.row_text(ln) for ln in lines]
    if only is not None:
        body = "\n".join(t for ln, t in zip(lines, texts, strict=True) if ln in only)
    else:
        body = "\n".join(texts)
    names = {c.name for c in calls_of(body)} | set(_CALLBACK.findall(body))
    names.discard(view.name)
    folder = posixpath.dirname(path)
    out = []
    for name in sorted(names):
        info = ctx.facts.unaccounted_alloc(name)
        if info is None or len(info) < 3:
            continue
        where, static, alloc = info[0], info[1], info[2]
        if (static and where != path) or posixpath.dirname(where) != folder:
            continue
        at = next((ln for ln, t in zip(lines[1:], texts[1:], strict=False)
                   if re.search(rf"\b{re.escape(name)}\b", t) and (only is None or ln in only)), lines[0])
        if only is None:
            detail = (f"the patch charges what {view.name}() allocates to the caller's memory cgroup "
                      f"({what}), but {name}(), which it calls at line {at}, still allocates "
                      f"`{alloc}` without accounting and keeps it ({where})")
        else:
            detail = (f"{view.name}() charges what it keeps to the caller's memory cgroup ({what}), "
                      f"but {name}(), which the patch makes it call at line {at}, allocates "
                      f"`{alloc}` without accounting and keeps it ({where})")
        out.append(RawFinding(line=at, function=view.name, captures={"detail": detail, "callee": name},
                              evidence=(at, first)))
    return out
