"""The ``consistency`` engine's ``check: accounting``: memory accounting added to some
allocations of a request and not to others.

A patch that turns ``GFP_KERNEL`` into ``GFP_KERNEL_ACCOUNT`` (or adds ``__GFP_ACCOUNT``)
decides that what a function allocates for its caller is charged to the caller's memory
cgroup (Documentation/admin-guide/cgroup-v2.rst, "Memory Ownership"): a task must not be
able to pin unlimited kernel memory through it. That decision holds for every object the
same request keeps, and a reviewer checks the rest of the request:

* another allocation of the converted function that it keeps (stores, links into a list
  or returns) with blocking flags and no accounting;
* a function the converted function calls, or sets as a callback and calls through the
  field (``event->register_event = fn; ... event->register_event(...)``), that keeps such
  an allocation. The callee is known by its body: the patch's own version, else the tree
  facts of the base. Only callees of the same subsystem count (the converted file's
  folder): core code (workqueues, kernfs, the idr) decides its own accounting.

A temporary buffer freed before the function returns is not kept and not reported;
``kmem_cache_alloc()`` is not judged (its cache may be created ``SLAB_ACCOUNT``).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from reviewbot.diff import FileDiff
from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.types import FileContext, PatchContext, RawFinding
from reviewbot.facts.extract import calls_of, kept_allocation_matches, stores_of
from reviewbot.facts.knowledge import Knowledge, load_knowledge

_CALL_NAME = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
# `obj->cb = fn;` / `obj.cb = &fn;`: a function set as a callback.
_CALLBACK = re.compile(r"(?:->|\.)\w+\s*=\s*&?\s*([A-Za-z_]\w*)\s*;")


def run_accounting(params: dict[str, Any], ctx: PatchContext,
                   applies: Any) -> list[tuple[FileContext, RawFinding]]:
    k = load_knowledge()
    out: list[tuple[FileContext, RawFinding]] = []
    for fc in ctx.files:
        if not applies(fc.path) or fc.diff.is_binary:
            continue
        converted = _converted(fc.diff, k)
        if not converted:
            continue
        for view in fc.post_views:
            mine = sorted(ln for ln in converted if ln in view.line_set())
            if mine:
                out.extend((fc, raw) for raw in _missed(view, mine, converted, fc.path, ctx, k))
    return out


def _converted(fd: FileDiff, k: Knowledge) -> dict[int, str]:
    """Post-image lines where the patch makes an allocation accounted: an allocator call
    with accounting flags added where the hunk removes the same allocator without them."""
    found: dict[int, str] = {}
    for h in fd.hunks:
        removed = {m.group(1) for ln in h.lines if ln.kind == "-" and k.blocking_gfp.search(ln.text)
                   and not k.accounted_gfp.search(ln.text)
                   for m in _CALL_NAME.finditer(ln.text) if k.allocators.fullmatch(m.group(1))}
        if not removed:
            continue
        for ln in h.lines:
            if ln.kind != "+" or not ln.new_lineno or not k.accounted_gfp.search(ln.text):
                continue
            if any(m.group(1) in removed for m in _CALL_NAME.finditer(ln.text)):
                found[ln.new_lineno] = ln.text.strip()
    return found


def _missed(view: FunctionView, mine: list[int], converted: dict[int, str], path: str,
            ctx: PatchContext, k: Knowledge) -> list[RawFinding]:
    lines = list(view.lines())
    texts = [view.row_text(ln) for ln in lines]
    body = "\n".join(texts)
    starts = [0]
    for t in texts:
        starts.append(starts[-1] + len(t) + 1)

    def line_at(offset: int) -> int:
        i = max(j for j, s in enumerate(starts[:-1]) if s <= offset)
        return lines[i]

    first = mine[0]
    what = f"line {first}: `{converted[first][:70]}`"
    out = []
    # Another allocation of this function that it keeps, left uncharged.
    for offset, alloc in kept_allocation_matches(body, stores_of(body)):
        line = line_at(offset)
        if line in converted or not k.unaccounted(alloc):
            continue
        detail = (f"the patch charges what {view.name}() allocates to the caller's memory cgroup "
                  f"({what}), but line {line} still allocates `{alloc}` without accounting and keeps it")
        out.append(RawFinding(line=line, function=view.name, captures={"detail": detail},
                              evidence=(line, first)))
    # A callee (called, or set as a callback) of the same subsystem that keeps an
    # uncharged allocation.
    names = {c.name for c in calls_of(body)} | set(_CALLBACK.findall(body))
    names.discard(view.name)
    folder = posixpath.dirname(path)
    for name in sorted(names):
        info = ctx.facts.unaccounted_alloc(name)
        if info is None or len(info) < 3:
            continue
        where, static, alloc = info[0], info[1], info[2]
        if (static and where != path) or posixpath.dirname(where) != folder:
            continue
        at = next((ln for ln, t in zip(lines[1:], texts[1:], strict=False)
                   if re.search(rf"\b{re.escape(name)}\b", t)), lines[0])
        detail = (f"the patch charges what {view.name}() allocates to the caller's memory cgroup "
                  f"({what}), but {name}(), which it calls at line {at}, still allocates "
                  f"`{alloc}` without accounting and keeps it ({where})")
        out.append(RawFinding(line=at, function=view.name, captures={"detail": detail, "callee": name},
                              evidence=(at, first)))
    return out
