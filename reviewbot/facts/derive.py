"""From function definitions to facts: direct effects of each body, then the callers'
effects by following the call graph backwards (shortest chain first).

Resolution of a call: a file-local (static) definition in the caller's file wins; else
every global definition of the name (headers, non-static functions, macros). Where a
name has several global definitions (config alternatives, stubs), one that sleeps is
enough: the stub is the configuration that was not built.

Over-approximation is the risk of any may-sleep analysis; two cuts keep it honest:

* a function with a ``gfp_t`` parameter never inherits "may sleep" from its callees: it
  sleeps when its caller passes blocking flags, and the caller's own statement shows
  them (else every ``kmalloc(..., GFP_ATOMIC)`` would sleep through the page allocator);
* chains stop at :data:`MAX_DEPTH` calls; rules decide how deep a chain they believe.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable

from reviewbot.engine.refspec import normalize
from reviewbot.facts.callbacks import callback_table, indirect_calls
from reviewbot.facts.contracts import asserted_lock
from reviewbot.facts.extract import Call, Definition
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.locksummary import (
    LOCK_DEPTH,
    NOT_LOCKS,
    RCU_KEY,
    LockSummary,
    _lock_key,
    _rooted,
    lock_summary,
    substitute,
)
from reviewbot.facts.opscontext import ops_context
from reviewbot.facts.opsfacts import Dispatch, OpsScan, chain_levels, relevant_fields
from reviewbot.facts.preemptfacts import preempt_needs
from reviewbot.facts.rcuneeds import rcu_needs, rcu_openers
from reviewbot.facts.refs import _RELEASE_NAME, direct_acquires, direct_releases
from reviewbot.facts.returnrefs import returned_references
from reviewbot.facts.slabcaches import cache_charged, merge_caches
from reviewbot.facts.tables import Facts
from reviewbot.facts.works import work_functions

MAX_DEPTH = 8
UNLOCK_DEPTH = 3  # "may release the caller's lock L" through at most this many calls
RELEASE_DEPTH = 2


def direct_sleep(d: Definition, k: Knowledge, base: Facts | None = None) -> list[str] | None:
    """The chain of the first call of a body that sleeps by itself (or, with ``base``, of an
    unconditional call that the base facts know sleeps)."""
    best: Call | None = None
    for c in d.calls:
        if k.never_sleeps.fullmatch(c.name):
            continue
        if k.is_sleep_primitive(c.name):
            return [c.name]
        if base is not None and (c.top_level or d.macro):
            known = base.sleep_chain(c.name, d.path)
            if known is not None and len(known) < MAX_DEPTH:
                return [c.name, *known]
        if (best is None or len(c.args) < len(best.args)) and k.blocking_gfp.search(c.args):
            best = c
        elif best is None and k.implied_gfp(c.name, c.args):
            return [f"{c.name}(GFP_KERNEL, by default)"]
    if best is not None:
        flag = k.blocking_gfp.search(best.args)
        return [f"{best.name}({flag.group(0) if flag else ''})"]
    return None


_HARDIRQ_HEAD = re.compile(r"\b(irqreturn_t|enum\s+hrtimer_restart)$")
_SOFTIRQ_PARAM = re.compile(r"^struct\s+(timer_list|rcu_head|tasklet_struct)\s*\*\s*\w+$")


def direct_requires(d: Definition, base: Facts | None = None) -> dict[str, list[str]]:
    """Locks a body asserts its caller holds (lockdep_assert_held(&css_set_lock)), or
    that a callee it calls unconditionally asserts: lock -> chain."""
    out: dict[str, list[str]] = {}
    params = d.param_names
    for c in d.calls:
        found = asserted_lock(c.name, c.arg_list)
        if found is not None:
            text, named = found
            key = text if named else _rooted(text, params)
            if key is not None:
                out.setdefault(key, [c.name])
        elif base is not None and (c.top_level or d.macro) and not c.after_return:
            args = c.arg_list
            for raw, via in base.locks_required(c.name).items():
                key = substitute(raw, args, params)
                if key is not None and len(via) <= LOCK_DEPTH:
                    out.setdefault(key, [c.name, *via])
    return out


def _summary_lookup(graph: _Graph, summaries: list[LockSummary], path: str,
                    base: Facts | None, known: dict[str, LockSummary | None],
                    reads: set[int] | None = None) -> Callable[[str], LockSummary | None]:
    """``known``: the base's summaries already asked for (the same in every round and for
    every caller; lock_summary() only reads them). ``reads`` collects the definitions
    whose summaries were read."""
    def lookup(name: str) -> LockSummary | None:
        targets = graph.resolve(name, path)
        if targets:
            if reads is not None:
                reads.add(targets[0])
            return summaries[targets[0]]
        if base is None:
            return None
        if name not in known:
            found = LockSummary(base.locks_taken(name), base.locks_released(name),
                                base.locks_kept(name))
            known[name] = found if (found.takes or found.drops or found.keeps) else None
        return known[name]
    return lookup


class _Graph:
    def __init__(self, defs: list[Definition]) -> None:
        self.defs = defs
        self.local: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.glob: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(defs):
            if d.local:
                self.local[(d.path, d.name)].append(i)
            else:
                self.glob[d.name].append(i)

    def resolve(self, name: str, path: str) -> list[int]:
        return self.local.get((path, name)) or self.glob.get(name, [])

    def any_callers(self) -> dict[int, list[int]]:
        back: dict[int, list[int]] = defaultdict(list)
        for i, d in enumerate(self.defs):
            for name in {c.name for c in d.calls}:
                for t in self.resolve(name, d.path):
                    if t != i:
                        back[t].append(i)
        return back

    def top_level_callers(self) -> dict[int, list[int]]:
        back: dict[int, list[int]] = defaultdict(list)
        for i, d in enumerate(self.defs):
            for name in {c.name for c in d.calls if c.top_level or d.macro}:
                for t in self.resolve(name, d.path):
                    if t != i:
                        back[t].append(i)
        return back


def derive(defs: Iterable[Definition], k: Knowledge, revision: str = "",
           base: Facts | None = None, ops: OpsScan | None = None) -> Facts:
    """Facts of a set of definitions: a whole base, or a patch's own functions on top of
    the ``base`` facts (whose calls then count as known effects). ``ops``: the struct
    fields and ops initializers of a base's sources (facts/opsfacts.py)."""
    defs = [d for d in defs if not k.debug_paths.search(d.path)]
    graph = _Graph(defs)
    fields = ops.field_types() if ops is not None else {}

    def field_type(owner: str, name: str) -> str | None:
        found = fields.get(f"{owner}.{name}")
        return found if found is not None or base is None else base.field_type(owner, name)
    dispatch = Dispatch(defs, graph.resolve, field_type, ops.inits if ops is not None else {},
                        ops.ops_tables() if ops is not None else None)
    # Only unconditional calls carry "may sleep" to a caller: a put helper frees (and may
    # sleep) only when the count hits zero, under an `if`; following that would make
    # put_task_struct() sleep. A body's own sleeping call counts wherever it is.
    callers = graph.top_level_callers()

    # Lock summaries: a fixpoint over the call graph, LOCK_DEPTH rounds (a helper of a
    # helper), each body read in order with its callees' summaries of the round before.
    # (A body none of whose callees' summaries changed in a round is not read again.)
    base_summaries: dict[str, LockSummary | None] = {}  # the base's, by name
    summaries: list[LockSummary] = [LockSummary() for _ in defs]
    reads: list[set[int]] = [set() for _ in defs]  # the defs whose summaries each one read
    changed: set[int] | None = None  # (None: the first round reads every body)
    for _ in range(LOCK_DEPTH + 1):
        before = summaries
        summaries = list(before)
        for i, d in enumerate(defs):
            if changed is not None and not reads[i] & changed:
                continue
            reads[i] = set()
            summaries[i] = lock_summary(
                d, k, _summary_lookup(graph, before, d.path, base, base_summaries, reads[i]))
        changed = {i for i, (now, was) in enumerate(zip(summaries, before, strict=True)) if now != was}
        if not changed:
            break  # a round reads only the last one's summaries: the rest would repeat it
    drops_of = {i: s.drops for i, s in enumerate(summaries) if s.drops}
    # (Ending the caller's interrupt- or preemption-disabled section is no lock a sleep
    # may wait for: such a body still passes its sleep on.)
    lets_go = {i for i, s in enumerate(summaries)
               if set(s.drops) - NOT_LOCKS or set(s.cycles) - NOT_LOCKS}

    # May sleep: breadth first from the bodies that sleep by themselves. A function whose
    # sleep depends on its caller does not pass it on: one with a gfp_t parameter, and one
    # that releases its caller's lock (it may sleep exactly while the lock is dropped:
    # forget_original_parent() sleeps only after find_child_reaper() dropped tasklist_lock).
    chain: dict[int, list[str]] = {}
    queue: deque[int] = deque()
    for i, d in enumerate(defs):
        if k.never_sleeps.fullmatch(d.name) or i in lets_go:
            continue  # (cgroup_rstat_flush_locked() sleeps only with the caller's lock dropped)
        reason = direct_sleep(d, k, base)
        if reason is None and base is not None:  # a call through the base's ops tables
            reason = next(([expr, *via] for expr, member in dispatch.calls.get(i, ())
                           if (via := base.ops_sleep(member)) is not None), None)
        if reason is not None:
            chain[i] = reason
            queue.append(i)
    conditional = {i for i, d in enumerate(defs) if any(k.conditional_params.search(p) for p in d.params)}
    conditional |= lets_go
    ops_sleeps: dict[str, list[str]] = {}  # "T.member" -> [implementation, chain...]
    while queue:
        i = queue.popleft()
        if chain_levels(chain[i]) >= MAX_DEPTH:
            continue
        for c in callers.get(i, ()):
            if c in chain or c in conditional or k.never_sleeps.fullmatch(defs[c].name):
                continue
            chain[c] = [defs[i].name, *chain[i]]
            queue.append(c)
        # An ops member may sleep when one of its implementations may; so does a call of
        # it (``ns->ops->put(ns)``), which is one call level with the implementation.
        for member in sorted(dispatch.impl_of.get(i, ())):
            if member in ops_sleeps:
                continue
            ops_sleeps[member] = [defs[i].name, *chain[i]]
            for c, expr in dispatch.callers.get(member, ()):
                if c in chain or c in conditional or k.never_sleeps.fullmatch(defs[c].name):
                    continue
                chain[c] = [expr, *ops_sleeps[member]]
                queue.append(c)

    facts = Facts(revision=revision, digest=k.digest)
    for i, path_chain in chain.items():
        d = defs[i]
        if d.local:
            facts.local_sleeps.setdefault(d.path, {}).setdefault(d.name, path_chain)
        else:
            known = facts.sleeps.get(d.name)
            if known is None or len(path_chain) < len(known):
                facts.sleeps[d.name] = path_chain
    for d in defs:
        if d.local:
            facts.local_names.setdefault(d.path, []).append(d.name)
    # File-local functions are kept by name too: a patch's own static helpers are what its
    # calls reach, and a static's name colliding with another file's is rare enough.
    for i, drops in drops_of.items():
        drops = {lk: v for lk, v in drops.items() if lk != RCU_KEY}  # (only for "may sleep")
        if drops:
            facts.unlocks.setdefault(defs[i].name, {}).update(
                {lk: v for lk, v in drops.items() if lk not in facts.unlocks.get(defs[i].name, {})})

    # Locks a function needs held by its caller: its own assertions, and those of the
    # functions it calls unconditionally before taking the lock itself.
    requires = [direct_requires(d, base) for d in defs]
    for _ in range(LOCK_DEPTH):
        grew = False
        for i, d in enumerate(defs):
            for call in d.calls:
                if not (call.top_level or d.macro) or call.after_return:
                    continue
                for t in graph.resolve(call.name, d.path):
                    if t == i:
                        continue
                    args = call.arg_list
                    for raw, via in requires[t].items():
                        key = substitute(raw, args, d.param_names)
                        if key is None or key in requires[i] or key in summaries[i].takes \
                                or key in summaries[i].keeps or len(via) >= LOCK_DEPTH:
                            continue
                        requires[i][key] = [call.name, *via]
                        grew = True
        if not grew:
            break
    for i, needs in enumerate(requires):
        if needs:
            facts.requires.setdefault(defs[i].name, {}).update(
                {lk: v for lk, v in needs.items() if lk not in facts.requires.get(defs[i].name, {})})

    # Global locks taken in interrupt context: by an interrupt entry point, or by a
    # function it calls unconditionally (per the lock summaries).
    # percpu_ref release callbacks: "@release must not sleep - it may potentially be
    # called from RCU callback context by percpu_ref_kill()" (include/linux/percpu-refcount.h).
    ref_releases = {c.arg_list[1].strip() for d in defs for c in d.calls
                    if c.name == "percpu_ref_init" and len(c.arg_list) > 2}
    for i, d in enumerate(defs):
        context = "hardirq" if _HARDIRQ_HEAD.search(d.head) else \
            "softirq" if (len(d.params) == 1 and _SOFTIRQ_PARAM.match(d.params[0])) \
            or (d.name in ref_releases and len(d.params) == 1 and "percpu_ref" in d.params[0]) else ""
        if not context:
            continue
        taken = dict(summaries[i].takes)
        for entry_call in d.calls:
            lock_call = k.lock_for(entry_call.name)
            if lock_call is not None and lock_call[1] == "acquire" and not lock_call[0].keyless:
                key = _lock_key(entry_call.arg_list[0], lock_call[0], d.param_names)
                if key is not None:
                    taken.setdefault(key, [entry_call.name])
        for lock, via in taken.items():
            if not lock.startswith("$"):
                known = facts.irq_locks.get(lock)
                if known is None or (known[0] == "softirq" and context == "hardirq"):
                    facts.irq_locks[lock] = [context, d.name, *via]
    for i, summary in enumerate(summaries):
        for pair in summary.order:
            facts.order.setdefault(f"{pair[0]} {pair[1]}", defs[i].name)
    for i, summary in enumerate(summaries):
        name = defs[i].name
        if summary.takes:
            facts.locks.setdefault(name, {}).update(
                {lk: v for lk, v in summary.takes.items() if lk not in facts.locks.get(name, {})})
        if summary.keeps:
            facts.keeps.setdefault(name, {}).update(
                {lk: v for lk, v in summary.keeps.items() if lk not in facts.keeps.get(name, {})})

    # Parameters whose reference a function drops (put helpers), through helpers of helpers.
    releases: dict[int, dict[int, str]] = {}
    for i, d in enumerate(defs):
        found = direct_releases(d, k, base)
        if found:
            releases[i] = {idx: obj for idx, (obj, _) in found.items()}
    for _ in range(RELEASE_DEPTH):
        grew = False
        for i, d in enumerate(defs):
            names = d.param_names
            if not names or not (_RELEASE_NAME.search(d.name)):
                continue
            for call in d.calls:
                for t in graph.resolve(call.name, d.path):
                    if t not in releases or t == i:
                        continue
                    args = call.arg_list
                    for idx, obj in releases[t].items():
                        if idx < len(args) and normalize(args[idx]) in names:
                            mine = releases.setdefault(i, {})
                            pos = names.index(normalize(args[idx]))
                            if pos not in mine:
                                mine[pos] = obj
                                grew = True
        if not grew:
            break
    for i, rel in releases.items():
        if rel:
            facts.releases.setdefault(defs[i].name, {}).update({str(k2): v for k2, v in rel.items()})
    # Parameters a get helper takes a reference on for its caller (one level: the kernel's
    # get helpers wrap the counter directly).
    for i, d in enumerate(defs):
        if i not in releases and (got := direct_acquires(d, k)):
            facts.acquires.setdefault(d.name, {}).update({str(k2): v for k2, v in got.items()})
    # Functions that return a reference their caller owns (facts/returnrefs.py); one that
    # also drops a parameter's reference is an iterator step, not a lookup.
    facts.returns = returned_references(
        defs, k, graph.resolve, (i for i, rel in releases.items() if any(o != "stored" for o in rel.values())),
        lambda name: facts.released_params(name) or (base.released_params(name) if base is not None else {}),
        base.returned_ref if base is not None else None)
    # Memory a function keeps without charging it (the first such allocation of a name;
    # a static's name is kept with its file, which the rules compare).
    # Slab caches first: an allocation from a cache created without SLAB_ACCOUNT is as
    # uncharged as a plain GFP_KERNEL one (facts/slabcaches.py).
    for d in defs:
        for cache, accounted in d.slab_caches:
            merge_caches(facts.slab_caches, cache, accounted, d.path)

    def cache_kind(name: str) -> str:
        mine = facts.slab_cache(name)
        return mine or (base.slab_cache(name) if base is not None else "")

    for d in defs:
        for alloc in d.kept_allocs:
            if k.unaccounted(alloc) or (k.blocking_gfp.search(alloc) and not k.accounted_gfp.search(alloc)
                                        and cache_charged(alloc, cache_kind) is False):
                facts.unaccounted.setdefault(d.name, [d.path, "static" if d.local else "", alloc])
                break
    facts.works = work_functions(defs)
    facts.preempt = preempt_needs(defs)
    facts.rcu_needs = rcu_needs(defs, graph.resolve, k.lock_for, base.rcu_need if base is not None else None)
    facts.rcu_opens = rcu_openers(defs, graph.resolve)
    # Callbacks run under their caller's lock (facts/callbacks.py).
    indirect = indirect_calls(defs, k)
    facts.indirect = {defs[i].name: v for i, v in sorted(indirect.items())}
    facts.callbacks = callback_table(defs, indirect, graph.resolve,
                                     base.callback_params if base is not None else None)
    facts.defined = sorted({d.name for d in defs})
    facts.ops_sleeps = ops_sleeps
    # Global locks an implementation takes: a call of the member may take them (the
    # double-lock and lock-order checks of a direct call through the member).
    for i, members in dispatch.impl_of.items():
        for lock, via in summaries[i].takes.items():
            for member in members if not lock.startswith("$") else ():
                facts.ops_locks.setdefault(member, {}).setdefault(lock, [defs[i].name, *via])
    if ops is not None:  # (a base: a patch's own calls are not all the calls of a member)
        taken_by: dict[str, str] = {}  # global lock -> the primitive the tree takes it with
        for summary in summaries:
            for lock, via in summary.takes.items():
                if via and not lock.startswith("$") and k.lock_for(via[-1]) is not None:
                    taken_by.setdefault(lock, via[-1])
        facts.ops_context = ops_context(defs, k, field_type, lambda n: facts.keeps.get(n, {}),
                                        lambda n: facts.unlocks.get(n, {}), taken_by.get)
    facts.ops_fields = relevant_fields(fields, set(ops_sleeps) | set(facts.ops_locks))
    facts.stats = {"functions": len(defs), "may_sleep": len(chain), "take_locks": len(facts.locks),
                   "release_params": len(releases), "acquire_params": len(facts.acquires),
                   "return_refs": len(facts.returns), "unaccounted": len(facts.unaccounted),
                   "preempt_needs": len(facts.preempt), "rcu_needs": len(facts.rcu_needs),
                   "slab_caches": len(facts.slab_caches),
                   "ops_members": len(dispatch.implemented), "ops_sleep": len(ops_sleeps),
                   "ops_calls": sum(len(v) for v in dispatch.calls.values()),
                   "ops_context": len(facts.ops_context)}
    return facts
