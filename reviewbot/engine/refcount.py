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
  succeeded: ``if (!css_tryget(&memcg->css)) return`` is not a leak;
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
the parameters they read are in :mod:`refspec`; the path states in :mod:`refstate`, and
what the walk asks of the function's syntax (once per function) in :mod:`fnmemo`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tree_sitter import Node

from reviewbot.engine import cfg
from reviewbot.engine.cfunc import FREE_PREFIX, FunctionView, node_text
from reviewbot.engine.cnodes import (
    assigned_to,
    call_args,
    call_name,
    calls_in,
    identifiers_in,
    stored_identifiers,
)
from reviewbot.engine.fnmemo import FunctionMemo
from reviewbot.engine.refspec import (
    NULL_RE,
    CallSpec,
    Config,
    Pair,
    normalize,
)
from reviewbot.engine.refstate import Event, Held, Ops, State
from reviewbot.engine.uses import return_kind, uses_after_release
from reviewbot.facts.tables import EMPTY, Facts

if TYPE_CHECKING:  # consumers.py builds on this module
    from reviewbot.engine.consumers import Consumers

__all__ = ["Analysis", "Event", "Held", "State", "normalize"]

log = logging.getLogger(__name__)

_STORE_CALLS = re.compile(
    r"^(rcu_assign_pointer|RCU_INIT_POINTER|WRITE_ONCE|xchg|cmpxchg|rcu_replace_pointer|"
    r"smp_store_release|atomic_long_set|list_add\w*|hlist_add\w*)$"
)


# Calls that link a node into a structure that outlives the function (a list, a queue, a
# tree, an RCU callback): the object embedding the node is handed on.
_PUBLISH = re.compile(
    r"^(list_add\w*|hlist_add\w*|llist_add\w*|list_splice\w*|rb_link_node|rb_insert\w*|"
    r"queue_work\w*|queue_delayed_work\w*|schedule_work|schedule_delayed_work|mod_delayed_work\w*|"
    r"kthread_queue_\w+|call_rcu\w*|kfree_rcu|irq_work_queue\w*|"
    r"add_wait_queue\w*|xa_store\w*|xa_insert\w*|idr_alloc\w*|idr_replace|radix_tree_insert|"
    r"kobject_init_and_add|device_add)$"
)
# ...and any call named for linking something in (rq_qos_add(), register_shrinker()).
_PUBLISH_WORD = re.compile(r"(^|_)(add|insert|queue|register|link|attach|enqueue|push|install|publish|"
                           r"free|put|release|destroy)(_|$)")  # ...or for freeing it (drmcg_css_free())
_SPACES = re.compile(r"\s+")
_MEMBER_OF = re.compile(r"^&\(?([A-Za-z_]\w*)(->|\.)")


# What a call's name alone says, asked for every call of every analysis: answered once per
# name (bounded: names come from the patches).
@functools.lru_cache(maxsize=8192)
def _stores_by_call(name: str) -> bool:
    return _STORE_CALLS.match(name) is not None


@functools.lru_cache(maxsize=8192)
def _publishes(name: str) -> bool:
    return bool(_PUBLISH.match(name) or _PUBLISH_WORD.search(name))


