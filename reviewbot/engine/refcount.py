"""The ``refcount`` engine: acquire/release pairs along every path of a function.

Pairs, iterators and ownership transfers come from the rule file, so a new pair
(``obj_cgroup_get``/``obj_cgroup_put``, ``rcu_read_lock``/``rcu_read_unlock``) is YAML only.
The analysis walks the :mod:`cfg` graph with a set of abstract states per node; a state is
the multiset of references held (object, pair, line of the acquire), the objects already
released on this path (for double releases), and the last jump taken (to explain a leak
reached through ``goto unlock`` or ``break``).

Semantics, each forced by real memcg code:

* an object is named by its expression with ``&`` and a trailing ``->css``/``.css``
  stripped, so ``css_get(&memcg->css)`` pairs with ``mem_cgroup_put(memcg)``;
* local aliases (``a = b``) are unified;
* a conditional acquire (``css_tryget``) holds the reference only on the branch where it
  succeeded: ``if (!css_tryget(&memcg->css)) return`` is not a leak; on the branch where
  it failed a put is one too many (the object is marked, not released: still usable);
* a NULL or IS_ERR check on a held pointer drops it on the branch where it is NULL
  (``mem_cgroup_iter()`` returns NULL at the end of a walk);
* ownership moves out by a store into a field or global, by ``return``, by the store
  helpers (``rcu_assign_pointer``, ``WRITE_ONCE``, ``xchg``...), or by a consumer the rule
  names;
* falling off the end of a partial function (only a hunk was visible) is not a return.

Also on every path: an object used after it was released (``report: use-after-release``;
for counted objects, a reference this function took; for freed memory, any), and a put
helper the tree facts know releases its argument like the put itself.

The entry point and the findings are in :mod:`refpaths`; the ``field-stores`` analysis
(the cross-function view) is in :mod:`fieldstores`, ``release-order`` in :mod:`reorder`;
the parameters they read are in :mod:`refspec`; the path states in :mod:`refstate`; what
the walk asks of the function's syntax (once per function) in :mod:`fnmemo`, and what each
call, store and condition does to references in :mod:`refops`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tree_sitter import Node

from reviewbot.engine import cfg
from reviewbot.engine.cfunc import FREE_PREFIX, FunctionView, node_text
from reviewbot.engine.cnodes import (
    identifiers_in,
)
from reviewbot.engine.refops import RefOps
from reviewbot.engine.refspec import (
    Config,
    normalize,
)
from reviewbot.engine.refstate import FAILED, Event, Held, Ops, State
from reviewbot.engine.uses import return_kind, uses_after_release
from reviewbot.facts.tables import EMPTY, Facts

if TYPE_CHECKING:  # consumers.py builds on this module
    from reviewbot.engine.consumers import Consumers

__all__ = ["Analysis", "Event", "Held", "State", "normalize"]

log = logging.getLogger(__name__)

EMBEDDED = ("kref", "percpu_ref")  # counted by a member inside the object
ERROR_MARK = "=error "  # State.decided: ("=error ret", True) while ret holds an error code
_ROOT = re.compile(r"->|\.")


class Analysis(RefOps):
    def __init__(self, config: Config, view: FunctionView, facts: Facts | None = None) -> None:
        # What depends on the function alone (its shape, calls, names of objects) is
        # worked out once per function (engine/fnmemo.py): several rules' analyses, and
        # one per pointer parameter (engine/consumers.py), walk it.
        super().__init__(view)
        self.c = config
        self.facts = facts or EMPTY
        # Exits: line -> (what it returns: error, value or void; the held sets reaching it).
        self.exits: dict[int | None, tuple[str, list[frozenset[tuple[str, str]]]]] = {}
        self.exit_kind = "void"
        self.uses: dict[tuple[str, int], Event] = {}  # use-after-release, by object and line
        self.release_line: dict[str, int | None] = {}  # where each object was last released
        # callee -> engine/consumers.py PartialConsumer (a dict, or Consumers asking lazily)
        self.partial: Mapping[str, list[Any]] | Consumers = {}
        self.handoffs: dict[tuple[str, int | None], tuple[Held, Any]] = {}
        # facts.released_params() by name: filled during the walk (ContextAnalysis sets
        # its facts after this __init__)
        self._released_params: dict[str, dict[int, str]] = {}
        self._acquired_params: dict[str, dict[int, str]] = {}
        self._returned_refs: dict[str, str] = {}
        self._inert_names: dict[str, bool] = {}  # (also filled during the walk only)
        self._store_ops: dict[tuple[int, bool], Ops] = view.memo.setdefault("store-ops", {})
        self._effects: dict[int, Ops] = {}
        self._conds: dict[int, tuple[list[Ops], list[Ops]]] = {}
        self.events: dict[tuple[str, str, str, int | None, int | None], Event] = {}
        self.truncated = False
        self.released_keys = self._released_keys()
        # `__free()` variables (cfunc.rewrite_cleanups): released on every exit by the
        # compiler, so never leaked at a return.
        scoped = view.memo.get("refcount-scoped")
        if scoped is None:
            # (the function's calls as indexed once for all analyses: calls_in() again)
            scoped = view.memo["refcount-scoped"] = frozenset(
                self.key(self.args_of(c)[0]) for c in self.calls_of(view.node)
                if self.name_of(c).startswith(FREE_PREFIX) and self.args_of(c))
        self.scoped: frozenset[str] = scoped
        self.returned: dict[str, str] = {}  # pair -> the call whose reference is returned
        self.failed_get: dict[tuple[str, str], str] = {}  # (object, pair) -> which tryget failed where
        # Error codes assigned on a path are followed only where they matter: a function
        # that stores references through a `T **` parameter (more path states otherwise).
        self.tracks_errors = bool(self.out_params())

    def share_effects(self, other: Analysis) -> None:
        """Use ``other``'s memo of effects and conditions: an analysis of the same function
        with the same config, facts and callee consumers (engine/consumers.py walks one
        per parameter, each from a different start) gets the same answers."""
        self._effects, self._conds = other._effects, other._conds

    # --- the walk -------------------------------------------------------------------
    def apply(self, state: State, ops: Ops) -> State:
        if not ops:
            return state  # (most statements: no call or store the walk tracks)
        for kind, arg in ops:
            if kind == "acquire":
                state = state.add(arg)
            elif kind == "release":
                key, pair, line = arg
                self.release_line[key] = line
                state, held = state.drop(key, pair)
                if held is None and pair in EMBEDDED and key != (root := _ROOT.split(key, 1)[0]):
                    # kref_put(&w->kref, ...) of an object a lookup returned (held as `w`:
                    # the tree facts know which object, not which member counts it).
                    state, held = state.drop(root, pair)
                    key = key if held is None else root
                if held is None and (key, FAILED + pair) in state.released and \
                        "double-release" in self.c.report:
                    self.event(Event("double-release", None, key, pair, line, None,
                                     self.failed_get.get((key, pair), FAILED)))
                elif held is None and (key, pair) in state.released and "double-release" in self.c.report:
                    self.event(Event("double-release", None, key, pair, line, None, state.via))
                elif held is None and pair == "memory" and "use-after-release" in self.c.report:
                    # Freed memory is gone whoever allocated it (a put of a reference the
                    # function did not take may leave others; kfree() leaves none). Marked
                    # apart so that a second free is not reported as a "double" here.
                    state = state.with_released(state.released | {(key, "~" + pair)})
            elif kind == "drop":  # NULL/IS_ERR branch: nothing is held, nothing released
                dropped, held = state.drop(arg)
                if held is not None:
                    state = state.with_held(dropped.held)
            elif kind == "transfer":  # stored or handed on: no longer ours to put
                # (and not released either: a later put of the object is not a second one)
                dropped, held = state.drop(arg)
                state = state.escape(arg) if held is None else state.with_held(dropped.held)
                # Storing an object hands on the references held through its members
                # (`ctx->root = root` and root->cgrp.self.refcnt).
                for h in [h for h in state.held if h.key.startswith((f"{arg}->", f"{arg}."))]:
                    dropped, _ = state.drop(h.key, h.pair)
                    state = state.with_held(dropped.held)
            elif kind == "out":  # `*ptr = obj;`: the caller's, if the function succeeds
                key, line = arg
                dropped, held = state.drop(key)
                if held is None:
                    state = state.escape(key)
                elif held.owned:
                    state = dropped.add(Held(held.key, held.pair, held.line, held.call, False, line))
            elif kind == "error-set" and self.tracks_errors:
                state = state.with_decided(state.decided | {(ERROR_MARK + arg, True)})
            elif kind == "failed":  # the false branch of a tryget: nothing taken here
                key, pair, line, call = arg
                self.failed_get.setdefault((key, pair), f"{FAILED} {call}() failed at line {line}")
                state = state.with_released(state.released | {(key, FAILED + pair)})
            elif kind == "handoff":  # to a callee that consumes it on some paths only
                key, partial, line = arg
                dropped, held = state.drop(key)
                if held is not None:
                    self.handoffs.setdefault((key, line), (held, partial))
                    state = state.with_held(dropped.held)
            elif kind == "assign" and self.tracks_errors and (ERROR_MARK + arg, True) in state.decided:
                state = state.with_decided(state.decided - {(ERROR_MARK + arg, True)})
            if kind == "assign" and state.released:
                # `c = next one`: what was released through the old c (`c->ref`) is not
                # the new c's.
                inner = (f"{arg}->", f"{arg}.")
                kept = frozenset(r for r in state.released if r[0] != arg and not r[0].startswith(inner))
                if len(kept) != len(state.released):
                    state = state.with_released(kept)
        return state

    def event(self, ev: Event) -> None:
        acq = ev.held.line if ev.held else None
        self.events.setdefault((ev.kind, ev.key, ev.pair, acq, ev.exit_line or ev.line), ev)

    def initial(self) -> State:
        return State()

    def run(self) -> list[Event]:
        # The graph is the function's alone and the walks only read it: built once for
        # all the analyses of the function.
        graph: cfg.Graph | None = self.view.memo.get("cfg")
        if graph is None:
            graph = self.view.memo["cfg"] = cfg.build(self.view.node, self.view.partial)
        seen: set[tuple[int, State]] = set()
        work: list[tuple[cfg.CNode, State]] = [(graph.entry, self.initial())]
        while work:
            node, state = work.pop()
            before = len(seen)
            seen.add((node.ident, state))  # (one hash of the state, not two)
            if len(seen) == before:
                continue
            if len(seen) > self.c.max_states:
                self.truncated = True
                break
            work.extend(self.step(node, state, graph))
        return list(self.events.values())

    def step(self, node: cfg.CNode, state: State, graph: cfg.Graph) -> list[tuple[cfg.CNode, State]]:
        if node.kind in ("unknown",):
            return []
        if node.kind == "end":
            self.exit_kind = "void"
            self.exit(state, None)
            return []
        if state.released and node.ast is not None and node.kind != "iter" and \
                "use-after-release" in self.c.report:
            for key, line, how in uses_after_release(self, node.ast, state):
                self.uses.setdefault((key, line), Event("use-after-release", None, key, how, line,
                                                        None, state.via))
        if node.kind == "return":
            self.exit_kind = return_kind(node.ast)
            value = node.ast.named_children[0] if node.ast is not None and node.ast.named_children else None
            state = self.apply(state, self.effects(value))
            if value is not None:
                self._note_returned_call(value)
            if value is not None and self.c.transfer_return:
                for ident in identifiers_in(value):
                    root = self.alias.find(ident)
                    # `return mz;` also hands on a reference held through mz->memcg.
                    for h in [h for h in state.held if h.key == root or h.key.startswith((f"{root}->", f"{root}."))]:
                        state, _ = state.drop(h.key, h.pair)
                        self.returned.setdefault(h.pair, h.call)
                state, dropped = state.drop(self.key(value))
                if dropped is not None:
                    self.returned.setdefault(dropped.pair, dropped.call)
            if any(h.out for h in state.held):
                state = self._out_params_at_exit(state, value)
            self.exit(state, self.line(node.ast))
            return []
        if node.kind == "nop":
            if node.jump and node.ast is not None:
                state = state.jumped(f"{node.jump} at line {self.line(node.ast)}")
            return [(s, state) for s in node.succ]
        if node.kind == "effect":
            return [(s, self.apply(state, self.effects(node.ast))) for s in node.succ]
        if node.kind == "iter":
            return self.iterate(node, state)
        # branch
        t_alts, f_alts = self.cond(node.ast)
        take_true = take_false = True
        known = self.repeated_condition(node.ast)
        if known is not None:
            text, polarity = known
            if (text, not polarity) in state.decided:
                take_true = False  # decided the other way earlier on this path
            elif (text, polarity) in state.decided:
                take_false = False
        out = []
        # (A loop tests its condition again: the newest outcome replaces the last one.)
        if node.succ and take_true:
            st = state.with_decided(state.decided - {(known[0], not known[1])} | {known}) if known else state
            out += [(node.succ[0], self.apply(st, ops)) for ops in t_alts]
        if len(node.succ) > 1 and take_false:
            st = state.with_decided(state.decided - {known} | {(known[0], not known[1])}) if known else state
            out += [(node.succ[1], self.apply(st, ops)) for ops in f_alts]
        return out

    def _out_params_at_exit(self, state: State, value: Node | None) -> State:
        """References stored through an out-parameter: the caller's at a successful return;
        at a failing one (`return -ENOMEM;`, or `return ret;` on a path that set ret to an
        error), still this function's, since callers do not take what an out-parameter
        holds when the call fails."""
        failing = self.exit_kind == "error" or (
            value is not None and value.type == "identifier"
            and (ERROR_MARK + self.alias.find(node_text(value)), True) in state.decided)
        for h in [h for h in state.held if h.out]:
            state, _ = state.drop(h.key, h.pair)
            if failing and "leak" in self.c.report and h.key not in self.scoped:
                why = (f"it was stored through an out-parameter at line {h.out}, which callers "
                       f"do not take when the function fails")
                self.event(Event("leak", Held(h.key, h.pair, h.line, h.call), h.key, h.pair, h.line,
                                 self.line(value) if value is not None else None,
                                 f"{state.via}; {why}" if state.via else why))
        return state

    def repeated_condition(self, ast: Node | None) -> tuple[str, bool] | None:
        """(condition text, polarity) of a side-effect-free condition that the function
        tests more than once; None for any other."""
        if ast is None or not self.repeated:
            return None
        text, polarity = self.condition_of(ast)
        return (text, polarity) if text in self.repeated else None

    def _note_returned_call(self, value: Node) -> None:
        """``return get_mem_cgroup_from_mm(mm);``: the function hands out a lookup's reference."""
        while value.type in ("parenthesized_expression", "cast_expression") and value.named_children:
            value = value.named_children[-1]
        if value.type != "call_expression":
            return
        name = self.name_of(value)
        for matched in self.c.matching(name):
            if any(spec.returns for spec in matched.acquire):
                self.returned.setdefault(matched.pair.name, name)

    def iterate(self, node: cfg.CNode, state: State) -> list[tuple[cfg.CNode, State]]:
        assert node.ast is not None
        name = self.name_of(node.ast)
        args = self.args_of(node.ast)
        it = next((i for i in self.c.iterators if i.macro.match(name)), None)
        if it is None or it.var >= len(args):
            # Any other loop macro moves its cursor (the first argument) to a new object
            # at each step: what was released was the previous one.
            if args and args[0].type == "identifier":
                state = self.apply(state, [("assign", self.key(args[0]))])
            return [(node.succ[0], state), (node.succ[1], state)]
        key = self.key(args[it.var])
        # Stepping the iterator drops the reference on the previous position.
        state, _ = state.drop(key, it.pair)
        body = state.add(Held(key, it.pair, self.line(node.ast) or 0, name))
        return [(node.succ[0], body), (node.succ[1], state)]

    def exit(self, state: State, line: int | None) -> None:
        self.exits.setdefault(line, (self.exit_kind, []))[1].append(
            frozenset((h.key, h.pair) for h in state.held))
        if "leak" not in self.c.report:
            return
        for h in state.held:
            if h.owned and h.key not in self.scoped:
                self.event(Event("leak", h, h.key, h.pair, h.line, line, state.via))
