"""Reference facts of one function body: the parameters a put helper drops a reference
of, and those a get helper takes one on for its caller (``get_io_context(ioc)`` is
``atomic_long_inc(&ioc->refcount)``; a kref-counted object's ``foo_get(f)`` is
``kref_get(&f->kref)``), so that a get through such a helper pairs with its put."""

from __future__ import annotations

import re

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import Definition
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.tables import Facts

_RELEASE_NAME = re.compile(r"(?:^|_)(put|release|free|destroy|drop|unref)(?:_|$)")
# A get helper is named for it (kernel convention: xxx_get(), get_xxx(), xxx_grab(),
# xxx_hold()); a function that bumps a count as a side effect of other work is not one
# (nor is every percpu_ref_*() or page_ref_*() helper, hence no bare "ref").
GET_NAME = re.compile(r"(?:^|_)(get|grab|hold)(?:_|$)")
# Counters without an object of their own in kernel.yaml: what such a count keeps alive is
# the memory its put helper frees (put_io_context() ends in kmem_cache_free()).
_PLAIN_COUNT = re.compile(r"(?:refcount_inc|atomic_inc|atomic_long_inc|atomic64_inc)")


def direct_releases(d: Definition, k: Knowledge, base: Facts | None = None) -> dict[int, tuple[str, str]]:
    """Parameters a body drops a reference of: index -> (object, the releasing call)."""
    names = d.param_names
    if not names:
        return {}
    out: dict[int, tuple[str, str]] = {}
    is_put = bool(_RELEASE_NAME.search(d.name))
    # A parameter stored into a field is handed on with whatever reference came with it
    # (cpuset_migrate_mm() stores the mm in a work item that puts it later).
    for name in d.stores:
        if name in names:
            out.setdefault(names.index(name), ("stored", "store"))
    if base is not None:
        for c in d.calls:
            known = base.released_params(c.name)
            if not known or not (is_put or c.top_level):
                continue
            args = c.arg_list
            for idx, obj in known.items():
                if idx < len(args) and normalize(args[idx]) in names:
                    out.setdefault(names.index(normalize(args[idx])), (obj, c.name))
    for obj, call, arg in k.release_calls():
        for c in d.calls:
            if not call.fullmatch(c.name) or not (is_put or c.top_level or d.macro):
                continue
            args = c.arg_list
            if arg >= len(args):
                continue
            key = normalize(args[arg])
            root = re.split(r"->|\.", key)[0]
            if root in names and (key == root or obj in ("kref", "percpu_ref")):
                out.setdefault(names.index(root), (obj, c.name))
    return out


def direct_acquires(d: Definition, k: Knowledge) -> dict[int, str]:
    """Parameters a get helper takes a reference on: index -> object.

    Only an unconditional acquire (a tryget helper returns whether it got one, which a
    caller tests: not modelled) on the parameter itself or on a counter in it, in a
    function named as a get that neither stores the parameter (the reference is then the
    stored copy's) nor drops one."""
    names = d.param_names
    if not names or not GET_NAME.search(d.name) or _RELEASE_NAME.search(d.name):
        return {}
    if any(name in names for name in d.stores):
        return {}
    out: dict[int, str] = {}
    for obj, call, arg in k.acquire_calls():
        for c in d.calls:
            if c.top_level and call.fullmatch(c.name) and arg < len(c.arg_list):
                _note_acquire(out, names, normalize(c.arg_list[arg]), obj)
    for c in d.calls:
        if c.top_level and _PLAIN_COUNT.fullmatch(c.name) and c.arg_list:
            key = normalize(c.arg_list[0])
            if key != re.split(r"->|\.", key)[0]:  # a counter inside the object
                _note_acquire(out, names, key, "memory")
    return out


def _note_acquire(out: dict[int, str], names: tuple[str, ...], key: str, obj: str) -> None:
    root = re.split(r"->|\.", key)[0]
    if root in names:
        out.setdefault(names.index(root), obj)