class Analysis(FunctionMemo):
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
            scoped = view.memo["refcount-scoped"] = frozenset(
                self.key(call_args(c)[0]) for c in calls_in(view.node)
                if call_name(c).startswith(FREE_PREFIX) and call_args(c))
        self.scoped: frozenset[str] = scoped
        self.returned: dict[str, str] = {}  # pair -> the call whose reference is returned

    def _released_keys(self) -> set[tuple[str, str]]:
        keys = set()
        for call in self.calls_of(self.view.node):
            name, args = self.name_of(call), self.args_of(call)
            for matched in self.c.matching(name):
                pair = matched.pair
                for spec in matched.release:
                    key = "" if pair.keyless else (
                        self.key(args[spec.arg]) if spec.arg is not None and spec.arg < len(args) else None
                    )
                    if key is not None:
                        keys.add((key, pair.name))
        return keys

    def _owned(self, key: str, pair: Pair, spec: CallSpec) -> bool:
        """Whether a leak of this reference is the function's fault.

        A `css_get(param)` in a function that never puts that object is a function whose
        job is to take a reference for someone else (cgroup_get_live(), kill_css()); the
        base tree has dozens. A reference the function asked for itself (a lookup that
        returns it, a tryget) or puts on some other path is its own.
        """
        # A tryget the function never puts is, like a get, taken for someone else (a
        # struct that already points at the object: blkg_create()'s blkcg).
        return spec.returns or pair.keyless or (key, pair.name) in self.released_keys

    def is_local(self, name: str) -> bool:
        # A hunk rarely shows the declarations at the top of the function: in a partial
        # view an undeclared lower-case identifier is most likely a local variable.
        return name in self.locals or (self.view.partial and bool(re.fullmatch(r"[a-z_]\w*", name)))

    def share_effects(self, other: Analysis) -> None:
        """Use ``other``'s memo of effects and conditions: an analysis of the same function
        with the same config, facts and callee consumers (engine/consumers.py walks one
        per parameter, each from a different start) gets the same answers."""
        self._effects, self._conds = other._effects, other._conds

    def released_params(self, name: str) -> dict[int, str]:
        """facts.released_params(), once per name (the use check asks at every path state)."""
        found = self._released_params.get(name)
        if found is None:
            found = self._released_params[name] = self.facts.released_params(name)
        return found

    def line(self, node: Node | None) -> int | None:
        return self.view.line(node) if node is not None else None

    # --- effects of one expression -------------------------------------------------
    def effects(self, node: Node | None) -> Ops:
        """What evaluating ``node`` does to references (a pure function of the node once
        the aliases are known: memoised, as every path state reaching the node asks again;
        callers never change the list they get)."""
        if node is None:
            return []
        done = self._effects.get(node.id)
        if done is None:
            done = self._effects[node.id] = self._effects_of(node)
        return done

    def _effects_of(self, node: Node) -> Ops:
        ops: Ops = []
        for call in self.calls_of(node):
            ops.extend(self.call_ops(call))
        ops.extend(self.store_ops(node))
        return ops

    def call_ops(self, call: Node, in_condition: bool = False) -> Ops:
        name = self.name_of(call)
        if self._inert(name):
            return []
        args = self.args_of(call)
        ops: Ops = []
        released: set[tuple[str, str]] = set()  # one release per call, pair and object
        for matched in self.c.matching(name):
            pair = matched.pair
            for spec in matched.release:
                if pair.keyless:
                    key = ""
                elif spec.arg is not None and spec.arg < len(args):
                    key = self.key(args[spec.arg])
                else:
                    continue
                if (key, pair.name) not in released:
                    released.add((key, pair.name))
                    ops.append(("release", (key, pair.name, self.line(call))))
            for spec in matched.acquire:
                if spec.conditional and in_condition:
                    continue
                held_key = None
                if pair.keyless:
                    held_key = ""
                elif spec.returns:
                    # A result stored straight into a field or global is handed on.
                    target = assigned_to(call)
                    if (
                        target is not None
                        and target.type == "identifier"
                        and self.is_local(node_text(target))
                    ):
                        held_key = self.key(target)
                elif spec.arg is not None and spec.arg < len(args):
                    held_key = self.key(args[spec.arg])
                if held_key is not None and not NULL_RE.match(held_key):
                    owned = self._owned(held_key, pair, spec)
                    ops.append(
                        ("acquire", Held(held_key, pair.name, self.line(call) or 0, name, owned))
                    )
                break  # one acquire per call and pair, however many specs match
        for spec in self.c.consumers:
            if spec.call.match(name) and spec.arg is not None and spec.arg < len(args):
                ops.append(("transfer", self.key(args[spec.arg])))
        for partial in self.partial.get(name, ()):
            if partial.index < len(args):
                ops.append(("handoff", (self.key(args[partial.index]), partial, self.line(call))))
        if not released:
            # A put helper the tree (or the patch) defines: bfq_put_queue(bfqq) releases.
            for index, obj in self.released_params(name).items():
                if index < len(args):
                    key = self.key(args[index])
                    pair_name = obj if any(p.name == obj for p in self.c.pairs) else ""
                    ops.append(("release", (key, pair_name, self.line(call))) if pair_name
                               else ("transfer", key))
                    ops.extend(("transfer", k) for k in self._container(args[index]))
        if self.c.transfer_store and _stores_by_call(name) and len(args) >= 2:
            ops.append(("transfer", self.key(args[1])))
        if self.c.transfer_store and _publishes(name):
            # list_add(&ev->list, head), queue_work(wq, &mwork->work), call_rcu(&x->rcu, f):
            # the object that embeds the node now lives in a list, a queue or a callback.
            for arg in args:
                ops.extend(("transfer", k) for k in self._container(arg))
        return ops

    def _inert(self, name: str) -> bool:
        """A call by this name does nothing call_ops() tracks, whatever its arguments: no
        pair, consumer, partial consumer or put helper names it, and it stores or links
        nothing in (most calls of a function; asked once per name, not once per call)."""
        found = self._inert_names.get(name)
        if found is None:
            store = self.c.transfer_store and (_stores_by_call(name) or _publishes(name))
            found = self._inert_names[name] = not (
                store or self.c.matching(name)
                or (self.c.consumers and any(s.call.match(name) for s in self.c.consumers))
                or self.partial.get(name, ()) or self.released_params(name))
        return found

    def _container(self, arg: Node) -> list[str]:
        """``&ev->list`` names a member embedded in ``ev``: handing the member on hands on
        the object (its container) too."""
        m = _MEMBER_OF.match(_SPACES.sub("", node_text(arg)))
        return [self.alias.find(m.group(1))] if m else []

    def store_ops(self, node: Node) -> Ops:
        """``obj->field = x``: the reference in x now belongs to obj (a transfer);
        ``x = ...``: x names a new object from here on. (The answer depends on the function
        and on whether stores transfer, not on the pairs: kept for all its analyses.)"""
        key = (node.id, self.c.transfer_store)
        done = self._store_ops.get(key)
        if done is None:
            done = self._store_ops[key] = self._store_ops_of(node)
        return done

    def _store_ops_of(self, node: Node) -> Ops:
        ops: Ops = []
        for n in self.store_nodes(node):
            if n.type != "assignment_expression":
                # `struct x *p = ...;` and DECLARE_BITMAP(mask, n): a new object by that name
                name = n.child_by_field_name("declarator") if n.type == "init_declarator" else \
                    next(iter(self.args_of(n)), None)
                while name is not None and name.type == "pointer_declarator":
                    name = name.child_by_field_name("declarator")
                if name is not None and name.type == "identifier":
                    ops.append(("assign", self.alias.find(node_text(name))))
                continue
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            if left is None or right is None:
                continue
            target = normalize(node_text(left))
            if left.type == "identifier" and node_text(n.children[1]) == "=":
                ops.append(("assign", self.alias.find(target)))  # a new value: not released
            if self.c.transfer_store and (left.type != "identifier" or not self.is_local(target)) \
                    and not self._local_aggregate(left):
                # `page->memcg_data = (unsigned long)objcg | FLAG` stores objcg too; the
                # arguments of a call on the right are not stored (blkg_lookup(blkcg)).
                keys = {self.key(right)} | {self.alias.find(i) for i in stored_identifiers(right)}
                ops.extend(("transfer", k) for k in sorted(keys))
        return ops

    def _local_aggregate(self, left: Node) -> bool:
        """``wo.wo_pid = pid``: a field of a struct on this function's stack is not a
        place the reference can outlive the function in."""
        while left.type in ("field_expression", "subscript_expression"):
            op = left.child_by_field_name("operator")
            if op is not None and node_text(op) == "->":
                return False
            inner = left.child_by_field_name("argument")
            if inner is None:
                return False
            left = inner
        return left.type == "identifier" and node_text(left) in self.locals

    # --- conditions -----------------------------------------------------------------
    def cond(self, expr: Node | None) -> tuple[list[Ops], list[Ops]]:
        """Alternative effect lists for the true and the false branch of a condition
        (memoised like :meth:`effects`)."""
        if expr is None:
            return [[]], [[]]
        done = self._conds.get(expr.id)
        if done is None:
            done = self._conds[expr.id] = self._cond_of(expr)
        return done

    def _cond_of(self, expr: Node) -> tuple[list[Ops], list[Ops]]:
        while expr.type == "parenthesized_expression" and expr.named_children:
            expr = expr.named_children[0]
        if expr.type == "call_expression" and self.name_of(expr) in ("likely", "unlikely"):
            args = self.args_of(expr)
            if args:
                return self.cond(args[0])
        if expr.type == "unary_expression" and node_text(expr.children[0]) == "!":
            t, f = self.cond(expr.child_by_field_name("argument"))
            return f, t
        if expr.type == "assignment_expression":
            # `while ((memcg = mem_cgroup_iter(NULL, memcg, NULL)))`: effects, then truth.
            left = expr.child_by_field_name("left")
            ops = self.effects(expr)
            if left is not None:
                return [ops], [ops + [("drop", self.key(left))]]
            return [ops], [ops]
        if expr.type == "binary_expression":
            op = node_text(expr.children[1])
            left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
            if op in ("&&", "||"):
                lt, lf = self.cond(left)
                rt, rf = self.cond(right)
                if op == "&&":
                    return [a + b for a in lt for b in rt], lf + [a + b for a in lt for b in rf]
                return lt + [a + b for a in lf for b in rt], [a + b for a in lf for b in rf]
            if op in ("==", "!=") and left is not None and right is not None:
                for var, other in ((left, right), (right, left)):
                    # `p == NULL`, and `p == &static_obj` (blkcg == &blkcg_root): on the
                    # equal branch p is not something this function got a reference to.
                    if NULL_RE.match(node_text(other).strip()) or \
                            re.fullmatch(r"&\s*[A-Za-z_][\w.>-]*", node_text(other).strip()) and \
                            node_text(other).strip().lstrip("&").split("-")[0].split(".")[0].strip() \
                            not in self.locals:
                        base = self.effects(var)
                        target = var
                        while target.type == "parenthesized_expression" and target.named_children:
                            target = target.named_children[0]
                        if target.type == "assignment_expression":
                            target = target.child_by_field_name("left") or target
                        null = base + [("drop", self.key(target))]
                        return ([null], [base]) if op == "==" else ([base], [null])
        if expr.type == "identifier":
            return [[]], [[("drop", self.key(expr))]]
        if expr.type == "call_expression" and self.name_of(expr) in ("IS_ERR", "IS_ERR_OR_NULL"):
            args = self.args_of(expr)
            if args:
                return [[("drop", self.key(args[0]))]], [[]]
        if expr.type == "call_expression":
            # A conditional acquire holds the reference only when it succeeded.
            inner = [op for c in self.calls_of(expr)[:-1] for op in self.call_ops(c)]
            own = self.call_ops(expr, in_condition=True)
            on_true: Ops = []
            on_false: Ops = []  # mutex_lock_interruptible() holds the lock when it returned 0
            for matched in self.c.matching(self.name_of(expr)):
                pair = matched.pair
                for spec in matched.acquire:
                    if not spec.conditional:
                        continue
                    args = self.args_of(expr)
                    key = "" if pair.keyless else (
                        self.key(args[spec.arg]) if spec.arg is not None and spec.arg < len(args) else "")
                    held = ("acquire", Held(key, pair.name, self.line(expr) or 0, self.name_of(expr)))
                    (on_false if spec.zero else on_true).append(held)
            if on_true or on_false:
                return [inner + own + on_true], [inner + own + on_false]
        ops = self.effects(expr)
        return [ops], [ops]

    # --- the walk -------------------------------------------------------------------
    def apply(self, state: State, ops: Ops) -> State:
        for kind, arg in ops:
            if kind == "acquire":
                state = state.add(arg)
            elif kind == "release":
                key, pair, line = arg
                self.release_line[key] = line
                state, held = state.drop(key, pair)
                if held is None and (key, pair) in state.released and "double-release" in self.c.report:
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
            elif kind == "handoff":  # to a callee that consumes it on some paths only
                key, partial, line = arg
                dropped, held = state.drop(key)
                if held is not None:
                    self.handoffs.setdefault((key, line), (held, partial))
                    state = state.with_held(dropped.held)
            elif kind == "assign" and any(k == arg for k, _ in state.released):
                state = state.with_released(frozenset(r for r in state.released if r[0] != arg))
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
            for nxt, st in self.step(node, state, graph):
                work.append((nxt, st))
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
        if node.succ and take_true:
            st = state.with_decided(state.decided | {known}) if known else state
            out += [(node.succ[0], self.apply(st, ops)) for ops in t_alts]
        if len(node.succ) > 1 and take_false:
            st = state.with_decided(state.decided | {(known[0], not known[1])}) if known else state
            out += [(node.succ[1], self.apply(st, ops)) for ops in f_alts]
        return out

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
