"""Facts derived once per kernel base: which functions may sleep, which take a global lock,
which drop a reference their caller passed in. Rules consult them so that a call they have
never seen by name is still judged by what its body does.

Every fact carries its chain, the calls that lead to the primitive, because a finding must
say why: "kernfs_walk_and_get() may sleep: -> kernfs_walk_and_get_ns() -> down_read()".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Format of the cached tables; bump when the derivation changes meaning.
FACTS_VERSION = 47  # 47: returns through a container accessor (`return css_rdmacg(task_get_css(...))`), 46: rcu_needs (functions that read an RCU pointer their caller must keep alive, facts/rcuneeds.py), 45: names (every function and function-like macro a base defines), 44: field_locks also of lists ("list:cgroup->cset_links": the lock held where the tree links, unlinks and walks them), 43: lock_order also where the inner lock is taken under a condition or by a helper that keeps it, 42: alloc_percpu()/__alloc_percpu() among the kept uncharged allocations, 41: rcu_iters (iterator macros wrapping RCU walks, facts/iterators.py), irq_locks of percpu_ref release callbacks, 40: macro parameters read through their parentheses ((xa)->xa_lock), 39: lock_order also by object lock class ("request_queue->queue_lock",
# facts/fieldlocks.py), 38: ops_context table (facts/opscontext.py), 36, 37: preempt table narrowed, 34: allocators with optional gfp flags (kzalloc_obj()), 16: works table (lock rules), 17: acquires table (refcount rules),
# 19: indirect and callbacks tables (entry context of callbacks), 20: field_locks and
# irq_shared tables (facts/fieldlocks.py), cond_keeps (facts/condlocks.py), keeps from
# __acquires(), 21: returns table (functions that return a reference, facts/returnrefs.py),
# 22: both, 24: slab_caches table (caches created with or without SLAB_ACCOUNT,
# facts/slabcaches.py) and kept allocations from plain caches in unaccounted, 25: condlocks
# read functions the source rewrites now parse (do_each_*(), 6.x attributes, type
# arguments), 26: both, 27: requires also from lockdep_assert_cpus_held(),
# percpu_rwsem_assert_held() and one-lock conditions (rcu_dereference_protected(p,
# lockdep_is_held(&X)), WARN_ON(!mutex_is_locked(&X))), 28: a body that leaves its
# caller's RCU read section (pin_kill(), rcu_lock_break()) is not "may sleep", 29: locks
# reached from `current` are one key in callers and callees, 23 (another
# branch): ops_sleeps, ops_fields and ops_locks tables (calls through ops tables,
# facts/opsfacts.py), a call through a pointer no longer resolves by its member's name,
# 30: all of them, 32: "may sleep" followed 8 calls deep (was 5), 33: merged with the
# speed branch (call regexes made possessive, same matches), 35: preempt table
# (facts/preemptfacts.py)


@dataclass
class Facts:
    revision: str  # the base commit the tables were derived from ("" for a patch's own)
    digest: str  # kernel.yaml digest they were derived with
    sleeps: dict[str, list[str]] = field(default_factory=dict)  # name -> chain to a primitive
    local_sleeps: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # path -> name -> chain
    local_names: dict[str, list[str]] = field(default_factory=dict)  # path -> file-local functions
    locks: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # name -> lock -> chain
    unlocks: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # releases the caller's
    keeps: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # returns holding (helpers)
    requires: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # caller must hold
    order: dict[str, str] = field(default_factory=dict)  # "outer inner" -> a function nesting them
    irq_locks: dict[str, list[str]] = field(default_factory=dict)  # lock -> [context, fn, chain...]
    releases: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> param index -> object
    acquires: dict[str, dict[str, str]] = field(default_factory=dict)  # get helpers, as releases
    stats: dict[str, Any] = field(default_factory=dict)
    defined: list[str] = field(default_factory=list)  # names these facts know the bodies of
    # every function and function-like macro the base defines (facts/fallback.py asks
    # whether a callee exists in it at all)
    names: list[str] = field(default_factory=list)
    # names a patch changes but shows only in part (a hunk): what their new bodies do to
    # the caller's locks is not known (facts/patch.py; empty for a base)
    partly: list[str] = field(default_factory=list)
    rcu_fields: list[str] = field(default_factory=list)  # pointer names __rcu wherever declared
    # iterator macro -> the RCU list walk it expands to (facts/iterators.py)
    rcu_iters: dict[str, str] = field(default_factory=dict)
    # name -> [path, "static" or "", "ev = kzalloc(sizeof(*ev), GFP_KERNEL)"]: an allocation
    # the body keeps, made with blocking flags that do not charge it to a memcg
    unaccounted: dict[str, list[str]] = field(default_factory=dict)
    # work item member name -> [function, path] INIT_WORK() binds to it (facts/works.py)
    works: dict[str, list[list[str]]] = field(default_factory=dict)
    # function -> parameter index -> [parameter, "spin_lock_irq blkg->q->queue_lock", ...]:
    # what it holds around a call of that function-pointer parameter (facts/callbacks.py)
    indirect: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # function passed by name as such an argument -> [caller, parameter, path of a static
    # callback or "", held...]
    callbacks: dict[str, list[str]] = field(default_factory=dict)
    # function -> [object, callee, ..., the root acquire]: every value it returns is a
    # reference its caller owns (or NULL/an error) (facts/returnrefs.py)
    returns: dict[str, list[str]] = field(default_factory=dict)
    # function (a static one as "path:name") -> [callee, ..., primitive]: it needs its
    # caller to have preemption or interrupts disabled (facts/preemptfacts.py)
    preempt: dict[str, list[str]] = field(default_factory=dict)
    # "css_set->nr_tasks" -> [lock, sites holding it, all sites, example functions...]: the
    # lock the tree writes a field under (facts/fieldlocks.py)
    field_locks: dict[str, list[str]] = field(default_factory=dict)
    # "request_queue->queue_lock" or a global -> [irq-disabled sites, all sites, examples...]:
    # a lock the tree takes with interrupts disabled wherever it takes it
    irq_shared: dict[str, list[str]] = field(default_factory=dict)
    # name -> lock -> ["nonzero" or "zero", acquiring primitive]: returns holding the lock
    # only when it succeeded (facts/condlocks.py)
    cond_keeps: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # slab cache name -> ["account", "plain" or "mixed", path of a creation]: whether the
    # tree creates it with SLAB_ACCOUNT (facts/slabcaches.py)
    slab_caches: dict[str, list[str]] = field(default_factory=dict)
    # "proc_ns_operations.put" -> [implementation, chain...]: an ops member one of whose
    # implementations may sleep; "ns_common.ops" -> "proc_ns_operations": struct-typed
    # fields on the way to such members (facts/opsfacts.py)
    ops_sleeps: dict[str, list[str]] = field(default_factory=dict)
    ops_fields: dict[str, str] = field(default_factory=dict)
    # "cgroup_subsys.css_offline" -> global lock -> [implementation, chain...]
    ops_locks: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # "cgroup_subsys.css_offline" -> [dispatcher, path, "@assert cgroup_mutex", ...]: what
    # every call through the member holds (facts/opscontext.py)
    ops_context: dict[str, list[str]] = field(default_factory=dict)
    # name -> [alternatives to rcu_read_lock(), [callee, ..., rcu_dereference_check]]: it
    # reads an RCU pointer its caller must keep alive (facts/rcuneeds.py)
    rcu_needs: dict[str, list[Any]] = field(default_factory=dict)
    # functions that may return inside an RCU read section they opened (facts/rcuneeds.py)
    rcu_opens: list[str] = field(default_factory=list)

    def ops_entry(self, member: str) -> list[str]:
        """[dispatcher, path, item...]: what every call of an ops member holds."""
        return self.ops_context.get(member, [])

    def ops_lock(self, member: str) -> dict[str, list[str]]:
        """Global locks some implementation of an ops member takes: lock -> [implementation,
        chain...]."""
        return self.ops_locks.get(member, {})

    def ops_sleep(self, member: str) -> list[str] | None:
        """[implementation, chain...] of an ops member (``"T.member"``) that may sleep."""
        return self.ops_sleeps.get(member)

    def field_type(self, owner: str, name: str) -> str | None:
        """The struct type of field ``name`` of ``struct owner`` (pointer or embedded)."""
        return self.ops_fields.get(f"{owner}.{name}")

    def sleep_chain(self, name: str, path: str | None = None) -> list[str] | None:
        """How ``name``, called from a file at ``path``, may sleep (None: it does not)."""
        if path is not None:
            local = self.local_sleeps.get(path, {})
            if name in local:
                return local[name]
            if name in self.local_names.get(path, ()):
                return None  # a static of the caller's file shadows a global of that name
        return self.sleeps.get(name)

    def locks_taken(self, name: str) -> dict[str, list[str]]:
        return self.locks.get(name, {})

    def released_params(self, name: str) -> dict[int, str]:
        return {int(k): v for k, v in self.releases.get(name, {}).items()}

    def acquired_params(self, name: str) -> dict[int, str]:
        """Parameters ``name`` takes a reference on for its caller (a get helper)."""
        return {int(k): v for k, v in self.acquires.get(name, {}).items()}

    def returned_ref(self, name: str) -> list[str]:
        """[object, chain...] when ``name`` returns a reference its caller must put; []."""
        return self.returns.get(name, [])

    def locks_released(self, name: str) -> dict[str, list[str]]:
        """Locks ``name`` may release without having taken them (the caller's); keys are
        globals' names or ``$N->field`` for a lock reached from parameter N."""
        return self.unlocks.get(name, {})

    def locks_kept(self, name: str) -> dict[str, list[str]]:
        """Locks ``name`` takes and returns holding (task_lock(), cgroup_lock())."""
        return self.keeps.get(name, {})

    def locks_kept_if(self, name: str) -> dict[str, list[str]]:
        """Locks ``name`` returns holding only when it succeeded: lock -> [polarity
        ("nonzero": a true or non-NULL result holds it; "zero": a 0 result), primitive]."""
        return self.cond_keeps.get(name, {})

    def locks_required(self, name: str) -> dict[str, list[str]]:
        """Locks ``name`` asserts its caller holds (lockdep_assert_held())."""
        return self.requires.get(name, {})

    def nested_in(self, outer: str, inner: str) -> str | None:
        """A base function that takes ``inner`` while holding ``outer``, if any."""
        return self.order.get(f"{outer} {inner}")

    def irq_context_of(self, lock: str) -> list[str] | None:
        """[hardirq|softirq, the interrupt-context function, the chain] of a global lock
        taken in interrupt context."""
        return self.irq_locks.get(lock)

    def work_functions(self, member: str) -> list[list[str]]:
        """[function, path of its INIT_WORK()] a work item of that member name runs; empty
        when unknown or when too many structures share the name."""
        return self.works.get(member, [])

    def callback_params(self, name: str) -> dict[str, list[str]]:
        """What ``name`` holds around a call of each function-pointer parameter."""
        return self.indirect.get(name, {})

    def callback_context(self, name: str) -> list[str]:
        """[caller, parameter, static path or "", held...] of a function the tree passes
        as a callback run under the caller's lock; empty when none."""
        return self.callbacks.get(name, [])

    def field_lock(self, name: str) -> list[str]:
        """[lock, held sites, all sites, examples...] of a field (``type->path``) the tree
        writes under one lock; empty when none."""
        return self.field_locks.get(name, [])

    def irq_shared_lock(self, lock: str) -> list[str]:
        """[irq-disabled sites, all sites, examples...] of a lock (a global, or
        ``type->path``) the tree takes with interrupts disabled; empty when not."""
        return self.irq_shared.get(lock, [])

    def changed_by_patch(self, name: str) -> bool:
        """Whether a patch made ``name`` release a parameter the base version did not."""
        return False

    def shown_in_part(self, name: str) -> bool:
        """Whether the patch changes ``name`` but shows only part of its new body."""
        return name in self.partly

    def unaccounted_alloc(self, name: str) -> list[str] | None:
        """[path, "static" or "", allocation] of memory ``name`` keeps without charging it."""
        return self.unaccounted.get(name)

    def preempt_table(self) -> dict[str, list[str]]:
        return self.preempt

    def preempt_names(self) -> frozenset[str]:
        """The bare names of :meth:`preempt_need`'s table (a set test before any lookup)."""
        names = getattr(self, "_preempt_names", None)
        if names is None:
            names = frozenset(k.rpartition(":")[2] for k in self.preempt_table())
            self._preempt_names = names
        return names

    def preempt_need(self, name: str, path: str | None = None) -> list[str] | None:
        """[callee, ..., primitive] when ``name`` (the static one of ``path`` first) needs
        its caller to have disabled preemption; None otherwise."""
        table = self.preempt_table()
        found = table.get(f"{path}:{name}") if path is not None else None
        return found if found is not None else table.get(name)

    def slab_cache(self, name: str) -> str:
        """"account", "plain" or "mixed" for a slab cache the tree creates; "" unknown."""
        found = self.slab_caches.get(name)
        return found[0] if found else ""

    def is_rcu_field(self, name: str) -> bool:
        """``mm->owner``-like: the name is declared ``__rcu`` and never as a plain pointer."""
        return name in self.rcu_fields

    def rcu_iterator(self, name: str) -> str | None:
        """The RCU list walk an iterator macro of the tree expands to
        (``cpuset_for_each_child`` -> ``css_for_each_child``), else None."""
        return self.rcu_iters.get(name)

    def rcu_need(self, name: str) -> tuple[tuple[str, ...], list[str]] | None:
        """(alternatives, chain) when ``name`` needs its caller's RCU read section (or one
        of the alternatives: "sched", a lock, "?N" the condition of argument N)."""
        found = self.rcu_needs.get(name)
        return (tuple(found[0]), list(found[1])) if found else None

    def opens_rcu(self, name: str) -> bool:
        """Whether ``name`` may return inside an RCU read section it opened."""
        return name in self.rcu_opens

    def defines(self, name: str) -> bool:
        """Whether the base defines a function (or function-like macro) of this name."""
        return name in self.names  # (a base read from its cache asks SQLite: StoredFacts)

    def overlay(self, top: Facts) -> Facts:
        """``top`` (a patch's own functions) consulted first, then these facts: a function
        ``top`` defines is judged by its new body only. Nothing is copied (a base has tens
        of thousands of entries and every patch gets its overlay)."""
        return _Overlay(top, self)


_UNASKED = object()


class _Overlay(Facts):
    def __init__(self, top: Facts, under: Facts) -> None:
        super().__init__(revision=under.revision, digest=under.digest, stats=under.stats,
                         defined=top.defined)
        self.top, self.under = top, under
        self.mine = set(top.defined)
        self.partly = top.partly
        # Answers by (question, name): the engines ask about every call of every function
        # of the patch, several times over, and neither layer changes during a review
        # (callers only read what they get).
        self._asked: dict[tuple[str, str], Any] = {}

    def _ask(self, question: str, name: str) -> Any:
        """``question`` (a method of both layers) about ``name``: the top's answer, or for a
        name the top does not define whole and says nothing of, the base's."""
        key = (question, name)
        mine = self._asked.get(key, _UNASKED)
        if mine is _UNASKED:
            mine = getattr(self.top, question)(name)
            if not mine and name not in self.mine:
                mine = getattr(self.under, question)(name)
            self._asked[key] = mine
        return mine

    # A function the top defines whole is judged by it alone; one it shows only in part
    # (a hunk) by what the part shows, else by the base.
    def sleep_chain(self, name: str, path: str | None = None) -> list[str] | None:
        mine = self.top.sleep_chain(name, path)
        return mine if mine is not None or name in self.mine else self.under.sleep_chain(name, path)

    def locks_taken(self, name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self._ask("locks_taken", name)
        return found

    def released_params(self, name: str) -> dict[int, str]:
        found: dict[int, str] = self._ask("released_params", name)
        return found

    def acquired_params(self, name: str) -> dict[int, str]:
        found: dict[int, str] = self._ask("acquired_params", name)
        return found

    def returned_ref(self, name: str) -> list[str]:
        found: list[str] = self._ask("returned_ref", name)
        return found

    def changed_by_patch(self, name: str) -> bool:
        mine = {i: o for i, o in self.top.released_params(name).items() if o != "stored"}
        return bool(mine) and mine != self.under.released_params(name)

    def is_rcu_field(self, name: str) -> bool:
        return self.under.is_rcu_field(name)

    def defines(self, name: str) -> bool:
        return name in self.mine or self.under.defines(name)

    def rcu_iterator(self, name: str) -> str | None:
        return self.under.rcu_iterator(name)

    def rcu_need(self, name: str) -> tuple[tuple[str, ...], list[str]] | None:
        found: tuple[tuple[str, ...], list[str]] | None = self._ask("rcu_need", name)
        return found

    def opens_rcu(self, name: str) -> bool:
        return bool(self._ask("opens_rcu", name))

    def ops_lock(self, member: str) -> dict[str, list[str]]:
        return self.top.ops_lock(member) or self.under.ops_lock(member)

    def ops_entry(self, member: str) -> list[str]:
        return self.under.ops_entry(member)  # (a base's: all the calls of the member)

    def ops_sleep(self, member: str) -> list[str] | None:
        mine = self.top.ops_sleep(member)
        return mine if mine is not None else self.under.ops_sleep(member)

    def field_type(self, owner: str, name: str) -> str | None:
        return self.top.field_type(owner, name) or self.under.field_type(owner, name)

    def unaccounted_alloc(self, name: str) -> list[str] | None:
        mine = self.top.unaccounted_alloc(name)
        return mine if mine is not None or name in self.mine else self.under.unaccounted_alloc(name)

    def preempt_names(self) -> frozenset[str]:
        names = getattr(self, "_preempt_names", None)
        if names is None:  # once per patch: the base's set is thousands of names
            names = self.top.preempt_names() | self.under.preempt_names()
            self._preempt_names = names
        return names

    def preempt_need(self, name: str, path: str | None = None) -> list[str] | None:
        mine = self.top.preempt_need(name, path)
        return mine if mine is not None or name in self.mine else self.under.preempt_need(name, path)

    def slab_cache(self, name: str) -> str:
        # A cache the patch creates is judged by the patch's flags (caches are not
        # functions: the top never "defines" the name whole).
        return self.top.slab_cache(name) or self.under.slab_cache(name)

    def locks_released(self, name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self._ask("locks_released", name)
        return found

    def locks_kept(self, name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self._ask("locks_kept", name)
        return found

    def locks_kept_if(self, name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self._ask("locks_kept_if", name)
        return found

    def nested_in(self, outer: str, inner: str) -> str | None:
        return self.under.nested_in(outer, inner)

    def irq_context_of(self, lock: str) -> list[str] | None:
        return self.under.irq_context_of(lock)

    # Conventions of the whole tree: a patch's few functions do not change them.
    def field_lock(self, name: str) -> list[str]:
        return self.under.field_lock(name)

    def irq_shared_lock(self, lock: str) -> list[str]:
        return self.under.irq_shared_lock(lock)

    def work_functions(self, member: str) -> list[list[str]]:
        return self.top.work_functions(member) or self.under.work_functions(member)

    def locks_required(self, name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self._ask("locks_required", name)
        return found

    def callback_params(self, name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self._ask("callback_params", name)
        return found

    def callback_context(self, name: str) -> list[str]:
        # A callback of the patch's own caller first; else what the base passes it as.
        found: list[str] = self.top.callback_context(name) or self.under.callback_context(name)
        return found


EMPTY = Facts(revision="", digest="")
