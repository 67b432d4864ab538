"""The allocations a function keeps, and whether each is charged to a memory cgroup.

What a memcg reviewer reads off an allocation (Documentation/core-api/memory-allocation.rst,
include/linux/gfp_types.h, mm/slab.h):

* the flags: ``GFP_KERNEL_ACCOUNT`` or ``__GFP_ACCOUNT`` charge the allocating task's
  memcg; blocking flags without them (``GFP_KERNEL``, ``GFP_NOFS``, ...) do not; other
  flags (``GFP_ATOMIC``, a caller's ``gfp`` parameter) say nothing either way;
* flags passed through a local (``gfp_t gfp = GFP_KERNEL_ACCOUNT; ... kzalloc(n, gfp)``),
  when every assignment of the local is a flags expression (engine/gfplocals.py);
* ``vmalloc()``/``vzalloc()`` and friends take no flags: always ``GFP_KERNEL``, uncharged;
* ``kmem_cache_alloc(cache, GFP_KERNEL)`` is charged when the cache was created with
  ``SLAB_ACCOUNT`` (the tree facts say which, facts/slabcaches.py), and not when the tree
  creates it without.

Whether the function keeps an allocation (assigned to a field, or to a local that is
stored into a field, linked into a list or returned) is said too: a buffer freed before
returning is no one's to pay for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.gfplocals import gfp_local_values
from reviewbot.facts.extract import stores_of
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.slabcaches import cache_charged
from reviewbot.facts.tables import Facts

__all__ = ["Allocation", "allocations_of"]

# `target = (cast) call(args);` on one statement (the kernel writes allocations so), also
# as a declaration (`struct vm_area_struct *new = kmem_cache_alloc(...);`).
_ASSIGN = re.compile(r"^[ \t]*(?:(?:const\s+)?(?:struct\s+)?[A-Za-z_]\w*\s*\*+\s*)?"
                     r"([A-Za-z_][\w.>\[\]-]*?)\s*=\s*(?:\([^()]*\)\s*)?([A-Za-z_]\w*)\s*\(([^;]*?)\)\s*;",
                     re.MULTILINE)
# Allocators that store the new memory through their first argument and return success:
# `if (!zalloc_cpumask_var(&cs->effective_cpus, GFP_KERNEL))` (a real allocation with
# CONFIG_CPUMASK_OFFSTACK, which distribution kernels set).
_OUT_PARAM = re.compile(r"\b((?:z?alloc_cpumask_var)(?:_node)?)\s*\(\s*([^,;()]+),\s*([^;()]*(?:\([^()]*\)[^;()]*)*)\)")
_SLAB = re.compile(r"kmem_cache_(?:z?alloc(?:_node|_lru)?)")
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


@dataclass(frozen=True)
class Allocation:
    line: int  # post-image line of the assignment
    text: str  # "ev = kzalloc(sizeof(*ev), GFP_KERNEL)", whitespace folded
    charged: bool | None  # True: charged to a memcg; False: blocking and uncharged; None: unknown
    how: str  # why: "GFP_KERNEL_ACCOUNT", "SLAB_ACCOUNT cache cachep", "GFP_KERNEL", ...
    kept: bool  # outlives the function (a field, a store, a list, the return value)


def allocations_of(view: FunctionView, k: Knowledge, facts: Facts) -> list[Allocation]:
    """Every allocation of ``view`` assigned to a name, in line order, with whether the
    function keeps it. Once per view."""
    memo = view.memo.get("allocations")
    if isinstance(memo, list):
        return memo
    lines = list(view.lines())
    texts = [view.row_text(ln) for ln in lines]
    body = "\n".join(texts)
    starts = [0]
    for t in texts:
        starts.append(starts[-1] + len(t) + 1)
    stores = stores_of(body)
    flag_locals = gfp_local_values(view)
    out: list[Allocation] = []
    for m in _ASSIGN.finditer(body):
        target, call, args = m.group(1), m.group(2), " ".join(m.group(3).split())
        slab = _SLAB.fullmatch(call) is not None
        implicit = k.implied_gfp(call, m.group(3))
        if not (slab or implicit or k.allocators.fullmatch(call)):
            continue
        kept = "->" in target or "." in target or _kept(target, body, stores)
        charged, how = _charge_of(call, args, slab, implicit, k, facts, flag_locals)
        i = max(j for j, s in enumerate(starts[:-1]) if s <= m.start(1))
        out.append(Allocation(lines[i], f"{target} = {call}({args[:120]})", charged, how, kept))
    for m in _OUT_PARAM.finditer(body):
        call, dest, args = m.group(1), m.group(2).strip(), " ".join(m.group(3).split())
        local = re.fullmatch(r"&\s*([A-Za-z_]\w*)", dest)
        # Through a pointer or into a field the memory outlives the call; a local mask
        # only when the function stores or returns it.
        kept = local is None or _kept(local.group(1), body, stores)
        charged, how = _charge_of(call, args, False, False, k, facts, flag_locals)
        i = max(j for j, s in enumerate(starts[:-1]) if s <= m.start(1))
        out.append(Allocation(lines[i], f"{call}({dest}, {args[:120]})", charged, how, kept))
    out.sort(key=lambda a: a.line)
    view.memo["allocations"] = out
    return out


def _kept(var: str, body: str, stores: tuple[str, ...]) -> bool:
    v = re.escape(var)
    return var in stores or re.search(rf"\breturn\s+{v}\s*;|\b\w+_add\w*\s*\(\s*&\s*{v}\s*->", body) is not None


def _charge_of(call: str, args: str, slab: bool, implicit: bool, k: Knowledge, facts: Facts,
               flag_locals: dict[str, tuple[str, ...]]) -> tuple[bool | None, str]:
    if implicit:
        return False, f"{call}() without gfp flags allocates with GFP_KERNEL"
    flags = args
    via = ""
    for name in _IDENT.findall(args):
        if name in flag_locals:
            values = flag_locals[name]
            charged = [k.accounted_gfp.search(v) is not None for v in values]
            if any(charged) and not all(charged):
                return None, ""  # accounted on some paths only
            flags, via = " | ".join(values), f" (through `{name}`)"
            break
    if (acc := k.accounted_gfp.search(flags)) is not None:
        return True, acc.group(0) + via
    if slab:
        by_cache = cache_charged(f"{call}({args})", facts.slab_cache)
        cache = args.split(",", 1)[0].strip()
        if by_cache:
            return True, f"the SLAB_ACCOUNT cache `{cache}`"
        if by_cache is None:
            return None, ""
        blocking = k.blocking_gfp.search(flags)
        return (False, f"`{cache}`, a cache created without SLAB_ACCOUNT") if blocking else (None, "")
    blocking = k.blocking_gfp.search(flags)
    return (False, blocking.group(0) + via) if blocking else (None, "")
