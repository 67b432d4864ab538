"""Slab caches the tree creates, and whether their objects are charged to a memcg.

``kmem_cache_alloc(cache, GFP_KERNEL)`` shows no accounting flag, yet it is charged to the
allocating task's memory cgroup when the cache was created with ``SLAB_ACCOUNT``
(mm/slab.h, ``memcg_slab_pre_alloc_hook()``: ``s->flags & SLAB_ACCOUNT`` or
``__GFP_ACCOUNT``). Whether a cache is accounted is written once, where it is created:

    vm_area_cachep = KMEM_CACHE(vm_area_struct, SLAB_PANIC|SLAB_ACCOUNT);   (kernel/fork.c)
    sighand_cachep = kmem_cache_create("sighand_cache", ..., SLAB_HWCACHE_ALIGN|
                        SLAB_PANIC|SLAB_TYPESAFE_BY_RCU|SLAB_ACCOUNT, sighand_ctor);

so the tree can answer it for every cache variable (the last name of the target: a cache
kept in a field, ``ns->cachep = ...``, is known as ``cachep``). A name created both ways
somewhere in the tree (two subsystems' ``cachep``) is "mixed" and never judged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["ACCOUNT", "MIXED", "PLAIN", "cache_allocation", "cache_charged", "merge_caches", "slab_cache_creations"]

ACCOUNT, PLAIN, MIXED = "account", "plain", "mixed"

# `target = kmem_cache_create(...` / `KMEM_CACHE(...`: target may be a field path.
_CREATE = re.compile(r"([A-Za-z_][\w.>\[\]-]*?)\s*=\s*(?:\([^()]*\)\s*)?"
                     r"(kmem_cache_create(?:_usercopy)?|KMEM_CACHE(?:_USERCOPY)?)\s*\(")
# `x = kmem_cache_alloc(cache, flags)`, `kmem_cache_zalloc()`, `kmem_cache_alloc_node()`,
# `kmem_cache_alloc_lru(cache, lru, flags)`: the cache is always the first argument.
_ALLOC = re.compile(r"\b(kmem_cache_(?:z?alloc(?:_node|_lru)?))\s*\(\s*([^,()]+?)\s*,")
_LAST_NAME = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*$")
# How far the flags of a creation are read: kmem_cache_create()'s arguments, bounded.
_MAX_ARGS = 600


def slab_cache_creations(body: str) -> tuple[tuple[str, bool], ...]:
    """(cache name, created with SLAB_ACCOUNT) for every cache a body creates."""
    if "kmem_cache_create" not in body and "KMEM_CACHE" not in body:
        return ()
    out = []
    for m in _CREATE.finditer(body):
        name = _LAST_NAME.search(m.group(1))
        if name is None:
            continue
        # The arguments up to the matching parenthesis (flags are the 4th argument of
        # kmem_cache_create(), the 2nd of KMEM_CACHE(); any position will do here).
        depth, end = 1, m.end()
        limit = min(len(body), m.end() + _MAX_ARGS)
        while end < limit and depth:
            depth += body[end] == "("
            depth -= body[end] == ")"
            end += 1
        out.append((name.group(1), "SLAB_ACCOUNT" in body[m.end() : end]))
    return tuple(out)


def merge_caches(found: dict[str, list[str]], name: str, accounted: bool, path: str) -> None:
    """Record one creation in a name -> [ACCOUNT|PLAIN|MIXED, path] table."""
    kind = ACCOUNT if accounted else PLAIN
    old = found.get(name)
    if old is None:
        found[name] = [kind, path]
    elif old[0] != kind:
        old[0] = MIXED


def cache_allocation(text: str) -> tuple[str, str] | None:
    """(allocator, cache name) of a slab cache allocation in ``text``, if any."""
    m = _ALLOC.search(text)
    if m is None:
        return None
    name = _LAST_NAME.search(m.group(2))
    return (m.group(1), name.group(1)) if name else None


def cache_charged(text: str, lookup: Callable[[str], str]) -> bool | None:
    """Whether a slab cache allocation in ``text`` is charged by its cache: True for a
    ``SLAB_ACCOUNT`` cache, False for one the tree creates without it, None when the text
    allocates from no cache or from one the tree does not know (or knows both ways)."""
    found = cache_allocation(text)
    if found is None:
        return None
    kind = lookup(found[1])
    return True if kind == ACCOUNT else False if kind == PLAIN else None
