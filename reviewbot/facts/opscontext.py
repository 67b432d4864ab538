"""The context an ops member runs in: what every place that calls it through a pointer holds.

``offline_css()`` asserts ``cgroup_mutex`` and calls ``ss->css_offline(css)``;
``cgroup_rstat_flush_locked()`` holds a per-CPU raw spinlock with interrupts off around
``css->ss->css_rstat_flush(css, cpu)``. Every controller's ``css_offline`` therefore runs
under ``cgroup_mutex``, every ``css_rstat_flush`` in atomic context: a reviewer of a
controller patch knows it, and the body of the implementation cannot show it. Taking
``cgroup_lock()`` in a ``css_offline`` is a self-deadlock; a mutex in a
``css_rstat_flush`` is sleeping in atomic context.

Derived from the tree: for each call through a pointer that resolves to a member
(facts/opsfacts.py: ``ss`` is a ``struct cgroup_subsys *``, so ``ss->css_offline`` is
``cgroup_subsys.css_offline``), the locks held around it (read as engine/callerctx.py
reads a call site: a plain lock primitive that starts a statement, not released or left
before the call; the dispatcher's own ``lockdep_assert_held()``, unless it released that
lock before). A member's context is what all its call sites hold. Kept precise: a member
some call of which the scan cannot resolve (a call ``->css_offline(`` through a pointer
of unknown type) gets nothing, since that call may hold nothing.

Table ``ops_context``: "T.member" -> [dispatcher, path, item...], an item ``"call key"``
(``"mutex_lock cgroup_mutex"``, ``"@assert cgroup_mutex"``, ``"rcu_read_lock "``), a
dispatcher's own object lock (``&cpu_lock``, not passed on) as ``"call ~"``: held, and
atomic, but no lock the implementation can name.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import Definition
from reviewbot.facts.heldlines import Helpers, calls_with_holds
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.opsfacts import member_key

__all__ = ["ASSERTED", "OPAQUE", "meet", "ops_context", "site_key"]

ASSERTED = "@assert"
OPAQUE = "~"  # the key of a lock held through the dispatcher's own expression
_ASSERT = re.compile(r"^\tlockdep_assert_held(?:_write|_read|_once)?\s*\(\s*([^;]*?)\s*\)\s*;", re.MULTILINE)
_GLOBAL = re.compile(r"&?\s*[A-Za-z_]\w*")
_RECEIVER = re.compile(r"([A-Za-z_]\w*(?:\s*(?:->|\.)\s*[A-Za-z_]\w*)*)\s*(?:->|\.)\s*$")


def site_key(item: str, k: Knowledge) -> str:
    """What identifies an item's lock across sites: its key, ``#kind`` for a section
    without one (``rcu_read_lock``), ``~kind`` for a dispatcher's own object."""
    call, _, key = item.partition(" ")
    got = k.lock_for(call)
    kind = got[0].kind if got is not None else call
    if key == OPAQUE:
        return f"~{kind}"
    return key or f"#{kind}"


def meet(a: frozenset[str], b: frozenset[str], k: Knowledge) -> frozenset[str]:
    """The locks held at both sites, matched by lock rather than spelling (one site takes
    ``cgroup_mutex``, another asserts it), keeping the primitive a site names."""
    by_a = {site_key(i, k): i for i in a}
    by_b = {site_key(i, k): i for i in b}
    out = set()
    for key in by_a.keys() & by_b.keys():
        x, y = by_a[key], by_b[key]
        out.add(x if x == y or y.startswith(ASSERTED) else y if x.startswith(ASSERTED) else min(x, y))
    return frozenset(out)


def _key(raw: str, d: Definition) -> str:
    """A lock expression of the dispatcher as the implementation may name it: a global's
    name, or :data:`OPAQUE` for the dispatcher's own object (a field, a local, a
    parameter, a call)."""
    key = normalize(raw)
    if not _GLOBAL.fullmatch(key) or key in d.param_names:
        return OPAQUE
    declared = re.search(rf"^[ \t]+[\w \t]+\*?[ \t]*\b{re.escape(key)}[ \t]*(?:=[^=]|;|\[)", d.fp_body, re.MULTILINE)
    return OPAQUE if declared else key


def _held_at_dispatch(d: Definition, k: Knowledge, kept: Helpers | None = None,
                      dropped: Helpers | None = None) -> list[tuple[str, frozenset[str]]]:
    """(dispatch expression, items held) for each call through a pointer of a body."""
    out: list[tuple[str, frozenset[str]]] = []
    asserted = {_key(m.group(1), d) for m in _ASSERT.finditer(d.fp_body)} - {OPAQUE}
    for site in calls_with_holds(d.fp_body, k, lambda raw: _key(raw, d), kept, dropped):
        if not site.through_pointer:
            continue
        r = _RECEIVER.search(site.line, 0, site.match.start())
        if r is None or r.end() != site.match.start():
            out.append((f"->{site.name}", frozenset()))
            continue
        expr = re.sub(r"\s+", "", site.line[r.start():site.match.start()]) + site.name
        items = {h.item for h in site.held}
        items |= {f"{ASSERTED} {key}" for key in asserted if key not in site.released}
        out.append((expr, frozenset(items)))
    return out


def ops_context(defs: list[Definition], k: Knowledge, field_type: Callable[[str, str], str | None],
                kept: Helpers | None = None, dropped: Helpers | None = None,
                primitive: Callable[[str], str | None] | None = None) -> dict[str, list[str]]:
    """"T.member" -> [dispatcher, path, items...] for the members every call of which
    holds something. ``primitive``: how the tree takes a global lock (``cgroup_mutex`` ->
    ``mutex_lock``), for a lock a dispatcher only asserts; without one it is left out."""
    found: dict[str, tuple[frozenset[str], str, str]] = {}
    unresolved: set[str] = set()  # member names some call of which has no known type
    for d in defs:
        if not d.fp_body or not d.types:
            if d.fp_body:
                unresolved |= {c.name.rsplit(">", 1)[-1].rsplit(".", 1)[-1]
                               for c in d.calls if "->" in c.name or "." in c.name}
            continue
        types = dict(d.types)
        for expr, items in _held_at_dispatch(d, k, kept, dropped):
            member = member_key(expr, types, field_type) if not expr.startswith("->") else None
            name = re.split(r"->|\.", expr)[-1]
            if member is None:
                unresolved.add(name)
                continue
            was = found.get(member)
            found[member] = (items, d.name, d.path) if was is None else (meet(was[0], items, k), was[1], was[2])
    out = {}
    for member, (items, who, path) in sorted(found.items()):
        if member.rsplit(".", 1)[-1] in unresolved:
            continue
        named = set()
        for item in items:
            call, _, key = item.partition(" ")
            if call == ASSERTED:
                prim = primitive(key) if primitive is not None else None
                if prim is None:
                    continue
                item = f"{prim} {key}"
            named.add(item)
        if named:
            out[member] = [who, path, *sorted(named)]
    return out
