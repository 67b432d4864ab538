"""The ``context`` engine: what a function holds at each call, along every path.

Locks and atomic sections come from reviewbot/data/kernel.yaml (spinlocks, rwlocks, raw
spinlocks, mutexes, rwsems, RCU read sections, preempt/irq/bh disabling, scope-based
guards); the walk is the refcount engine's (:class:`refcount.Analysis` over the
:mod:`cfg` graph), so a lock taken by ``mutex_trylock()`` or ``mutex_lock_interruptible()``
is held only where it succeeded, and ``goto out_unlock`` paths are followed. A rule picks
one ``check``:

* ``sleep-in-atomic``: a call that may sleep while an atomic section is held. "May sleep"
  is a sleeping primitive (kernel.yaml), an allocation with blocking GFP flags, or a
  function the tree facts (reviewbot/facts) or the patch's own functions show sleeping,
  through at most ``max-chain`` calls;
* ``irq-nesting``: ``spin_lock_irq()`` (or ``local_irq_disable()``) inside a section that
  already disabled interrupts: its unlock enables them early;
* ``rt-nesting``: a ``spinlock_t`` (a sleeping lock on PREEMPT_RT) taken inside a raw
  spinlock, an irq-disabled or a preempt-disabled section;
* ``double-lock``: a lock taken while already held, directly or through a function that
  takes it (tree facts);
* ``lock-order``: a global lock taken (directly, or by a called function) while another
  is held, in the opposite order of the one the base follows;
* ``irq-unsafe``: a lock that interrupt context takes (per the facts), taken with that
  interrupt enabled; also a lock the tree takes with interrupts disabled wherever it
  takes it (facts/fieldlocks.py), taken plainly;
* ``field-unlocked``: a write of a field outside the lock the tree's other writers of it
  hold (engine/fieldlock.py);
* ``imbalance``: a lock or section still held at a return, or released twice;
* ``lock-not-held``: a call of a function that asserts a lock held (lockdep_assert_held()
  in its body, per the tree facts) on a path where the caller, which takes that lock
  elsewhere, does not hold it;
* ``rcu-unprotected``: an ``rcu_dereference()`` reached with nothing held, or an RCU list
  walk stepping on after its body dropped ``rcu_read_lock()`` without pinning the
  cursor, in a function that takes ``rcu_read_lock()`` itself elsewhere;
* ``stale-snapshot``: a local copied from a field before a lock and used inside the
  section, which reads the field again under the lock (engine/snapshot.py);
* ``walk-unlocked``: a list walk whose body drops the lock it runs under and steps on
  (engine/listwalk.py);
* ``flush-deadlock``: flush_work()/cancel_work_sync() with a lock held that the work's
  function takes (engine/flushwait.py);
* ``scope-shrunk``: a shared write the patch moves out of a lock's section
  (engine/lockscope.py, compares with the base function); the ``imbalance`` check also
  reports unlocks that do not match the lock held (engine/lockmatch.py), and
  ``lock-not-held`` a lock the patch removes around a call that needs it
  (engine/lockremoved.py).

A hit is the patch's when the call, the lock it runs under, or a line between the two is
added by the patch; on a base view (nothing added) every hit is kept, so that the caller
can tell a pre-existing problem by comparing the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tree_sitter import Node

from reviewbot.engine import cfg
from reviewbot.engine.anchor import MEMO_KEY as ANCHOR_KEY
from reviewbot.engine.anchor import Anchor, anchor_holds
from reviewbot.engine.cfunc import (
    FREE_PREFIX,
    GUARD_PREFIX,
    FunctionView,
    node_text,
)
from reviewbot.engine.cnodes import assigned_to, call_args, view_callees
from reviewbot.engine.condlock import conditional_acquires, tested_call
from reviewbot.engine.entryctx import asserted_on_rt, entry_holds, entry_reason, in_interrupt_entry
from reviewbot.engine.fieldlock import function_types, unlocked_lists, unlocked_writes
from reviewbot.engine.flushwait import WAITS_FOR_WORK, flush_under_lock
from reviewbot.engine.gfplocals import gfp_locals
from reviewbot.engine.irqsafe import irq_unsafe
from reviewbot.engine.listwalk import locked_walk, rcu_reads, rcu_walk
from reviewbot.engine.lockconfig import bare_name, lock_config, pairs_of_calls
from reviewbot.engine.lockmatch import mismatched_releases
from reviewbot.engine.lockneeds import required, requiring
from reviewbot.engine.locknest import _at, _outer, double_lock, lock_order
from reviewbot.engine.preemptneed import worth_a_look
from reviewbot.engine.rebuild import PATCH_TEXT
from reviewbot.engine.refcount import Analysis, Held, State
from reviewbot.engine.refspec import normalize
from reviewbot.facts.derive import MAX_DEPTH
from reviewbot.facts.knowledge import Knowledge, LockSpec
from reviewbot.facts.locksummary import OTHER_KEY, SECTION_KEYS, caller_key
from reviewbot.facts.opsfacts import chain_levels, is_dispatch, member_key, shown_chain
from reviewbot.facts.rcuneeds import Need
from reviewbot.facts.tables import Facts

SECTION_KIND = {key: kind for kind, key in SECTION_KEYS.items()}  # "<irq>" -> "irq"

CHECKS = ("sleep-in-atomic", "irq-nesting", "rt-nesting", "double-lock", "imbalance", "lock-not-held",
          "rcu-unprotected", "lock-order", "irq-unsafe", "walk-unlocked", "flush-deadlock", "field-unlocked",
          "preempt-needed")
# Held sections that keep the task on its CPU (what __this_cpu_*() needs): not a sleeping
# lock, not an RCU read section (preemptible with PREEMPT_RCU).
_PINS_CPU = frozenset({"spinlock", "raw_spinlock", "rwlock", "preempt", "irq", "bh", "local_lock"})


# Primitives that sleep only after leaving the section they are called in: the lock of
# their first argument ("arg") or the innermost section of a kind (include/linux/sched.h).
_DROPPED_TO_SLEEP = {
    "cond_resched_lock": "arg", "cond_resched_rwlock_read": "arg", "cond_resched_rwlock_write": "arg",
    "cond_resched_rcu": "rcu", "schedule_preempt_disabled": "preempt",
}


_LOCK_CALL_ARG = re.compile(r"\b(\w+)\s*\(\s*([^,;()]+)")
_PATCH_LOCKS: dict[str, frozenset[str]] = {}


def _patch_locks(patch_text: str, k: Knowledge) -> frozenset[str]:
    """The locks (keys) that the lock calls on a patch's lines of a file take or release
    (once per patch text)."""
    found = _PATCH_LOCKS.get(patch_text)
    if found is None:
        keys = set()
        for m in _LOCK_CALL_ARG.finditer(patch_text):
            spec = k.lock_for(bare_name(m.group(1)))
            if spec is not None and not spec[0].keyless:
                keys.add(normalize(m.group(2)))
        found = frozenset(keys)
        if len(_PATCH_LOCKS) >= 1000:
            _PATCH_LOCKS.clear()
        _PATCH_LOCKS[patch_text] = found
    return found


class ContextAnalysis(Analysis):
    def __init__(self, params: dict[str, Any], view: FunctionView, facts: Facts, k: Knowledge) -> None:
        config, _, kinds = lock_config(k)
        super().__init__(config, view)
        # One walk answers every check (nine rules ask about the same function).
        self.checks = frozenset(params.get("checks") or [params.get("check", "sleep-in-atomic")])
        # Chains up to the facts' own depth; each rule applies its max-chain to the hits.
        # The one walk answers every rule; each rule keeps the chains as deep as its own
        # max-chain (contextrun.run_context): the walk looks as deep as the facts go.
        self.max_chain = int(params.get("max-chain", MAX_DEPTH))
        self.facts = facts
        self.k = k
        self.kinds = kinds
        # (check, line, call) -> (line, captures, evidence)
        self.hits: dict[tuple[str, int, str], tuple[int, dict[str, str], tuple[int, ...]]] = {}
        # `ret = mutex_lock_interruptible(&m); if (ret) ...`: the result names the lock.
        self.results: dict[str, list[tuple[str, str, bool]]] = {}
        # Locks released on a path where this function had not taken them: the caller
        # holds them, and a function that drops and retakes one ends holding it.
        self.borrowed: set[tuple[str, str]] = set()
        self.pair_of_call = pairs_of_calls(k)
        self.same_call = frozenset(n for spec in kinds.values() if spec.raw.get("same-call")
                                   for n in str(spec.raw["acquire"]).split("|"))
        # The checks run at every node for every path state reaching it; what they ask
        # of a call or of the facts does not depend on the state: asked once.
        self._sleeps: dict[int, list[str] | None] = {}  # call node -> sleep_chain()
        self._lockless_calls: dict[int, bool] = {}  # call node -> _lockless()
        self._taken_by: dict[str, dict[str, list[str]]] = {}  # name -> facts.locks_taken()
        self.needs: dict[str, dict[str, list[str]]] = {}  # name -> facts.locks_required()
        self.requires: bool | None = None  # see lockneeds.requiring()
        # Locks the function takes somewhere (its own business): key -> first line.
        self.taken: dict[str, int] = {}
        self.taken_kinds: set[str] = set()  # the kinds of what it takes ("rcu", "spinlock")
        self.rcu_needs: dict[int, Need | None] = {}  # call node -> listwalk.rcu_need_at()
        self.opens_rcu: bool | None = None  # see listwalk._opens_rcu()
        # Locks whose first operation in the text is a release: a fragment that starts
        # inside the function (a partial view) was entered holding them.
        self.released_first: set[str] = set()
        # Global locks taken by keyless primitives (cpus_read_lock(): cpu_hotplug_lock),
        # which the facts name when a callee asserts them (lockdep_assert_cpus_held()).
        self.global_taken: dict[str, int] = {}
        patch_text: str = view.memo.get(PATCH_TEXT, "")
        takes: list[tuple[Node, tuple[LockSpec, str] | None, list[str]]] = []  # (call, lock, keys)
        for call in self.calls_of(view.node):
            name = self.name_of(call)
            found = k.lock_for(bare_name(name))
            keys: list[str] = []
            if found is not None and found[1] == "acquire" and not found[0].keyless:
                keys = [self._arg_key(call, 0)]
            elif found is None and ((kept := facts.locks_kept(name)) or (kept := facts.locks_kept_if(name))):
                # (a helper that keeps a lock, or keeps it when it succeeds:
                # `cgrp = cgroup_kn_lock_live(...)` takes cgroup_mutex)
                args = [node_text(a) for a in self.args_of(call)]
                keys = [self.alias.find(normalize(c)) for raw in kept
                        if (c := caller_key(raw, args)) is not None]
            takes.append((call, found, keys))
        # A function rebuilt on the nearest base: its base lines lock as the author's tree
        # does when the patch names no lock the function does not take (a patch written
        # for cpuset_rwsem on a base with cpuset_mutex does), else only for the locks the
        # patch's own lines name (it removes or moves their locking).
        trusted = bool(view.shown) and _patch_locks(patch_text, k) <= {
            key for call, _, ks in takes if (self.line(call) or 0) not in view.shown for key in ks}
        for call, found, keys in takes:
            if view.partial and found is not None and found[1] == "release" and not found[0].keyless:
                first = self._arg_key(call, 0)
                if first not in self.taken:
                    self.released_first.add(first)
            line = self.line(call) or 0
            if view.shown and line not in view.shown and not trusted \
                    and not (keys and all(key in patch_text for key in keys)):
                continue  # the nearest base's code: the author's tree may lock differently
            for key in keys:
                self.taken.setdefault(key, line)
            if found is not None and found[1] == "acquire":
                self.taken_kinds.add(found[0].kind)
                if found[0].kind == "rcu":
                    self.taken.setdefault("rcu", line)
            if found is not None and found[1] == "acquire" and found[0].keyless and found[0].lock:
                self.global_taken.setdefault(found[0].lock, line)  # cpus_read_lock()
        # Calls reached on some path with nothing held that keeps the task on its CPU
        # (the preempt-needed check, engine/preemptneed.py): call id -> (call, name).
        self.unpinned: dict[int, tuple[Node, str]] = {}
        self.track_unpinned = "preempt-needed" in self.checks and worth_a_look(
            view, facts, view_callees(view))
        self.helper_released: set[str] = set()
        for call in self.calls_of(view.node):
            for raw in facts.locks_released(self.name_of(call)):
                released = caller_key(raw, [node_text(a) for a in self.args_of(call)])
                if released is not None:
                    self.helper_released.add(self.alias.find(normalize(released)))
        # What the function is entered holding (its assertions, __must_hold(), kerneldoc):
        # the caller's, so dropping and retaking it is no leak (engine/entryctx.py).
        self.entry = entry_holds(self)
        anchor: Anchor | None = view.memo.get(ANCHOR_KEY)
        if anchor is not None and anchor.held:  # a fragment: what its place in the base
            # function holds (walked by engine/anchorwalk.py before this walk)
            known = {(h.key, h.pair) for h in self.entry}
            self.entry += tuple(h for h in anchor_holds(anchor, min(view.lines(), default=0))
                                if (h.key, h.pair) not in known)
        self.borrowed.update((h.key, h.pair) for h in self.entry)

    def initial(self) -> State:
        state = State()
        for h in self.entry:
            state = state.add(h)
        return state

    # --- lock helpers (tree facts) and conditional acquires through a result variable ---
    def call_ops(self, call: Node, in_condition: bool = False) -> list[tuple[str, Any]]:
        ops = super().call_ops(call, in_condition)
        if ops and self.same_call and bare_name(self.name_of(call)) in self.same_call:
            # set_active_memcg(): the call that keeps the old value starts the scope,
            # the one that drops its result ends it.
            drop = "release" if assigned_to(call) is not None else "acquire"
            ops = [op for op in ops if op[0] != drop]
        ops.extend(self.helper_ops(call))
        if in_condition:
            return ops
        ops.extend(conditional_acquires(self, call))  # `x = cgroup_kn_lock_live(...)`
        target = assigned_to(call)
        if target is None or target.type != "identifier":
            return ops
        name = self.name_of(call)
        for matched in self.c.matching(name):
            for spec in matched.acquire:
                if spec.conditional:
                    key = "" if matched.pair.keyless else self._arg_key(call, spec.arg)
                    self.results.setdefault(node_text(target), []).append(
                        (key, matched.pair.name, spec.zero))
        return ops

    def helper_ops(self, call: Node) -> list[tuple[str, Any]]:
        """``task_lock(p)`` takes p->alloc_lock, ``cgroup_unlock()`` drops cgroup_mutex:
        what the facts say a called helper leaves held or released."""
        name = self.name_of(call)
        if self.k.lock_for(bare_name(name)) is not None or not name:
            return []
        released, kept = self.facts.locks_released(name), self.facts.locks_kept(name)
        if not released and not kept:
            return []  # (most calls: their argument texts are not needed)
        args = [node_text(a) for a in self.args_of(call)]
        ops: list[tuple[str, Any]] = []
        for raw in released:
            if raw == OTHER_KEY:
                continue  # (contextrun: no leak report across the call)
            if raw in SECTION_KIND:  # it re-enables the interrupts (preemption) held off here
                ops.append(("helper-release-section", SECTION_KIND[raw]))
                continue
            key = caller_key(raw, args)
            if key is not None:
                ops.append(("helper-release", self.alias.find(normalize(key))))
        for raw, via in kept.items():
            key = "" if raw in SECTION_KIND else caller_key(raw, args)  # a section has no key
            pair = self.pair_of_call.get(via[-1]) if via else None
            if key is not None and pair is not None:
                key = self.alias.find(normalize(key))
                owned = (key, pair) in self.released_keys or key in self.helper_released
                ops.append(("acquire", Held(key, pair, self.line(call) or 0, name, owned)))
        return ops

    def _arg_key(self, call: Node, index: int | None) -> str:
        args = self.args_of(call)
        return self.key(args[index]) if index is not None and index < len(args) else ""

    def cond(self, expr: Node | None) -> tuple[list[Any], list[Any]]:
        inner = expr
        while inner is not None and inner.type == "parenthesized_expression" and inner.named_children:
            inner = inner.named_children[0]
        if inner is not None and inner.type == "identifier" and node_text(inner) in self.results:
            failed_true: list[Any] = []  # ops on the branch where the result is non-zero
            failed_false: list[Any] = []
            for key, _pair, zero in self.results[node_text(inner)]:
                (failed_true if zero else failed_false).append(("drop", key))
            return [failed_true], [failed_false]
        if inner is not None and (tested := tested_call(self, inner)) is not None:
            return tested  # `if (refcount_dec_and_lock(&r, &l))`
        return super().cond(expr)

    # --- the checks, at every node before its effects -----------------------------------
    def step(self, node: cfg.CNode, state: State, graph: cfg.Graph) -> list[tuple[cfg.CNode, State]]:
        if node.ast is not None and node.kind in ("effect", "branch", "return"):
            if "lock-not-held" in self.checks and requiring(self):
                required(self, node.ast, state)
            if "rcu-unprotected" in self.checks:
                rcu_reads(self, node.ast, state)
            if state.held or "irq-unsafe" in self.checks:
                self.inspect(node.ast, state)
            if "field-unlocked" in self.checks:
                unlocked_writes(self, node.ast, state)
                unlocked_lists(self, node.ast, state, walk=False)
        if node.kind == "iter" and node.ast is not None:
            if "field-unlocked" in self.checks:
                unlocked_lists(self, node.ast, state, walk=True)
            if "rcu-unprotected" in self.checks:
                rcu_walk(self, node.ast, state)
            if "walk-unlocked" in self.checks and state.held:
                locked_walk(self, node.ast, state)
        return super().step(node, state, graph)

    def _sleep_chain_of(self, call: Node, name: str) -> list[str] | None:
        if call.id not in self._sleeps:
            self._sleeps[call.id] = self.sleep_chain(call, name)
        return self._sleeps[call.id]

    def _lockless(self, call: Node) -> bool:
        """A call that is no lock and takes none (per the facts): asked once per call, not
        at each path state that reaches it."""
        found = self._lockless_calls.get(call.id)
        if found is None:
            name = bare_name(self.name_of(call))
            found = self._lockless_calls[call.id] = self.k.lock_for(name) is None \
                and not self.locks_taken_by(name)
        return found

    def member_of(self, call: str) -> str:
        """``proc_ns_operations.put`` for ``ns->ops->put``; "" when a type is unknown."""
        return member_key(call, function_types(self), self.facts.field_type) or ""

    def locks_taken_by(self, name: str) -> dict[str, list[str]]:
        """facts.locks_taken(), once per name (callers only read it)."""
        found = self._taken_by.get(name)
        if found is None:
            found = self._taken_by[name] = self.facts.ops_lock(self.member_of(name)) \
                if is_dispatch(name) else self.facts.locks_taken(name)
        return found

    def spec_of(self, held: Held) -> LockSpec:
        return self.kinds[held.pair]

    def inspect(self, ast: Node, state: State) -> None:
        unpinned = self.track_unpinned and not any(
            self.spec_of(h).kind in _PINS_CPU or self.spec_of(h).irq for h in state.held)
        for call in self.calls_of(ast):
            name = bare_name(self.name_of(call))
            if unpinned:
                self.unpinned.setdefault(call.id, (call, name))
            if "flush-deadlock" in self.checks and state.held and WAITS_FOR_WORK.fullmatch(name):
                flush_under_lock(self, call, name, state)
            if self._lockless(call):
                # No lock, and none taken inside (per the facts): of the checks below only
                # the sleep one can have something to say, whatever is held.
                if "sleep-in-atomic" in self.checks and state.held:
                    self._sleep(call, name, state)
                continue
            if "sleep-in-atomic" in self.checks and state.held:
                self._sleep(call, name, state)
            found = self.k.lock_for(name)
            if "double-lock" in self.checks and state.held:
                double_lock(self, call, name, found, state)
            if "lock-order" in self.checks and state.held:
                lock_order(self, call, name, found, state)
            if "irq-unsafe" in self.checks and found is not None and found[1] == "acquire":
                irq_unsafe(self, call, name, found[0], state)
            if "rt-nesting" in self.checks and found is None:
                self._rt_through(call, name, state)
            if found is None or found[1] != "acquire":
                continue
            spec = found[0]
            if "irq-nesting" in self.checks and spec.irq == "off":
                h = self._innermost(state, lambda s: s.irq in ("off", "save"))
                if h is not None:
                    self.hit("irq-nesting", call, h, {
                        "detail": f"{name}() at line {self.line(call)} runs with interrupts already "
                                  f"disabled by {_at(h)}; its unlock "
                                  f"re-enables them while that section still expects them off",
                        "call": name, "outer": _outer(h)})
            if "rt-nesting" in self.checks and spec.kind in ("spinlock", "rwlock"):
                self._rt_nesting(call, name, "takes a spinlock_t", state)

    def _rt_nesting(self, call: Node, name: str, what: str, state: State) -> None:
        """``call`` takes a spinlock_t (``what`` says how) where PREEMPT_RT cannot sleep:
        inside a raw spinlock, irq- or preempt-disabled section, or anywhere in a function
        the kernel always runs non-preemptible (kernel.yaml ``nonpreemptible``)."""
        line = self.line(call) or 0
        h = next((h for h in reversed(state.held) if self.spec_of(h).kind in ("raw_spinlock", "irq", "preempt")
                  and asserted_on_rt(h)), None)
        if h is not None:
            self.hit("rt-nesting", call, h, {
                "detail": f"{name}() at line {line} {what} inside {_at(h)}; on PREEMPT_RT a "
                          f"spinlock_t is a sleeping lock and this section cannot sleep",
                "call": name, "outer": _outer(h)})
        elif self.k.nonpreemptible.fullmatch(self.view.name) and self.relevant(line, line):
            self.hits.setdefault(("rt-nesting", line, name), (line, {
                "detail": f"{name}() at line {line} {what} in {self.view.name}(), which the "
                          f"kernel runs with preemption disabled, also on PREEMPT_RT; there a "
                          f"spinlock_t is a sleeping lock and this context cannot sleep",
                "call": name, "outer": self.view.name}, (line,)))

    def _rt_through(self, call: Node, name: str, state: State) -> None:
        """A call of a function that takes a spinlock_t (tree facts, or the patch's own
        function), through at most the facts' lock depth."""
        for lock, via in self.locks_taken_by(name).items():
            found = self.k.lock_for(via[-1]) if via else None
            if found is not None and found[0].kind in ("spinlock", "rwlock"):
                shown = " -> ".join(f"{c}()" for c in [name, *via[:-1]]) + f" -> {via[-1]}()"
                self._rt_nesting(call, name, f"takes the spinlock_t {lock} ({shown})", state)
                return

    def _innermost(self, state: State, kind: Callable[[LockSpec], bool]) -> Held | None:
        """The most recently taken held lock or section of a kind."""
        return next((h for h in reversed(state.held) if kind(self.spec_of(h))), None)

    def _sleep(self, call: Node, name: str, state: State) -> None:
        atomic = [h for h in state.held if self.spec_of(h).kind in self.k.atomic_kinds]
        dropped = _DROPPED_TO_SLEEP.get(name)
        if dropped is not None and atomic:
            # cond_resched_lock(&l) sleeps only after dropping l, cond_resched_rcu() after
            # leaving the read section, schedule_preempt_disabled() after enabling
            # preemption: the section they are called in is the one they leave.
            key = self._arg_key(call, 0) if dropped == "arg" else ""
            inner = next((h for h in reversed(atomic) if (h.key == key if key else
                                                           self.spec_of(h).kind == dropped)), None)
            atomic = [h for h in atomic if h is not inner]
        if not atomic:
            return
        chain = self._sleep_chain_of(call, name)
        if chain is None:
            return
        if any(step.startswith("might_sleep_if") for step in chain) and all(in_interrupt_entry(h) for h in atomic):
            return  # vfree(): `might_sleep_if(!in_interrupt())`, deferred in interrupt context
        h = atomic[-1]
        shown = shown_chain(chain)
        what = f"{name}()"
        if name.startswith(FREE_PREFIX):  # a scope-based cleanup (cfunc.rewrite_cleanups)
            args = call_args(call)
            what = (f"the __free({name[len(FREE_PREFIX):]}) cleanup of "
                    f"`{node_text(args[0]) if args else '?'}` that ends the block")
        self.hit("sleep-in-atomic", call, h, {
            "detail": f"{what} at line {self.line(call)} may sleep ({shown}) while "
                      f"{_at(h, 'taken ')} is held",
            "call": name, "outer": _outer(h), "chain": shown, "depth": str(chain_levels(chain) - 1)})

    def sleep_chain(self, call: Node, name: str) -> list[str] | None:
        if self.k.never_sleeps.fullmatch(name) or name.startswith(GUARD_PREFIX):
            return None
        if self.k.is_sleep_primitive(name):
            return [name]
        args = self.args_of(call)
        if self.k.optional_gfp and self.k.implied_gfp(name, ", ".join(node_text(a) for a in args)):
            return [f"{name}(GFP_KERNEL, by default)"]
        for arg in args:
            if arg.type == "call_expression":
                continue  # a nested call is judged on its own
            flag = self.k.blocking_gfp.search(node_text(arg))
            if flag:
                return [f"{name}({flag.group(0)})"]
            if arg.type == "identifier" and (held := gfp_locals(self.view, self.k).get(node_text(arg))):
                # `gfp_t gfp = GFP_KERNEL; ... kmalloc(n, gfp)`: the flags a local carries.
                return [f"{name}({node_text(arg)} = {held})"]
        # `ns->ops->put(ns)`: what the tree stores in that member, by the declared types
        # (facts/opsfacts.py); a call whose types are unknown says nothing.
        chain = self.facts.ops_sleep(self.member_of(name)) if is_dispatch(name) else \
            self.facts.sleep_chain(name, self.view.file)
        if chain and chain_levels(chain) <= self.max_chain:
            return [name, *chain]
        return None

    def hit(self, check: str, call: Node, outer: Held, captures: dict[str, str]) -> None:
        line = self.line(call) or 0
        if entry_reason(outer) is not None:
            # Held on entry: the patch's when it adds the call or the assertion (any line
            # between the function's head and the call would claim every old call).
            if not self.relevant(line, line) and not self.relevant(outer.line, outer.line):
                return
        elif not self.relevant(outer.line, line):
            return
        self.hits.setdefault((check, line, captures["call"]), (line, captures, (outer.line, line)))

    def relevant(self, first: int, last: int) -> bool:
        added = self.view.added
        if not added:
            return True  # a base view: every hit, for the pre-existing comparison
        lo, hi = min(first, last), max(first, last)
        return any(lo <= ln <= hi for ln in added if ln in self.view.line_set())

    def exit(self, state: State, line: int | None) -> None:
        if "imbalance" not in self.checks:
            return
        kept = state.with_held(tuple(h for h in state.held if not h.call.startswith(GUARD_PREFIX)
                                     and entry_reason(h) is None))
        super().exit(kept, line)

    def apply(self, state: State, ops: list[tuple[str, Any]]) -> State:
        if not ops:
            return state  # (most statements take and drop nothing)
        if "imbalance" in self.checks and state.held and any(kind == "release" for kind, _ in ops):
            ops = mismatched_releases(self, state, ops)
        plain: list[tuple[str, Any]] = []
        for kind, arg in ops:
            if kind == "release":
                key, pair, _ = arg
                if not any(h.key == key and h.pair == pair for h in state.held) and \
                        (key, pair) not in state.released:
                    self.borrowed.add((key, pair))
            if kind == "helper-release-section":
                state = super().apply(state, plain)
                plain = []
                for h in state.held:
                    if not h.key and self.kinds[h.pair].kind == arg:
                        state, _ = state.drop("", h.pair)
                        break
                continue
            if kind == "helper-release":
                state = super().apply(state, plain)
                plain = []
                dropped, held = state.drop(arg)
                if held is None:
                    self.borrowed.update((arg, p.name) for p in self.c.pairs)
                else:
                    state = dropped
                continue
            plain.append((kind, arg))
        return super().apply(state, plain)

