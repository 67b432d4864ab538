"""Lock summaries: what a function does to locks as its callers see them (takes, drops,
keeps, drops and retakes, nests), read from its calls in order, and the keys that name a
lock across a call (a global's name, or ``$N->field`` for a lock reached from parameter N,
substituted with the caller's arguments). Split out of :mod:`reviewbot.facts.derive`,
which runs them over the call graph."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import Definition
from reviewbot.facts.knowledge import Knowledge, LockSpec

LOCK_DEPTH = 2  # "takes lock L" through at most this many calls
_GLOBAL_LOCK = re.compile(r"^\s*&\s*([A-Za-z_]\w*)\s*$")

RCU_KEY = "<rcu>"  # an RCU read section in the lock summaries (not a lock name)
# Interrupt-, preemption- and bh-disabled sections without a lockdep name: recorded only
# when a body ends its caller's (__split_huge_page() re-enables the interrupts its caller
# disabled), so that the caller's section is not reported as leaked.
SECTION_KEYS = {"irq": "<irq>", "preempt": "<preempt>", "bh": "<bh>"}
SECTION_VALUES = frozenset(SECTION_KEYS.values())
# A lock the body releases that its callers cannot name (``xa_unlock(&folio->mapping->
# i_pages)`` on a local): a caller's object lock may end there, unseen.
OTHER_KEY = "<other>"
NOT_LOCKS = SECTION_VALUES | {OTHER_KEY}  # drops that are no lock a sleep may wait for


def _lock_key(arg_text: str, spec: LockSpec, params: tuple[str, ...]) -> str | None:
    """The lock a call names, as a caller can use it: a global (``&css_set_lock`` ->
    ``css_set_lock``), a parameter's (``&p->alloc_lock`` -> ``$0->alloc_lock``), or the
    lockdep name of a keyless global section (cpus_read_lock() takes cpu_hotplug_lock)."""
    if spec.keyless:
        return spec.lock or None
    return _rooted(arg_text, params)


def _rooted(arg_text: str, params: tuple[str, ...]) -> str | None:
    m = _GLOBAL_LOCK.match(arg_text)
    if m and m.group(1) not in params:
        return m.group(1)
    key = normalize(arg_text)
    if key.startswith("current->") and "current" not in params:
        # `current` is the same task in a caller and its callee: a lock reached from it
        # is one lock for both (ptrace_stop() drops current->sighand->siglock).
        return key
    root = re.split(r"->|\.", key, maxsplit=1)[0]
    if root in params and root:
        return f"${params.index(root)}{key[len(root):]}"
    return None


def substitute(key: str, args: Sequence[str], params: tuple[str, ...]) -> str | None:
    """A callee's ``$N...`` lock key in the caller's terms (None: not expressible)."""
    if not key.startswith("$"):
        return key
    m = re.match(r"\$(\d+)(.*)$", key)
    if not m or int(m.group(1)) >= len(args):
        return None
    arg = normalize(args[int(m.group(1))])
    rooted = _rooted(arg, params) if params else None
    if rooted is not None and rooted.startswith("$"):
        return rooted + m.group(2)
    return None


def caller_key(key: str, args: Sequence[str]) -> str | None:
    """A ``$N...`` key as an expression at a call site (for the path analysis)."""
    if not key.startswith("$"):
        return key
    m = re.match(r"\$(\d+)(.*)$", key)
    if not m or int(m.group(1)) >= len(args):
        return None
    return normalize(args[int(m.group(1))]) + m.group(2)


# Functions the kernel runs in interrupt context, by their signature: hard interrupt
# handlers and hrtimer callbacks; timer, tasklet and RCU callbacks run in softirq context.


@dataclass
class LockSummary:
    """What a function does to locks, as its callers see it (keys: a global's name, or
    ``$N->field`` for a lock reached from parameter N)."""

    takes: dict[str, list[str]] = field(default_factory=dict)  # takes (and maybe drops) on every run
    drops: dict[str, list[str]] = field(default_factory=dict)  # releases its caller's lock
    keeps: dict[str, list[str]] = field(default_factory=dict)  # returns holding (a lock helper)
    cycles: dict[str, list[str]] = field(default_factory=dict)  # drops the caller's, retakes it
    order: set[tuple[str, str]] = field(default_factory=set)  # (outer, inner) global locks nested


def _note_order(out: LockSummary, held: dict[str, list[str]], strong: set[str], inner: str) -> None:
    """Record that ``inner`` is taken inside each global lock held on every run here (the
    outer one taken unconditionally, the inner one wherever it is taken after it, also
    under a condition: an order the base follows whenever that code runs)."""
    if inner.startswith(("$", "<")):
        return
    out.order.update((outer, inner) for outer in held
                     if outer != inner and outer in strong and not outer.startswith(("$", "<")))


def lock_summary(d: Definition, k: Knowledge, summary_of: Callable[[str], LockSummary | None]
                 ) -> LockSummary:
    """Read a body's calls in order: lock primitives, and calls of functions whose summary
    is known (a helper that takes a lock for its caller, or drops the caller's)."""
    out = LockSummary()
    held: dict[str, list[str]] = {}
    ever: set[str] = set()  # taken at some earlier point of the body (an unlock on an
    # early-exit branch and the final unlock are both that lock's, not the caller's)
    strong: set[str] = set()  # taken on every run (not under a condition or early return)
    first: dict[str, list[str]] = {}  # how each lock was first taken (for __acquires())
    local: set[str] = set()  # locks of its own objects it takes (their release is no drop)
    unnamed_kept: set[str] = set()  # ... and those a helper takes for it
    params = d.param_names
    for c in d.calls:
        unconditional = (c.top_level or d.macro) and not c.after_return
        found = k.lock_for(c.name)
        if found is None:
            callee = summary_of(c.name)
            if callee is None:
                continue
            args = c.arg_list
            for raw, via in callee.drops.items():
                lock = substitute(raw, args, params)
                if lock is None and raw.startswith("$"):
                    # `xa_unlock(&mapping->i_pages)` on a local: not the caller's to name,
                    # unless this body took it (then it is its own business).
                    expr = caller_key(raw, args)
                    if expr is not None and normalize(expr) not in local and normalize(expr) not in unnamed_kept:
                        out.drops.setdefault(OTHER_KEY, [c.name, *via])
                    continue
                if lock is not None and held.pop(lock, None) is None and lock not in ever:
                    out.drops.setdefault(lock, [c.name, *via])
            for raw, via in callee.takes.items():
                lock = substitute(raw, args, params)
                if lock is not None and lock not in held and lock not in out.drops and len(via) <= LOCK_DEPTH:
                    if unconditional:
                        out.takes.setdefault(lock, [c.name, *via])
                    _note_order(out, held, strong, lock)
            for raw, via in callee.keeps.items():
                lock = substitute(raw, args, params)
                if lock is None and raw.startswith("$") and (expr := caller_key(raw, args)) is not None:
                    unnamed_kept.add(normalize(expr))  # `xas_lock(&xas)`: its own lock
                if lock is not None:
                    if lock not in held:
                        _note_order(out, held, strong, lock)  # a helper that takes it here
                    held[lock] = [c.name, *via]
                    first.setdefault(lock, held[lock])
                    ever.add(lock)
                    if unconditional:
                        strong.add(lock)
            continue
        spec, role = found
        if spec.keyless and not spec.lock and spec.kind == "rcu":
            # An RCU read section has no lockdep name, and sections nest: never a "take".
            # A body that leaves its caller's section (pin_kill(): "called with RCU read
            # lock held, drops it") or leaves and re-enters it (rcu_lock_break()) may sleep
            # only outside it: a drop (or cycle) that keeps the function off "may sleep".
            if role == "release":
                if held.pop(RCU_KEY, None) is None and RCU_KEY not in ever:
                    out.drops.setdefault(RCU_KEY, [c.name])
            else:
                ever.add(RCU_KEY)
                held[RCU_KEY] = [c.name]
            continue
        if spec.keyless and not spec.lock and spec.kind in SECTION_KEYS:
            # Only unconditional ones, and never a macro's (whose conditions the summary
            # cannot see): `if (IS_ENABLED(CONFIG_PREEMPT_RT)) preempt_enable();` in
            # u64_stats_update_end() ends what its _begin() started on RT only, and
            # preempt_enable_nested() is that macro.
            section = SECTION_KEYS[spec.kind]
            plain = c.top_level and not c.after_return and not d.macro
            if role == "release":
                if held.pop(section, None) is None and section not in ever and plain:
                    out.drops.setdefault(section, [c.name])
            elif not spec.conditional:
                ever.add(section)
                held[section] = [c.name]
                if plain:
                    strong.add(section)
            continue
        key = _lock_key(c.arg_list[0], spec, params)
        if key is None:
            expr = normalize(c.arg_list[0]) if c.arg_list else ""
            if role == "release" and expr and expr not in local:
                out.drops.setdefault(OTHER_KEY, [c.name])
            elif role == "acquire":
                local.add(expr)
            continue
        if role == "release":
            if held.pop(key, None) is None and key not in ever:
                out.drops.setdefault(key, [c.name])
            continue
        ever.add(key)
        first.setdefault(key, [c.name])
        if not spec.conditional:
            held[key] = [c.name]
            if unconditional:
                strong.add(key)
        if unconditional and not (spec.conditional or spec.shared) and key not in out.drops:
            out.takes.setdefault(key, [c.name])
        if not spec.conditional:
            # Under a branch too: whenever it is taken there, it is taken inside what is
            # held on every run (cgroup_attach_lock() takes cgroup_threadgroup_rwsem only
            # `if (lock_threadgroup)`, always inside cpus_read_lock()).
            _note_order(out, held, strong, key)
    # A caller's lock dropped and taken again (cgroup_rstat_flush_locked() lets others in
    # now and then) is still the caller's at the end: neither dropped nor kept.
    for lock in [lk for lk in out.drops if lk in held]:
        out.cycles[lock] = out.drops.pop(lock)
        held.pop(lock)
    # Only a void function is a lock helper (task_lock(), cgroup_attach_lock()); one that
    # returns a value returns holding the lock only when it succeeded (lock_task_sighand()).
    out.keeps = {lk: v for lk, v in held.items() if lk in strong and lk != RCU_KEY} if d.returns_void else {}
    # A function annotated `__acquires(l)` that takes l returns holding it whatever its
    # body does in between (cgroup_lock_and_drain_offline() drops and retakes it while it
    # waits); one that releases its caller's l first (`__releases(l) __acquires(l)`,
    # cgroup_rstat_flush_locked()) cycles the caller's lock and is no lock helper.
    for raw in d.acquires if d.returns_void else ():
        lock = _rooted(raw, params)
        if lock is not None and lock in first and lock not in out.keeps \
                and lock not in out.drops and lock not in out.cycles:
            out.keeps[lock] = first[lock]
    return out
